package pam

// Attacks on the helper's request path (issue 15): hostile fake Vaults on
// 127.0.0.1 and hostile files. Each case is the attack; the assertion is
// that it fails closed.

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const fakeOTP = "11111111-2222-3333-4444-555555555555"

// yesBody is what a real Vault's verify says for alice's OTP.
const yesBody = `{"request_id":"r1","data":{"username":"alice","ip":"10.9.8.7","role_name":"web"}}`

// fakeVault answers every request with h and counts the requests.
func fakeVault(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func answer(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

func TestHostileAnswers(t *testing.T) {
	huge := `{"data":{"username":"alice","ip":"10.9.8.7","role_name":"web","pad":"` + strings.Repeat("x", 10<<20) + `"}}`
	tests := map[string]struct {
		h       http.HandlerFunc
		wantErr error // nil: accepted (the control case)
		reason  string
	}{
		"control: a well-formed yes": {h: answer(200, yesBody)},
		"300 with data":              {h: answer(300, yesBody), wantErr: ErrVault, reason: "300"},
		"303 with data":              {h: answer(303, yesBody), wantErr: ErrVault, reason: "303"},
		"308 with data":              {h: answer(308, yesBody), wantErr: ErrVault, reason: "308"},
		"399 with data":              {h: answer(399, yesBody), wantErr: ErrVault, reason: "399"},
		"201 with data":              {h: answer(201, yesBody), wantErr: ErrVault, reason: "201"},
		"fields at the top level":    {h: answer(200, `{"username":"alice","ip":"10.9.8.7","role_name":"web"}`), wantErr: ErrVault, reason: "no data"},
		"data and errors":            {h: answer(200, `{"data":{"username":"alice","ip":"10.9.8.7","role_name":"web"},"errors":["x"]}`), wantErr: ErrVault, reason: "errors"},
		"trailing garbage":           {h: answer(200, yesBody+`garbage`), wantErr: ErrVault, reason: "after its JSON"},
		"a second JSON object":       {h: answer(200, yesBody+yesBody), wantErr: ErrVault, reason: "after its JSON"},
		"data is a list":             {h: answer(200, `{"data":["alice"]}`), wantErr: ErrVault, reason: "not a JSON object"},
		"username not a string":      {h: answer(200, `{"data":{"username":["alice"],"ip":"10.9.8.7","role_name":"web"}}`), wantErr: ErrVault, reason: "username"},
		"role missing":               {h: answer(200, `{"data":{"username":"alice","ip":"10.9.8.7"}}`), wantErr: ErrVault, reason: "role_name"},
		"not JSON":                   {h: answer(200, `<html>yes</html>`), wantErr: ErrVault, reason: "not a JSON object"},
		"10 MiB body":                {h: answer(200, huge), wantErr: ErrVault, reason: "larger than 65536 bytes"},
		"400 with a newline in the error": {h: answer(400, `{"errors":["no\nJan 1 00:00:00 host sshd: Accepted"]}`),
			wantErr: ErrDenied, reason: "wrong, used or expired"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			srv, _ := fakeVault(t, tc.h)
			cfg := testConfig(plain, "ssh")
			cfg.VaultAddrs = []string{srv.URL}
			r := login(t, cfg, "alice", fakeOTP)
			if tc.wantErr == nil {
				if r.err != nil {
					t.Fatalf("control case refused: %v", r.err)
				}
				return
			}
			if !errors.Is(r.err, tc.wantErr) || !strings.Contains(r.rec.Reason, tc.reason) {
				t.Fatalf("error = %v, reason %q; want %v naming %q", r.err, r.rec.Reason, tc.wantErr, tc.reason)
			}
		})
	}
}

// A redirect is followed once, only to a configured address with the same
// path; the OTP never reaches another host or port.
func TestHostileRedirects(t *testing.T) {
	elsewhere, elsewhereHits := fakeVault(t, answer(200, yesBody))
	active, activeHits := fakeVault(t, answer(200, yesBody))
	redirectTo := func(target string, code int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target+r.URL.RequestURI(), code)
		}
	}
	// second hop: a configured address that redirects again.
	hop2, _ := fakeVault(t, redirectTo(active.URL, 307))
	tests := map[string]struct {
		h       http.HandlerFunc
		extra   []string // further configured addresses
		wantErr error
		reason  string
		// wantActive: requests the configured active node gets.
		wantActive int32
	}{
		"307 to a configured address": {h: redirectTo(active.URL, 307), extra: []string{active.URL}, wantActive: 1},
		"307 to an unlisted port":     {h: redirectTo(elsewhere.URL, 307), extra: []string{active.URL}, wantErr: ErrVault, reason: "not a configured vault address"},
		"302 to an unlisted port":     {h: redirectTo(elsewhere.URL, 302), wantErr: ErrVault, reason: "not a configured vault address"},
		"301 to an unlisted host": {h: redirectTo(strings.Replace(elsewhere.URL, "127.0.0.1", "localhost", 1), 301),
			wantErr: ErrVault, reason: "not a configured vault address"},
		"to a configured address, other path": {h: func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, active.URL+"/v1/sys/leader", http.StatusTemporaryRedirect)
		}, extra: []string{active.URL}, wantErr: ErrVault, reason: "not a configured vault address"},
		"with userinfo": {h: redirectTo(strings.Replace(active.URL, "://", "://u:p@", 1), 307), extra: []string{active.URL},
			wantErr: ErrVault, reason: "not a configured vault address"},
		"a second hop":        {h: redirectTo(hop2.URL, 307), extra: []string{hop2.URL, active.URL}, wantErr: ErrVault, reason: "second redirect"},
		"308 is not followed": {h: redirectTo(active.URL, 308), extra: []string{active.URL}, wantErr: ErrVault, reason: "308"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			elsewhereHits.Store(0)
			activeHits.Store(0)
			first, _ := fakeVault(t, tc.h)
			cfg := testConfig(plain, "ssh")
			cfg.VaultAddrs = append([]string{first.URL}, tc.extra...)
			r := login(t, cfg, "alice", fakeOTP)
			if elsewhereHits.Load() != 0 {
				t.Errorf("the unlisted address got %d requests", elsewhereHits.Load())
			}
			if got := activeHits.Load(); got != tc.wantActive {
				t.Errorf("the active node got %d requests, want %d", got, tc.wantActive)
			}
			if tc.wantErr == nil {
				if r.err != nil || r.rec.VaultAddr != active.URL {
					t.Fatalf("error = %v, recorded %q, want success recorded as %s", r.err, r.rec.VaultAddr, active.URL)
				}
				return
			}
			if !errors.Is(r.err, tc.wantErr) || !strings.Contains(r.rec.Reason, tc.reason) {
				t.Fatalf("error = %v, reason %q; want %v naming %q", r.err, r.rec.Reason, tc.wantErr, tc.reason)
			}
			if strings.Contains(r.rec.Reason, "u:p@") {
				t.Errorf("reason shows the redirect's userinfo: %q", r.rec.Reason)
			}
		})
	}
}

// Files the config names (or the config itself) as FIFOs, devices or
// oversized: refused at once, never read until the deadline.
func TestHostileFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.hcl")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	// Sparse: no disk spent, but the size is what a reader would face.
	if err := f.Truncate(100 << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	good := func(extra string) string {
		p := filepath.Join(t.TempDir(), "config.hcl")
		writeFileT(t, p, "vault_addr = \"https://127.0.0.1:8200\"\n"+extra)
		return p
	}
	tests := map[string]struct {
		path string
		want string
	}{
		"config is a FIFO":       {path: fifo, want: "not a regular file"},
		"config is a device":     {path: "/dev/zero", want: "not a regular file"},
		"config of 100 MiB":      {path: big, want: "larger than"},
		"ca_cert is a FIFO":      {path: good(fmt.Sprintf("ca_cert = %q\n", fifo)), want: "ca_cert"},
		"ca_cert is /dev/zero":   {path: good("ca_cert = \"/dev/zero\"\n"), want: "not a regular file"},
		"userinfo in vault_addr": {path: good("vault_addrs = [\"https://admin:pw@127.0.0.1:8201\"]\n"), want: "user name or password"},
		"userinfo in proxy_addr": {path: good("proxy_addr = \"http://admin:pw@127.0.0.1:3128\"\n"), want: "user name or password"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() {
				_, err := LoadConfig(tc.path)
				done <- err
			}()
			var err error
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("LoadConfig blocked") // generous: a bound, not a speed check
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want it to name %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "pw@") || strings.Contains(err.Error(), ":pw") {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
	t.Run("token_file is a FIFO", func(t *testing.T) {
		if _, err := readToken(fifo); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Fatalf("error = %v", err)
		}
	})
}

// A FIFO at audit_file that nobody reads: the login is decided (here:
// accepted) and the audit failure only reported.
func TestAuditFileFIFO(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "audit.log")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	a := &Auditor{Dest: AuditOff, File: fifo}
	done := make(chan error, 1)
	go func() { done <- a.Write(Record{User: "alice", Result: "success"}) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "audit file") {
			t.Fatalf("error = %v, want the audit file refused", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("audit write blocked on a FIFO")
	}
}

func TestQuoteValue(t *testing.T) {
	tests := map[string]struct {
		in     string
		quoted bool
	}{
		"plain":      {"alice", false},
		"space":      {"alice smith", false},
		"newline":    {"alice\nJan 1 sshd: Accepted", true},
		"lone 0x85":  {"alice\x85", true},
		"U+0085":     {"alice\u0085", true},
		"U+2028":     {"alice\u2028x", true},
		"escape":     {"alice\x1b[2J", true},
		"tab":        {"alice\tx", true},
		"non-ASCII":  {"zoë", false},
		"invalid 8b": {"\xff", true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := quoteValue(tc.in)
			if (got != tc.in) != tc.quoted {
				t.Fatalf("quoteValue(%q) = %q, quoted = %v, want %v", tc.in, got, got != tc.in, tc.quoted)
			}
			if strings.ContainsAny(got, "\n\r\u0085\u2028\u2029") {
				t.Errorf("quoteValue(%q) = %q still holds a line break", tc.in, got)
			}
		})
	}
}
