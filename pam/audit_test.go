package pam

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/syslog"
	"os"
	"path/filepath"
	"strings"
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
