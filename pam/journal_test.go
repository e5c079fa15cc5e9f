package pam

import (
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/latchkey/latchkey/test/testkit"
)

// journalChildEnv marks the re-executed test binary that runs inside its own
// mount namespace (see TestAuditJournalReal).
const journalChildEnv = "LATCHKEY_PAM_JOURNAL_CHILD"

// The audit record through go-systemd's real journal client, to a socket at
// journald's real path, read back in journald's native protocol. The socket
// lives on a tmpfs over /run/systemd in a private mount namespace, so the
// machine's own journal (or its absence) is untouched.
func TestAuditJournalReal(t *testing.T) {
	if os.Getenv(journalChildEnv) == "" {
		if os.Geteuid() != 0 {
			t.Skip("needs root: mounts a tmpfs over /run/systemd in a private mount namespace")
		}
		if _, err := exec.LookPath("unshare"); err != nil {
			t.Fatalf("unshare (util-linux) is needed: %v", err)
		}
		cmd := exec.Command("unshare", "--mount", "--propagation", "private",
			os.Args[0], "-test.run=^TestAuditJournalReal$", "-test.v")
		cmd.Env = append(os.Environ(), journalChildEnv+"=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestAuditJournalReal") {
			t.Fatalf("child in a private mount namespace: %v\n%s", err, out)
		}
		return
	}

	// The child: its own /run/systemd with a journal socket.
	if err := os.MkdirAll("/run/systemd", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", "/run/systemd", "tmpfs", 0, "mode=0755"); err != nil {
		t.Fatalf("mount tmpfs on /run/systemd: %v", err)
	}
	if err := os.Mkdir("/run/systemd/journal", 0o755); err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: "/run/systemd/journal/socket", Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	a := &Auditor{Dest: AuditAuto, Stderr: os.Stderr}
	ok := Record{Time: time.Now().UTC(), Service: "sshd", User: "alice", RHost: "198.51.100.7", Mode: ModeOTP,
		Role: "web", IP: "10.0.0.5", VaultAddr: "https://v:8200", RequestID: "req-1", Result: "success"}
	bad := Record{Time: time.Now().UTC(), Service: "sshd", User: "eve\nforged line", RHost: "198.51.100.8", Mode: ModeOTP,
		Result: "failure", Reason: "login denied: vault does not know this OTP (wrong, used or expired)"}
	for _, tc := range []struct {
		rec  Record
		want map[string]string
	}{
		{ok, map[string]string{
			"PRIORITY": "6", "SYSLOG_IDENTIFIER": "latchkey-ssh-helper", "SYSLOG_FACILITY": "10",
			"MESSAGE":         `accepted otp login for alice from 198.51.100.7 via sshd (role "web", ip 10.0.0.5, vault https://v:8200, request req-1)`,
			"LATCHKEY_RESULT": "success", "LATCHKEY_MODE": "otp", "PAM_SERVICE": "sshd", "PAM_USER": "alice",
			"PAM_RHOST": "198.51.100.7", "LATCHKEY_ROLE": "web", "LATCHKEY_IP": "10.0.0.5",
			"LATCHKEY_VAULT_ADDR": "https://v:8200", "LATCHKEY_VAULT_REQUEST_ID": "req-1",
		}},
		{bad, map[string]string{
			"PRIORITY": "4", "LATCHKEY_RESULT": "failure", "PAM_USER": "eve\nforged line",
			"MESSAGE":         `refused otp login for "eve\nforged line" from 198.51.100.8 via sshd: login denied: vault does not know this OTP (wrong, used or expired)`,
			"LATCHKEY_REASON": "login denied: vault does not know this OTP (wrong, used or expired)",
		}},
	} {
		if err := a.Write(tc.rec); err != nil {
			t.Fatalf("Write: %v", err)
		}
		buf := make([]byte, 64<<10)
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("read the journal datagram: %v", err)
		}
		got, err := testkit.ParseJournal(buf[:n])
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("%s = %q, want %q", k, got[k], v)
			}
		}
		if tc.rec.Result == "failure" {
			for _, k := range []string{"LATCHKEY_ROLE", "LATCHKEY_IP", "LATCHKEY_VAULT_REQUEST_ID"} {
				if _, ok := got[k]; ok {
					t.Errorf("empty %s sent: %q", k, got[k])
				}
			}
		}
	}
}
