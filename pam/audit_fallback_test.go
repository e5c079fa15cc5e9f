package pam

import (
	"encoding/json"
	"errors"
	"log/syslog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coreos/go-systemd/v22/journal"
)

// With audit = "auto" a record that neither the journal nor syslog accepts
// goes to the fallback file (pam_exec sends stderr to /dev/null); with a
// named destination, or when a system log took it, the file stays empty.
func TestAuditFallbackFile(t *testing.T) {
	rec := Record{User: "alice", Mode: ModeOTP, Result: "failure", Reason: "x"}
	tests := map[string]struct {
		dest                string
		journalOn, syslogOK bool
		want                bool
	}{
		"auto, nothing accepts":  {dest: AuditAuto, want: true},
		"auto, journal fails":    {dest: AuditAuto, journalOn: true, want: true},
		"unset dest is auto":     {dest: "", want: true},
		"auto, syslog accepts":   {dest: AuditAuto, syslogOK: true},
		"syslog only, it fails":  {dest: AuditSyslog},
		"journal only, it fails": {dest: AuditJournal, journalOn: true},
		"off":                    {dest: AuditOff},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			fallback := filepath.Join(dir, "latchkey-ssh-helper.log")
			a := &Auditor{
				Dest: tc.dest, Fallback: fallback,
				journalEnabled: func() bool { return tc.journalOn },
				journalSend: func(string, journal.Priority, map[string]string) error {
					return errors.New("journal refused")
				},
				syslogWrite: func(syslog.Priority, string) error {
					if tc.syslogOK {
						return nil
					}
					return errors.New("no /dev/log")
				},
			}
			a.Write(rec)
			b, err := os.ReadFile(fallback)
			if !tc.want {
				if err == nil {
					t.Errorf("fallback file written: %s", b)
				}
				return
			}
			var got Record
			if err != nil || json.Unmarshal(b, &got) != nil || got.User != "alice" || strings.Count(string(b), "\n") != 1 {
				t.Fatalf("fallback file = %q (%v)", b, err)
			}
			if fi, _ := os.Stat(fallback); fi.Mode().Perm() != 0o640 {
				t.Errorf("fallback file mode %v, want 0640", fi.Mode().Perm())
			}
		})
	}
}
