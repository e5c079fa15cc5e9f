// Package version holds the build's version, set by the Makefile through
// -ldflags "-X github.com/latchkey/latchkey/internal/version.Version=...".
package version

// Version is the release this binary was built from ("dev" for go build/test).
var Version = "dev"
