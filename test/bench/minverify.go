package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// minClient is testdata/minverify built in the run, four times: over
// package net or bare socket syscalls ("raw"), each plain and with
// crypto/tls linked, as any helper that can reach an https Vault is.
// Alternated with both helpers in the sequential logins, the medians are
// the least a fresh Go process pays for a login on this machine; the raw
// one with crypto/tls is the floor of any Go helper that can speak TLS.
type minClient struct {
	name string // "net, plain", ..., "raw syscalls, crypto/tls linked"
	bin  string
	tls  bool // links crypto/tls
	raw  bool // bare syscalls, no package net
	s    loginStats
}

// buildMinClients builds the four variants into dir; on failure it says why and
// returns none (the notes then say "not measured").
func buildMinClients(root, dir string) ([]*minClient, error) {
	src := filepath.Join(root, "test", "bench", "testdata", "minverify")
	var out []*minClient
	for _, v := range []struct {
		name, tags, file string
		tls, raw         bool
	}{
		{"net, plain", "", "minverify", false, false},
		{"net, crypto/tls linked", "tls", "minverify-tls", true, false},
		{"raw syscalls, plain", "raw", "minverify-raw", false, true},
		{"raw syscalls, crypto/tls linked", "raw,tls", "minverify-raw-tls", true, true},
	} {
		bin := filepath.Join(dir, v.file)
		// The same flags as `make build`.
		args := []string{"build", "-trimpath", "-ldflags=-s -w", "-o", bin}
		if v.tags != "" {
			args = append(args, "-tags", v.tags)
		}
		cmd := exec.Command("go", append(args, ".")...)
		cmd.Dir = src
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod", "GOWORK=off")
		if b, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build %s: %w: %s", v.file, err, strings.TrimSpace(string(b)))
		}
		out = append(out, &minClient{name: v.name, bin: bin, tls: v.tls, raw: v.raw})
	}
	return out, nil
}

// minLogin runs one minimal client as pam_exec would run a helper.
func (h *helperBench) minLogin(m *minClient, otp string) error {
	cmd := h.loginCmd(m.bin, "", otp)
	cmd.Args = []string{m.bin, strings.TrimPrefix(h.b.vault.Addr, "http://"), sshMount}
	r, err := timed(cmd)
	if err != nil {
		return err
	}
	m.s.add(r, true)
	return nil
}

// minNotes states each variant's median beside vault-ssh-helper's.
func (h *helperBench) minNotes(ms []*minClient, ref loginStats, whyNot error) {
	if whyNot != nil {
		h.b.notef("minimal Go verify client (testdata/minverify): not measured (%v)", whyNot)
		return
	}
	var parts []string
	for _, m := range ms {
		med := quantile(m.s.wall, 0.5)
		p := fmt.Sprintf("%s %.2f ms", m.name, med)
		if len(ref.wall) > 0 {
			p += fmt.Sprintf(" (%.2f× vault-ssh-helper)", med/quantile(ref.wall, 0.5))
		}
		if m.s.wrong > 0 {
			p += fmt.Sprintf(", %d wrong answers", m.s.wrong)
		}
		parts = append(parts, p)
	}
	h.b.notef("minimal Go verify client (test/bench/testdata/minverify: stdin, one raw HTTP POST over a new TCP connection, exit; no config, checks, audit or log), built in this run over package net and over bare socket syscalls, each plain and with crypto/tls linked, and alternated with both helpers, median of %d: %s — the least a fresh Go process pays for a login here, beside the goal \"median ≤ 0.5× reference\".",
		len(ms[0].s.wall), strings.Join(parts, "; "))
}

// floorRow is the table's line for the least a TLS-capable Go helper pays:
// the raw-syscall client with crypto/tls linked, beside vault-ssh-helper's
// median. Its ratio is what the goal "median ≤ 0.5× reference" cannot go
// below on this machine. ok is false when that client was not measured.
func floorRow(ms []*minClient, ref value) (r row, ok bool) {
	for _, m := range ms {
		if m.raw && m.tls && len(m.s.wall) > 0 {
			return row{
				metric: "least a TLS-capable Go client pays (minverify: raw syscalls, crypto/tls linked): median",
				ours:   val(quantile(m.s.wall, 0.5), "ms"),
				ref:    ref,
			}, true
		}
	}
	return row{}, false
}
