package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// vaultSSHHelper returns the reference helper, vault-ssh-helper 0.2.4, to
// run beside latchkey-ssh-helper: $VSH_BIN; else built from $VSH_SRC or the
// unmodified source kept in shared/reference; else `go install`ed from the
// public proxy. It returns "" and why when none works: the benchmark then
// prints no ratio for the helper. The source is never copied into latchkey.
func vaultSSHHelper(root, tmp string) (bin, how string) {
	if p := os.Getenv("VSH_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Sprintf("VSH_BIN=%s: %v", p, err)
		}
		return p, "VSH_BIN=" + p
	}
	out := filepath.Join(tmp, "vault-ssh-helper")
	var tried []string
	srcs := []string{os.Getenv("VSH_SRC")}
	if srcs[0] == "" {
		srcs = []string{
			filepath.Join(root, "..", "shared", "reference", "vault-ssh-helper-0.2.4"),
			filepath.Join(root, "..", "..", "shared", "reference", "vault-ssh-helper-0.2.4"),
		}
	}
	for _, src := range srcs {
		if _, err := os.Stat(filepath.Join(src, "main.go")); err != nil {
			tried = append(tried, src+": no source")
			continue
		}
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, ".")
		cmd.Dir = src
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=-mod=mod")
		if b, err := cmd.CombinedOutput(); err != nil {
			tried = append(tried, fmt.Sprintf("go build in %s: %v: %s", src, err, lastLine(b)))
			continue
		}
		abs, _ := filepath.Abs(src)
		return out, "built from " + abs
	}
	cmd := exec.Command("go", "install", "-trimpath", "-ldflags=-s -w", "github.com/hashicorp/vault-ssh-helper@v0.2.4")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOBIN="+tmp, "GOWORK=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		tried = append(tried, fmt.Sprintf("go install: %v: %s", err, lastLine(b)))
		return "", strings.Join(tried, "; ")
	}
	return out, "go install github.com/hashicorp/vault-ssh-helper@v0.2.4"
}

func lastLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}
