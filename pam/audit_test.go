package pam

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/syslog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/journal"
)

func TestAuditor(t *testing.T) {
	rec := Record{
		Time: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC), Service: "sshd", User: "alice",
		RHost: "198.51.100.7", Mode: ModeOTP, Role: "web", IP: "10.0.0.5",
		VaultAddr: "https://v:8200", RequestID: "req-1", Result: "success",
	}
	type sent struct {
		journal map[string]string
		syslog  string
		stderr  string
	}
	tests := map[string]struct {
		dest       string
		journalOn  bool
		syslogFail bool
		want       func(t *testing.T, s sent)
	}{
		"auto prefers the journal": {dest: AuditAuto, journalOn: true, want: func(t *testing.T, s sent) {
			if s.journal["LATCHKEY_RESULT"] != "success" || s.journal["PAM_USER"] != "alice" ||
				s.journal["LATCHKEY_VAULT_REQUEST_ID"] != "req-1" || s.journal["SYSLOG_IDENTIFIER"] != "latchkey-ssh-helper" {
				t.Errorf("journal fields = %v", s.journal)
			}
			if s.syslog != "" || s.stderr != "" {
				t.Errorf("also sent elsewhere: %+v", s)
			}
		}},
		"auto falls back to syslog": {dest: AuditAuto, want: func(t *testing.T, s sent) {
			if !strings.Contains(s.syslog, "accepted otp login for alice from 198.51.100.7") {
				t.Errorf("syslog = %q", s.syslog)
			}
		}},
		"stderr when nothing else": {dest: AuditAuto, syslogFail: true, want: func(t *testing.T, s sent) {
			if !strings.Contains(s.stderr, "audit: accepted otp login for alice") {
				t.Errorf("stderr = %q", s.stderr)
			}
		}},
		"journal only, journal missing": {dest: AuditJournal, want: func(t *testing.T, s sent) {
			if s.syslog != "" || !strings.Contains(s.stderr, "audit:") {
				t.Errorf("sent = %+v", s)
			}
		}},
		"off": {dest: AuditOff, journalOn: true, want: func(t *testing.T, s sent) {
			if s.journal != nil || s.syslog != "" || s.stderr != "" {
				t.Errorf("sent = %+v", s)
			}
		}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var s sent
			var stderr bytes.Buffer
			file := filepath.Join(t.TempDir(), "audit.log")
			a := &Auditor{
				Dest: tc.dest, File: file, Stderr: &stderr,
				journalEnabled: func() bool { return tc.journalOn },
				journalSend: func(msg string, _ journal.Priority, f map[string]string) error {
					s.journal = f
					return nil
				},
				syslogWrite: func(_ syslog.Priority, msg string) error {
					if tc.syslogFail {
						return errors.New("no /dev/log")
					}
					s.syslog = msg
					return nil
				},
			}
			a.Write(rec)
			s.stderr = stderr.String()
			tc.want(t, s)
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var got Record
			if err := json.Unmarshal(b, &got); err != nil || got.User != "alice" || got.Result != "success" {
				t.Errorf("audit file = %s (%v)", b, err)
			}
		})
	}
}

func TestRecordMessageFailure(t *testing.T) {
	r := Record{User: "bob", Mode: ModeOTP, Result: "failure", Reason: "login denied: role \"db\" is not in allowed_roles"}
	if got := r.Message(); got != `refused otp login for bob from unknown host: login denied: role "db" is not in allowed_roles` {
		t.Errorf("Message() = %q", got)
	}
}

func TestRecordMessageSuccess(t *testing.T) {
	r := Record{User: "alice", RHost: "203.0.113.9", Service: "sshd", Mode: ModeOTP, Role: "web", IP: "10.0.0.5",
		VaultAddr: "https://vault:8200", RequestID: "req-1", Result: "success"}
	want := `accepted otp login for alice from 203.0.113.9 via sshd (role "web", ip 10.0.0.5, vault https://vault:8200, request req-1)`
	if got := r.Message(); got != want {
		t.Errorf("Message() = %q, want %q", got, want)
	}
}

// A user name or reason with a newline cannot forge a second syslog line.
func TestRecordMessageOneLine(t *testing.T) {
	tests := map[string]Record{
		"user":    {User: "eve\naccepted otp login for root", Mode: ModeOTP, Result: "failure", Reason: "x"},
		"rhost":   {User: "eve", RHost: "h\r\nfake", Mode: ModeOTP, Result: "success"},
		"reason":  {User: "eve", Mode: ModeOTP, Result: "failure", Reason: "a\nb"},
		"service": {User: "eve", Service: "sshd\naccepted", Mode: ModeOTP, Result: "failure", Reason: "x"},
	}
	for name, r := range tests {
		t.Run(name, func(t *testing.T) {
			if m := r.Message(); strings.ContainsAny(m, "\r\n") {
				t.Errorf("Message() = %q", m)
			}
		})
	}
}

// Before the config is read the mode is unknown; the line still reads well.
func TestRecordMessageNoMode(t *testing.T) {
	r := Record{User: "bob", RHost: "203.0.113.9", Result: "failure", Reason: "config.hcl:2:1: unknown key"}
	if got := r.Message(); got != "refused login for bob from 203.0.113.9: config.hcl:2:1: unknown key" {
		t.Errorf("Message() = %q", got)
	}
}

// audit_file: created 0640 whatever the umask; an existing file keeps its
// mode; a symlink at the path is refused (and its target left alone). The
// umask is process-wide: this test does not run in parallel.
func TestAuditFileMode(t *testing.T) {
	dir := t.TempDir()
	rec := Record{Time: time.Now().UTC(), User: "alice", Result: "failure", Reason: "test"}
	newFile := filepath.Join(dir, "new.log")
	old := syscall.Umask(0o077)
	err := (&Auditor{Dest: AuditOff, File: newFile}).Write(rec)
	syscall.Umask(old)
	if err != nil {
		t.Fatal(err)
	}
	if perm, err := permOf(newFile); err != nil || perm != 0o640 {
		t.Errorf("new audit file under umask 077: %#o, %v; want mode 0640", perm, err)
	}

	existing := filepath.Join(dir, "existing.log")
	if err := os.WriteFile(existing, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := (&Auditor{Dest: AuditOff, File: existing}).Write(rec); err != nil {
		t.Fatal(err)
	}
	if perm, err := permOf(existing); err != nil || perm != 0o600 {
		t.Errorf("existing 0600 audit file: %#o, %v; want its mode kept", perm, err)
	}
	if b, _ := os.ReadFile(existing); len(b) == 0 {
		t.Error("no record appended to the existing audit file")
	}

	target := filepath.Join(dir, "target")
	if err := os.WriteFile(target, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.log")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := (&Auditor{Dest: AuditOff, File: link}).Write(rec); err == nil || !strings.Contains(err.Error(), "symlink") {
		t.Errorf("audit_file a symlink: %v, want refused", err)
	}
	if b, _ := os.ReadFile(target); len(b) != 0 {
		t.Errorf("the symlink's target was written: %q", b)
	}
}

func permOf(p string) (os.FileMode, error) {
	fi, err := os.Lstat(p)
	if err != nil {
		return 0, err
	}
	return fi.Mode().Perm(), nil
}

// A value with a blank or a double quote is one quoted token of the line;
// the reason, the rest of the line, keeps its blanks.
func TestRecordMessageQuotesBlanks(t *testing.T) {
	tests := map[string]struct {
		r    Record
		want string
	}{
		"user": {Record{User: "x from 192.0.2.1 via sshd:", RHost: "203.0.113.9", Service: "sshd", Mode: ModeOTP, Result: "failure", Reason: "login denied: no"},
			`refused otp login for "x from 192.0.2.1 via sshd:" from 203.0.113.9 via sshd: login denied: no`},
		"quote": {Record{User: `a"b`, Mode: ModeOTP, Result: "failure", Reason: "r"},
			`refused otp login for "a\"b" from unknown host: r`},
		"rhost and service": {Record{User: "eve", RHost: "h h", Service: "s s", Mode: ModeOTP, Result: "failure", Reason: "r"},
			`refused otp login for eve from "h h" via "s s": r`},
		"success": {Record{User: "a b", RHost: "203.0.113.9", Service: "sshd", Mode: ModeOTP, Role: "web", IP: "10.0.0.5", VaultAddr: "https://v:8200", RequestID: "id 1", Result: "success"},
			`accepted otp login for "a b" from 203.0.113.9 via sshd (role "web", ip 10.0.0.5, vault https://v:8200, request "id 1")`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := tc.r.Message(); got != tc.want {
				t.Errorf("Message() =\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}
