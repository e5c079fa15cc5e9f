package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/latchkey/latchkey/test/testkit"
	"github.com/latchkey/latchkey/test/totptest"
)

// The token_file of TOTP mode decides the login as much as the config:
// whoever could replace it chooses the token that asks Vault. One someone
// other than root could have written (the file, or a directory above it;
// a sticky one excepted) is refused before Vault is asked, exit 5 as any
// other unusable token_file (a missing one here), naming the file or
// directory and the fix; doctor fails it. One others may only read still
// logs in, but doctor fails it: it leaks the Vault token.
func TestBinaryTokenFileWriters(t *testing.T) {
	c := srv.Client
	const totpMount, seed, nobody = "totp-tokenfile", "JBSWY3DPEHPK3PXP", 65534
	srv.MountT(t, totpMount, &api.MountInput{Type: "totp"})
	testkit.Must(t, c.Sys().PutPolicy("tokenfile-totp", fmt.Sprintf(`path "%s/code/*" { capabilities = ["update"] }`, totpMount)))
	tok, err := c.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{"tokenfile-totp"}, NoParent: true})
	testkit.Must(t, err)
	token := tok.Auth.ClientToken
	root := os.Geteuid() == 0
	tests := map[string]struct {
		mode         os.FileMode // the token file's
		dirMode      os.FileMode // its directory's (0: 0700)
		owner, group int         // the file's (0: the test's)
		link         bool        // token_file names a symlink, in a private directory, to the file
		missing      bool        // no file at all
		fifo         bool        // a FIFO (mode 0600) in its place
		needRoot     bool
		wantCode     int
		want         string // in the login's output
		wantDoctor   string // in doctor's "totp token" lines
	}{
		"0600":                        {mode: 0o600, wantCode: exitOK, wantDoctor: "OK   totp token: the token may update"},
		"0640, own group":             {mode: 0o640, wantCode: exitOK, wantDoctor: "OK   totp token: the token may update"},
		"in a sticky world dir":       {mode: 0o600, dirMode: 0o777 | os.ModeSticky, wantCode: exitOK, wantDoctor: "OK   totp token"},
		"readable by everyone":        {mode: 0o644, wantCode: exitOK, wantDoctor: "FAIL totp token: token_file TOKEN is readable by every user (mode 0644), who can then use the Vault token — fix: chmod 0600 TOKEN"},
		"readable by another group":   {mode: 0o640, group: nobody, needRoot: true, wantCode: exitOK, wantDoctor: "is readable by group 65534 (mode 0640)"},
		"world-writable":              {mode: 0o666, wantCode: exitInternal, want: "token_file TOKEN is writable by every user (mode 0666), who could then choose the token that asks Vault whether a TOTP code is valid; refused (chmod go-w TOKEN)", wantDoctor: "FAIL totp token: token_file TOKEN is writable by every user (mode 0666)"},
		"writable by another group":   {mode: 0o620, group: nobody, needRoot: true, wantCode: exitInternal, want: "is writable by group 65534 (mode 0620)", wantDoctor: "every TOTP login is refused"},
		"owned by another user":       {mode: 0o600, owner: nobody, needRoot: true, wantCode: exitInternal, want: "token_file TOKEN is owned by uid 65534, who could then choose the token that asks Vault whether a TOTP code is valid; refused (chown root TOKEN)", wantDoctor: "every TOTP login is refused"},
		"in a world-writable dir":     {mode: 0o600, dirMode: 0o777, wantCode: exitInternal, want: "token_file TOKEN: its directory DIR is writable by every user (mode 0777), who could then put another token in its place; refused (chmod go-w DIR)", wantDoctor: "every TOTP login is refused"},
		"symlink to a world-writable": {mode: 0o666, link: true, wantCode: exitInternal, want: "is writable by every user (mode 0666)", wantDoctor: "FAIL totp token"},
		"symlink into a world dir":    {mode: 0o600, dirMode: 0o777, link: true, wantCode: exitInternal, want: "put another token in its place", wantDoctor: "FAIL totp token"},
		"missing (as before)":         {missing: true, wantCode: exitInternal, want: "read token_file: open TOKEN: no such file or directory", wantDoctor: "FAIL totp token: stat TOKEN"},
		// Refused at once by a login; doctor hung on it until killed.
		"a FIFO": {fifo: true, wantCode: exitInternal, want: "read token_file: TOKEN is not a regular file (p---------), refused",
			wantDoctor: "FAIL totp token: token_file: TOKEN is not a regular file (p---------), refused: every TOTP login is refused"},
	}
	n := 0
	for name, tc := range tests {
		n++
		user := fmt.Sprintf("tokfile%d", n) // a key each: a code is good once
		t.Run(name, func(t *testing.T) {
			if tc.needRoot && !root {
				t.Skip("needs root to give a file away")
			}
			_, err := c.Logical().Write(totpMount+"/keys/ssh-"+user, map[string]any{"key": seed, "generate": false, "issuer": "latchkey", "account_name": user})
			testkit.Must(t, err)
			dir := filepath.Join(t.TempDir(), "d")
			testkit.Must(t, os.Mkdir(dir, 0o700))
			file := filepath.Join(dir, "token")
			switch {
			case tc.fifo:
				testkit.Must(t, syscall.Mkfifo(file, 0o600))
			case !tc.missing:
				testkit.Must(t, os.WriteFile(file, []byte(token+"\n"), 0o600))
				testkit.Must(t, os.Chmod(file, tc.mode))
				testkit.Chown(t, file, tc.owner, tc.group)
			}
			if tc.dirMode != 0 {
				testkit.Must(t, os.Chmod(dir, tc.dirMode))
			}
			tokenFile := file
			if tc.link {
				tokenFile = filepath.Join(t.TempDir(), "token-link")
				testkit.Must(t, os.Symlink(file, tokenFile))
			}
			named := strings.NewReplacer("TOKEN", tokenFile, "DIR", dir)
			audit := filepath.Join(t.TempDir(), "audit.log")
			cfg := writeConfig(t, fmt.Sprintf("vault_addr = %q\nmode = \"totp\"\ntotp_mount = %q\ntotp_key_pattern = \"ssh-{{user}}\"\ntoken_file = %q\ntimeout = \"5s\"\naudit = \"off\"\naudit_file = %q\n",
				srv.Addr, totpMount, tokenFile, audit))

			code, out := runHelper(t, cfg, []string{"PAM_USER=" + user, "PAM_TYPE=auth", "PAM_SERVICE=sshd"}, totptest.Code(seed, time.Now()), "-dev")
			if code != tc.wantCode || !strings.Contains(out, named.Replace(tc.want)) {
				t.Fatalf("exit %d, want %d naming %q\n%s", code, tc.wantCode, named.Replace(tc.want), out)
			}
			var rec map[string]any
			testkit.Must(t, json.Unmarshal([]byte(testkit.ReadFile(audit)), &rec))
			if tc.wantCode != exitOK {
				if rec["result"] != "failure" || !strings.Contains(fmt.Sprint(rec["reason"]), named.Replace(tc.want)) {
					t.Errorf("audit record %v, want a failure naming %q", rec, named.Replace(tc.want))
				}
				if _, asked := rec["vault_addr"]; asked {
					t.Errorf("Vault was asked: %v", rec)
				}
			}

			doctor := boundedCommand(t, helper, "doctor", "-config", cfg, "-pam-file", filepath.Join(t.TempDir(), "no-pam"), "-sshd", "/nonexistent/sshd", "-user", user)
			doctor.Env = []string{}
			var doctorOut bytes.Buffer
			doctor.Stdout, doctor.Stderr = &doctorOut, &doctorOut
			testkit.ScanOutput(t, doctor)
			doctor.Run()
			dout := doctorOut.Bytes()
			var lines []string
			for _, l := range strings.Split(string(dout), "\n") {
				if strings.Contains(l, " totp token: ") {
					lines = append(lines, l)
				}
			}
			got := strings.Join(lines, "\n")
			if !strings.Contains(got, named.Replace(tc.wantDoctor)) {
				t.Errorf("doctor's totp token lines:\n%s\nwant %q (all of its output:\n%s)", got, named.Replace(tc.wantDoctor), dout)
			}
			if wantFail := strings.HasPrefix(tc.wantDoctor, "OK"); wantFail == strings.Contains(got, "FAIL") {
				t.Errorf("doctor's totp token lines:\n%s\nwant a FAIL: %v", got, !wantFail)
			}
			for what, s := range map[string]string{"output": out, "audit record": testkit.ReadFile(audit), "doctor": string(dout)} {
				if strings.Contains(s, token) {
					t.Errorf("the %s holds the token", what)
				}
			}
		})
	}
}
