package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/test/testkit"
)

// audit_file on a nearly full disk (a real tmpfs: the file's last page has
// less room than a record, the file system none): the login is decided as
// Vault says, as with any audit failure (README: an audit destination that
// fails never decides a login); the record written in part is cut off
// again, so that the file holds whole lines only; the warning names the
// audit file and the error; and once there is room the next login's record
// is a line of its own, not glued to a partial one.
func TestBinaryAuditFileDiskFull(t *testing.T) {
	yes, _ := yesServer(t, "alice", false)
	page := os.Getpagesize()
	tests := map[string]struct {
		user     string // PAM_USER: the OTP is alice's
		before   int    // bytes of whole lines in the file before the login
		wantCode int
		want     string
	}{
		"accepted, short write": {user: "alice", before: page - 50, wantCode: exitOK, want: "the partial line was removed"},
		"refused, short write":  {user: "bob", before: page - 50, wantCode: exitDenied, want: "the partial line was removed"},
		"accepted, no room":     {user: "alice", before: page, wantCode: exitOK, want: "no space left on device"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			mnt := testkit.SmallTmpfs(t, 64<<10)
			audit := filepath.Join(mnt, "audit.log")
			var old strings.Builder
			for old.Len() < tc.before {
				l := min(100, tc.before-old.Len())
				old.WriteString(`{"old":"` + strings.Repeat("o", l-11) + `"}` + "\n")
			}
			testkit.Must(t, os.WriteFile(audit, []byte(old.String()), 0o640))
			free := testkit.FillDisk(t, mnt)
			freed := false
			defer func() {
				if !freed {
					free()
				}
			}()
			cfg := writeConfig(t, fmt.Sprintf("vault_addr = %q\nallowed_roles = \"*\"\ntimeout = \"5s\"\naudit = \"off\"\naudit_file = %q\n", yes.URL, audit))
			environ := []string{"PAM_USER=" + tc.user, "PAM_TYPE=auth", "PAM_SERVICE=sshd", "PAM_RHOST=127.0.0.1"}
			code, out := runHelper(t, cfg, environ, fakeOTP, "-dev")
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d\n%s", code, tc.wantCode, out)
			}
			for _, w := range []string{"audit record not fully written", "audit file: write " + audit + ": no space left on device", tc.want} {
				if !strings.Contains(out, w) {
					t.Errorf("the output does not say %q:\n%s", w, out)
				}
			}
			if got := testkit.ReadFile(audit); got != old.String() {
				t.Fatalf("audit file holds %d bytes (ends %q), want only the %d bytes of whole lines before", len(got), got[max(0, len(got)-40):], old.Len())
			}

			// Room again: the next record is one JSON line after the old ones.
			free()
			freed = true
			code, out = runHelper(t, cfg, environ, fakeOTP, "-dev")
			if code != tc.wantCode || strings.Contains(out, "audit record not fully written") {
				t.Fatalf("with room: exit %d, want %d and no audit warning\n%s", code, tc.wantCode, out)
			}
			got := testkit.ReadFile(audit)
			rest, ok := strings.CutPrefix(got, old.String())
			var rec map[string]any
			if !ok || strings.Count(rest, "\n") != 1 || json.Unmarshal([]byte(rest), &rec) != nil || rec["pam_user"] != tc.user {
				t.Fatalf("after the old lines the file holds %q, want one JSON record of %s", rest, tc.user)
			}
		})
	}
}
