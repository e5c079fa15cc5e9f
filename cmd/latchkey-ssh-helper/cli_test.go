package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/latchkey/latchkey/test/testkit"
	"github.com/latchkey/latchkey/test/totptest"
	"github.com/latchkey/latchkey/test/vaulttest"
)

var (
	srv    *vaulttest.Server
	helper string // the built binary
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "latchkey-cli-")
	if err != nil {
		panic(err)
	}
	// The built binary's fallback audit file is the test's, not
	// /var/log/latchkey-ssh-helper.log: on a host without journal and syslog
	// every refusal the tests provoke under PAM would land there.
	auditFallback = filepath.Join(dir, "fallback-audit.log")
	helper = filepath.Join(dir, "latchkey-ssh-helper")
	build := exec.Command("go", "build", "-o", helper, "-ldflags=-X=main.auditFallback="+auditFallback, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	// Not deferred: os.Exit runs no deferred calls.
	code := vaulttest.Run(m, vaulttest.Spec{Into: &srv})
	os.RemoveAll(dir)
	os.Exit(code)
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.hcl")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestCommandLine(t *testing.T) {
	good := writeConfig(t, fmt.Sprintf("vault_addr = %q\nssh_mount_point = \"ssh\"\naudit = \"off\"\n", srv.Addr))
	noRoles := writeConfig(t, fmt.Sprintf("vault_addr = %q\nallowed_roles = \"\"\naudit = \"off\"\n", srv.Addr))
	devCA := writeConfig(t, fmt.Sprintf("vault_addr = %q\nssh_mount_point = \"ssh\"\nca_cert = \"/nonexistent/ca.pem\"\naudit = \"off\"\n", srv.Addr))
	configDir := t.TempDir()
	mount := "ssh"
	srv.MountT(t, mount, &api.MountInput{Type: "ssh"})
	tests := map[string]struct {
		args       []string
		env        func(string) string
		stdin      string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		"no arguments":              {args: nil, wantCode: exitUsage, wantStderr: "-config is required"},
		"help":                      {args: []string{"-help"}, wantCode: exitUsage, wantStderr: "Usage: latchkey-ssh-helper"},
		"h":                         {args: []string{"-h"}, wantCode: exitUsage, wantStderr: "Usage:"},
		"unknown flag":              {args: []string{"-config=" + good, "-bogus"}, wantCode: exitUsage, wantStderr: "flag provided but not defined: -bogus"},
		"stray argument":            {args: []string{"-config=" + good, "extra"}, wantCode: exitUsage, wantStderr: `unexpected argument "extra"`},
		"bad log level":             {args: []string{"-config=" + good, "-log-level=loud"}, wantCode: exitUsage, wantStderr: "-log-level"},
		"version":                   {args: []string{"version"}, wantCode: exitOK, wantStdout: "latchkey-ssh-helper "},
		"-v":                        {args: []string{"-v"}, wantCode: exitOK, wantStdout: "latchkey-ssh-helper "},
		"-version":                  {args: []string{"-version"}, wantCode: exitOK},
		"--version":                 {args: []string{"--version"}, wantCode: exitOK},
		"version under PAM":         {args: []string{"-version"}, env: env("PAM_TYPE", "auth", "PAM_USER", "alice"), wantCode: exitUsage},
		"verify-only under PAM":     {args: []string{"-config=" + good, "-dev", "-verify-only"}, env: env("PAM_TYPE", "auth", "PAM_USER", "alice"), wantCode: exitUsage, wantStderr: "-verify-only is refused on a PAM line"},
		"verify-only, PAM_USER":     {args: []string{"-config=" + good, "-dev", "-verify-only"}, env: env("PAM_USER", "alice"), wantCode: exitUsage, wantStderr: "-verify-only is refused on a PAM line"},
		"missing config":            {args: []string{"-config=/nonexistent/config.hcl", "-dev"}, wantCode: exitConfig, wantStderr: "read config /nonexistent/config.hcl"},
		"config is a directory":     {args: []string{"-config=" + configDir, "-dev"}, wantCode: exitConfig, wantStderr: "read config " + configDir + ": read " + configDir + ": is a directory"},
		"http without -dev":         {args: []string{"-config=" + good}, wantCode: exitConfig, wantStderr: "http:// is refused without -dev"},
		"verify-only":               {args: []string{"-config=" + good, "-dev", "-verify-only"}, wantCode: exitOK, wantStderr: "echo request"},
		"random uuid denied":        {args: []string{"-config=" + good, "-dev"}, env: env("PAM_USER", "alice"), stdin: "11111111-2222-3333-4444-555555555555", wantCode: exitDenied},
		"empty allowed_roles warns": {args: []string{"-config=" + noRoles, "-dev", "-verify-only"}, wantCode: exitOK, wantStderr: "allowed_roles is empty"},
		"-dev ignores ca_cert":      {args: []string{"-config=" + devCA, "-dev", "-verify-only"}, wantCode: exitOK, wantStderr: "ca_cert: not used, nor checked: every Vault address is http://"},
		"log level off":             {args: []string{"-config=" + good, "-dev", "-log-level=off"}, env: env("PAM_USER", "alice"), stdin: "x", wantCode: exitDenied},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			getenv := tc.env
			if getenv == nil {
				getenv = env()
			}
			var stdout, stderr bytes.Buffer
			code := run(tc.args, strings.NewReader(tc.stdin), &stdout, &stderr, getenv)
			if code != tc.wantCode {
				t.Errorf("exit code %d, want %d\nstderr: %s", code, tc.wantCode, stderr.String())
			}
			if !strings.Contains(stdout.String(), tc.wantStdout) {
				t.Errorf("stdout %q, want %q", stdout.String(), tc.wantStdout)
			}
			if !strings.Contains(stderr.String(), tc.wantStderr) {
				t.Errorf("stderr %q, want %q", stderr.String(), tc.wantStderr)
			}
			if name == "log level off" && stderr.Len() != 0 {
				t.Errorf("-log-level=off printed %q", stderr.String())
			}
		})
	}
}

// The binary, as pam_exec runs it: the password on stdin, PAM_* in the
// environment; accepted once, refused when used again. Whatever the log
// level, the password shows neither on stdout, on stderr nor in the audit
// file.
func TestBinaryLogin(t *testing.T) {
	c := srv.Client
	const mount, totpMount, seed = "ssh-bin", "totp-bin", "JBSWY3DPEHPK3PXP"
	srv.MountT(t, mount, &api.MountInput{Type: "ssh"})
	if _, err := c.Logical().Write(mount+"/roles/web", map[string]any{"key_type": "otp", "default_user": "alice", "cidr_list": "127.0.0.0/8"}); err != nil {
		t.Fatal(err)
	}
	srv.MountT(t, totpMount, &api.MountInput{Type: "totp"})
	if _, err := c.Logical().Write(totpMount+"/keys/ssh-alice", map[string]any{"key": seed, "generate": false, "issuer": "latchkey", "account_name": "alice"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Sys().PutPolicy("cli-totp", fmt.Sprintf(`path "%s/code/*" { capabilities = ["update"] }`, totpMount)); err != nil {
		t.Fatal(err)
	}
	tok, err := c.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{"cli-totp"}, NoParent: true})
	if err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(tok.Auth.ClientToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := map[string]struct {
		totp  bool
		level string
		// wantOK is in the output of the accepted attempt.
		wantOK string
	}{
		"otp":         {level: "info", wantOK: "alice@127.0.0.1 authenticated!"},
		"otp, trace":  {level: "trace", wantOK: "alice@127.0.0.1 authenticated!"},
		"totp, trace": {totp: true, level: "trace", wantOK: "alice (totp) authenticated!"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			audit := filepath.Join(t.TempDir(), "audit.log")
			body := fmt.Sprintf("vault_addr = %q\nssh_mount_point = %q\nallowed_roles = \"web\"\naudit = \"off\"\naudit_file = %q\n", srv.Addr, mount, audit)
			var secret string
			if tc.totp {
				body += fmt.Sprintf("mode = \"totp\"\ntotp_mount = %q\ntotp_key_pattern = \"ssh-{{user}}\"\ntoken_file = %q\n", totpMount, tokenFile)
				secret = totptest.Code(seed, time.Now())
			} else {
				s, err := c.Logical().Write(mount+"/creds/web", map[string]any{"ip": "127.0.0.1"})
				if err != nil {
					t.Fatal(err)
				}
				secret = s.Data["key"].(string)
			}
			cfg := writeConfig(t, body)
			for i, want := range []int{exitOK, exitDenied} {
				cmd := exec.Command(helper, "-config="+cfg, "-dev", "-log-level="+tc.level)
				cmd.Env = []string{"PAM_USER=alice", "PAM_TYPE=auth", "PAM_SERVICE=sshd", "PAM_RHOST=127.0.0.1"}
				cmd.Stdin = strings.NewReader(secret + "\x00")
				var stdout, stderr bytes.Buffer
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				testkit.ScanOutput(t, cmd)
				cmd.Run()
				if got := cmd.ProcessState.ExitCode(); got != want {
					t.Errorf("attempt %d: exit %d, want %d\n%s", i+1, got, want, stderr.String())
				}
				for name, out := range map[string]string{"stdout": stdout.String(), "stderr": stderr.String()} {
					if containsSecret(out, secret) {
						t.Errorf("attempt %d: %s contains the password: %s", i+1, name, out)
					}
				}
				if i == 0 && !strings.Contains(stderr.String(), tc.wantOK) {
					t.Errorf("attempt 1: output does not say %q: %s", tc.wantOK, stderr.String())
				}
				// The check above means something only if trace logs.
				if tc.level == "trace" && !strings.Contains(stderr.String(), "DEBUG\tvault request") {
					t.Errorf("attempt %d: -log-level=trace logged no request: %s", i+1, stderr.String())
				}
			}
			b, err := os.ReadFile(audit)
			if err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(string(b), "\n"); n != 2 {
				t.Errorf("audit file holds %d records, want 2: %s", n, b)
			}
			if containsSecret(string(b), secret) {
				t.Errorf("audit file contains the password: %s", b)
			}
		})
	}
}

// containsSecret reports whether text holds secret. A TOTP code is digits
// only and is looked for as a whole number, so that a timestamp or duration
// with the same digits in it does not count.
func containsSecret(text, secret string) bool {
	if strings.Trim(secret, "0123456789") != "" {
		return strings.Contains(text, secret)
	}
	return regexp.MustCompile(`(^|[^0-9])` + secret + `($|[^0-9])`).MatchString(text)
}

// A namespace Vault does not have (Vault Enterprise answers 404 or 403; the
// stub stands in for it, Vault OSS ignores namespaces): exit 4, the Vault
// error, not 1, and the audit record gives Vault's answer.
func TestBinaryUnknownNamespace(t *testing.T) {
	tests := map[string]struct {
		status  int
		message string
	}{
		"404": {http.StatusNotFound, `no handler for route "no-such-ns/ssh/verify". route entry not found.`},
		"403": {http.StatusForbidden, "permission denied"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var namespaces []string
			var mu sync.Mutex
			stub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				namespaces = append(namespaces, r.Header.Get("X-Vault-Namespace"))
				mu.Unlock()
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				json.NewEncoder(w).Encode(map[string][]string{"errors": {tc.message}})
			}))
			defer stub.Close()
			audit := filepath.Join(t.TempDir(), "audit.log")
			cfg := writeConfig(t, fmt.Sprintf("vault_addr = %q\nnamespace = \"no-such-ns\"\nallowed_roles = \"web\"\naudit = \"off\"\naudit_file = %q\n", stub.URL, audit))
			cmd := exec.Command(helper, "-config="+cfg, "-dev")
			cmd.Env = []string{"PAM_USER=alice", "PAM_TYPE=auth", "PAM_SERVICE=sshd", "PAM_RHOST=127.0.0.1"}
			cmd.Stdin = strings.NewReader("11111111-2222-3333-4444-555555555555")
			out, _ := cmd.CombinedOutput()
			if got := cmd.ProcessState.ExitCode(); got != exitVault {
				t.Fatalf("exit %d, want %d (vault error)\n%s", got, exitVault, out)
			}
			mu.Lock()
			if len(namespaces) != 1 || namespaces[0] != "no-such-ns" {
				t.Errorf("requests' X-Vault-Namespace = %q, want one with no-such-ns", namespaces)
			}
			mu.Unlock()
			b, err := os.ReadFile(audit)
			if err != nil {
				t.Fatal(err)
			}
			var rec struct{ Result, Reason string }
			if err := json.Unmarshal(b, &rec); err != nil {
				t.Fatalf("audit file %q: %v", b, err)
			}
			want := fmt.Sprintf("unexpected vault answer: %d on ssh/verify: %s", tc.status, tc.message)
			if rec.Result != "failure" || !strings.Contains(rec.Reason, want) {
				t.Errorf("audit record %+v, want a failure with reason %q", rec, want)
			}
		})
	}
}

// -verify-only reads no stdin: with a stdin that never ends (a pipe whose
// write end stays open), it still checks Vault and exits 0 by itself.
// Reading stdin would block until the deadline (exit 4).
func TestBinaryVerifyOnlyReadsNoStdin(t *testing.T) {
	mount := "ssh-verify-only"
	srv.MountT(t, mount, &api.MountInput{Type: "ssh"})
	cfg := writeConfig(t, fmt.Sprintf("vault_addr = %q\nssh_mount_point = %q\nallowed_roles = \"web\"\ntimeout = \"3s\"\naudit = \"off\"\n", srv.Addr, mount))
	tests := map[string]struct {
		environ []string
		code    int
		out     string
	}{
		"by hand": {nil, exitOK, "vault verified the echo request"},
		// On a PAM line it would let every login through: refused, at once.
		"under PAM": {[]string{"PAM_USER=alice", "PAM_TYPE=auth"}, exitUsage, "-verify-only is refused on a PAM line"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			pr, pw, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer pw.Close() // only after the helper exited
			cmd := exec.Command(helper, "-config="+cfg, "-dev", "-verify-only")
			cmd.Env = tc.environ
			cmd.Stdin = pr
			out, _ := cmd.CombinedOutput()
			pr.Close()
			if got := cmd.ProcessState.ExitCode(); got != tc.code {
				t.Fatalf("exit %d, want %d\n%s", got, tc.code, out)
			}
			if !strings.Contains(string(out), tc.out) {
				t.Errorf("output: %s", out)
			}
		})
	}
}

// A stdin that never closes and a Vault that never answers: the binary
// still exits non-zero by itself (the guard), before anything kills it.
func TestBinaryDeadline(t *testing.T) {
	cfg := writeConfig(t, "vault_addr = \"http://127.0.0.1:9\"\ntimeout = \"1s\"\naudit = \"off\"\n")
	cmd := boundedCommand(t, helper, "-config="+cfg, "-dev")
	cmd.Env = []string{"PAM_USER=alice", "PAM_TYPE=auth"}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	cmd.Stdin = pr
	out, _ := cmd.CombinedOutput()
	pr.Close()
	if got := cmd.ProcessState.ExitCode(); got != exitVault {
		t.Fatalf("exit %d, want %d\n%s", got, exitVault, out)
	}
	if !strings.Contains(string(out), "deadline") {
		t.Errorf("output does not name the deadline: %s", out)
	}
}

// A Vault that accepts the connection and never answers: the binary exits
// non-zero by itself, naming the deadline, before anything kills it.
func TestBinaryHungVault(t *testing.T) {
	hung := testkit.StartHung(t)
	cfg := writeConfig(t, fmt.Sprintf("vault_addr = \"http://%s\"\ntimeout = \"1s\"\naudit = \"off\"\nallowed_roles = \"*\"\n", hung.Addr))
	cmd := boundedCommand(t, helper, "-config="+cfg, "-dev")
	cmd.Env = []string{"PAM_USER=alice", "PAM_TYPE=auth"}
	cmd.Stdin = strings.NewReader("11111111-2222-3333-4444-555555555555")
	out, _ := cmd.CombinedOutput()
	if got := cmd.ProcessState.ExitCode(); got != exitVault {
		t.Fatalf("exit %d, want %d\n%s", got, exitVault, out)
	}
	if !strings.Contains(string(out), "deadline") || !strings.Contains(string(out), hung.Addr) {
		t.Errorf("output does not name the deadline and the address: %s", out)
	}
}

// boundedCommand is exec.Command killed after a generous minute: should the
// helper's own deadline guard break, the test fails instead of hanging. The
// bound says nothing about how fast the helper is.
func boundedCommand(t *testing.T, name string, args ...string) *exec.Cmd {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, name, args...)
	// A stdin pipe held open by the test must not keep Wait waiting on
	// the copy once the helper was killed.
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// The whole run as pam_exec sees it (process start, config, one verify
// against a live Vault, checks, exit), for comparing with vault-ssh-helper.
func BenchmarkBinaryLogin(b *testing.B) {
	mount := "ssh-bench"
	c := srv.Client
	if err := c.Sys().Mount(mount, &api.MountInput{Type: "ssh"}); err != nil {
		b.Fatal(err)
	}
	if _, err := c.Logical().Write(mount+"/roles/web", map[string]any{"key_type": "otp", "default_user": "alice", "cidr_list": "127.0.0.0/8"}); err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	cfg := filepath.Join(dir, "config.hcl")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("vault_addr = %q\nssh_mount_point = %q\nallowed_roles = \"web\"\naudit = \"off\"\n", srv.Addr, mount)), 0o600); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		b.StopTimer()
		s, err := c.Logical().Write(mount+"/creds/web", map[string]any{"ip": "127.0.0.1"})
		if err != nil {
			b.Fatal(err)
		}
		cmd := exec.Command(helper, "-config="+cfg, "-dev", "-log-level=off")
		cmd.Env = []string{"PAM_USER=alice", "PAM_TYPE=auth"}
		cmd.Stdin = strings.NewReader(s.Data["key"].(string))
		b.StartTimer()
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%v: %s", err, out)
		}
	}
}
