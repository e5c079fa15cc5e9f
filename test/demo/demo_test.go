package main

import (
	"testing"

	"github.com/latchkey/latchkey/test/testbin"
)

// `make demo` must keep working: run it as the Makefile does.
func TestDemo(t *testing.T) {
	dir := t.TempDir()
	if _, err := testbin.Build(dir, "./cmd/latchkey-ssh-helper", "./cmd/latchkey-agent"); err != nil {
		t.Fatal(err)
	}
	if err := run(dir); err != nil {
		t.Fatal(err)
	}
}
