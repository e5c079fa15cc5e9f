// Package hclconf reads the agent's configuration files, Vault Agent's HCL
// (native syntax) or JSON, into a tree of bodies, attributes, blocks and
// literal values that all carry their file:line:col, and turns every
// problem into an error of the form "file:line:col: message" naming the key
// at fault.
//
// It reads the files itself instead of with github.com/hashicorp/hcl/v2 and
// go-cty: those were about 1.5 MB of the agent binary (and so of its
// resident memory, most of the text being mapped) and a good part of its
// start-up, only to read literals. The syntax is the part of HCL a config
// uses: blocks with labels, key = value, comments (#, //, /* */), quoted
// strings with HCL's escapes, heredocs, numbers, true, false, null, lists
// and objects. What HCL would evaluate beyond literals (templates "${...}"
// and "%{...}", variables, function calls, operators) is refused with the
// key's position. Tests in agent/config keep hcl/v2 (internal/hclconf/
// hcloracle) as the oracle this reader must agree with.
//
// The typed decoders (values.go) accept the HCL 1 spellings Vault's tools
// write: booleans and numbers in strings, octal file modes such as 0640,
// comma-separated lists.
package hclconf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Position is a place in a file: 1-based line and column (in characters)
// and the 0-based byte offset.
type Position struct {
	Line, Column, Byte int
}

// Range is where something starts in a file (errors print no more).
type Range struct {
	Filename string
	Start    Position
}

// Pos is r's start as "file:line:col", the prefix of every config error.
func Pos(r Range) string {
	return fmt.Sprintf("%s:%d:%d", r.Filename, r.Start.Line, r.Start.Column)
}

// Diagnostic is one problem at a position.
type Diagnostic struct {
	Subject Range
	Summary string
}

func (d *Diagnostic) Error() string { return Pos(d.Subject) + ": " + d.Summary }

// Diagnostics are the problems found; as an error it prints one
// "file:line:col: message" line each.
type Diagnostics []*Diagnostic

// HasErrors reports whether there is any problem.
func (ds Diagnostics) HasErrors() bool { return len(ds) > 0 }

func (ds Diagnostics) Error() string {
	lines := make([]string, len(ds))
	for i, d := range ds {
		lines[i] = d.Error()
	}
	return strings.Join(lines, "\n")
}

// Err returns nil for no diagnostics, else them as an error.
func Err(ds Diagnostics) error {
	if len(ds) == 0 {
		return nil
	}
	return ds
}

// AsDiagnostics reports whether err is (or wraps) a Diagnostics error.
func AsDiagnostics(err error) (Diagnostics, bool) {
	var ds Diagnostics
	ok := errors.As(err, &ds)
	return ds, ok
}

// Errorf builds a diagnostic at rng.
func Errorf(rng Range, format string, args ...any) *Diagnostic {
	return &Diagnostic{Subject: rng, Summary: fmt.Sprintf(format, args...)}
}

// Parse reads path and parses it as JSON when it ends in ".json" and as HCL
// native syntax otherwise.
//
// A file that cannot be read gives "read config <path>: <reason>"; a syntax
// error gives a Diagnostics error with file:line:col.
func Parse(path string) (*Body, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config %s: %w", path, err)
	}
	return ParseBytes(path, src)
}

// ParseBytes is Parse for content already in memory; path names it in
// diagnostics and picks the syntax.
func ParseBytes(path string, src []byte) (*Body, error) {
	if strings.EqualFold(filepath.Ext(path), ".json") {
		return parseJSON(path, src)
	}
	return parseNative(path, src)
}
