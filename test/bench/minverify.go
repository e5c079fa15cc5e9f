package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// minClient is testdata/minverify built in the run, twice: plain (net
// only) and with crypto/tls linked, as any helper that can reach an https
// Vault is. Alternated with both helpers in the sequential logins, its
// median is the least a fresh Go process pays for a login on this machine.
type minClient struct {
	name string // "plain" or "crypto/tls linked"
	bin  string
	s    loginStats
}

// buildMinClients builds both variants into dir; on failure it says why and
// returns none (the notes then say "not measured").
func buildMinClients(root, dir string) ([]*minClient, error) {
	src := filepath.Join(root, "test", "bench", "testdata", "minverify")
	var out []*minClient
	for _, v := range []struct{ name, tags, file string }{
		{"plain", "", "minverify"},
		{"crypto/tls linked", "tls", "minverify-tls"},
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
		out = append(out, &minClient{name: v.name, bin: bin})
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
	h.b.notef("minimal Go verify client (test/bench/testdata/minverify: stdin, one raw HTTP POST over a new TCP connection, exit; no config, checks, audit or log), built in this run and alternated with both helpers, median of %d: %s — the least a fresh Go process pays for a login here, beside the goal \"median ≤ 0.5× reference\".",
		len(ms[0].s.wall), strings.Join(parts, "; "))
}
