package fault

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/latchkey/latchkey/test/testkit"
	"github.com/latchkey/latchkey/test/vaulttest"
)

// logSockets are datagram sockets that stand in for journald's and
// syslog's inside the helper's private mount namespace.
type logSockets struct {
	dir              string
	journal, syslog  *net.UnixConn
	journalP, syslgP string
}

func newLogSockets(t *testing.T) *logSockets {
	t.Helper()
	s := &logSockets{dir: t.TempDir()}
	s.journalP, s.syslgP = filepath.Join(s.dir, "journal.sock"), filepath.Join(s.dir, "log.sock")
	var err error
	s.journal, err = net.ListenUnixgram("unixgram", &net.UnixAddr{Name: s.journalP, Net: "unixgram"})
	testkit.Must(t, err)
	s.syslog, err = net.ListenUnixgram("unixgram", &net.UnixAddr{Name: s.syslgP, Net: "unixgram"})
	testkit.Must(t, err)
	t.Cleanup(func() { s.journal.Close(); s.syslog.Close() })
	return s
}

// read returns the datagrams that arrived on c by now.
func readDatagrams(c *net.UnixConn) [][]byte {
	var out [][]byte
	for {
		buf := make([]byte, 256<<10)
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, err := c.Read(buf)
		if err != nil {
			return out
		}
		out = append(out, buf[:n])
	}
}

// namespaceShim runs its arguments in a private mount namespace where
// /run/systemd/journal/socket and /dev/log are the test's sockets $J and
// $S: the real journal and syslog clients of the helper, the machine's
// logs untouched.
const namespaceShim = `set -e
mkdir -p /run/systemd
mount -t tmpfs -o mode=0755 tmpfs /run/systemd
mkdir /run/systemd/journal
: > /run/systemd/journal/socket
mount --bind "$J" /run/systemd/journal/socket
mount -t tmpfs -o mode=0755 tmpfs /dev
: > /dev/log
mount --bind "$S" /dev/log
exec "$@"`

// hostileLogin runs the helper with env and stdin in the shim; it returns
// the exit code and the output.
func hostileLogin(t *testing.T, socks *logSockets, cfg string, env []string, stdin []byte) (int, string) {
	t.Helper()
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", namespaceShim, "sh",
		helperBin, "-config="+cfg, "-dev", "-log-level=trace")
	cmd.Env = append([]string{"J=" + socks.journalP, "S=" + socks.syslgP, "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}, env...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Run(); err != nil && cmd.ProcessState == nil {
		t.Fatal(err)
	}
	scanLog(t, "the helper", out.String())
	return cmd.ProcessState.ExitCode(), out.String()
}

// Hostile stdin and PAM variables through the real helper: refused with a
// clear reason (or, for what pam_exec and `echo` really send, accepted),
// and each audit record — JSON line, journal entry, syslog line — is one
// record with the hostile characters escaped: never a forged line.
func TestFaultHostileHelper(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the helper's journal and syslog are sockets mounted in a private mount namespace; CI runs as root")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Fatalf("unshare (util-linux) is needed: %v", err)
	}
	srv := vaulttest.StartT(t, vaulttest.Options{})
	c := srv.Client
	sshRole(t, c)
	socks := newLogSockets(t)
	const forged = "Dec  1 00:00:00 host sshd[1]: Accepted password for root"
	valid := func() []byte { return []byte(issueOTP(t, c)) }
	tests := []struct {
		name        string
		user, rhost string
		stdin       func() []byte
		code        int
		reason      string
	}{
		{name: "10 MiB on stdin", stdin: func() []byte { return bytes.Repeat([]byte("a"), 10<<20) }, code: helperDenied, reason: "longer than 512 bytes"},
		{name: "NUL inside the OTP", stdin: func() []byte { b := valid(); b[8] = 0; return b }, code: helperDenied, reason: "holds a NUL byte"},
		{name: "non-UTF-8 password", stdin: func() []byte { return []byte("\xff\xfe\xfd\xfc") }, code: helperDenied, reason: "not a Vault OTP"},
		{name: "terminal escapes as password", stdin: func() []byte { return []byte("\x1b[2J\x1b]0;owned\x07\n" + forged) }, code: helperDenied, reason: "not a Vault OTP"},
		{name: "newline in PAM_USER", user: "alice\n" + forged, code: helperDenied, reason: "PAM_USER holds a control character"},
		{name: "non-UTF-8 PAM_USER", user: "alice\xff\xfe", code: helperDenied, reason: "PAM_USER holds a control character or invalid UTF-8"},
		{name: "U+2028 in PAM_USER", user: "alice\u2028" + forged, code: helperDenied, reason: "PAM_USER holds"},
		{name: "CR LF in PAM_RHOST", rhost: "127.0.0.1\r\n" + forged, code: helperDenied, reason: "PAM_RHOST holds"},
		{name: "terminal escape in PAM_RHOST", rhost: "127.0.0.1\x1b[2K\r", code: helperDenied, reason: "PAM_RHOST holds"},
		{name: "NUL-terminated OTP (older pam_exec)", stdin: func() []byte { return append(valid(), 0, 0) }, code: helperOK},
		{name: "OTP with a newline (echo by hand)", stdin: func() []byte { return append(valid(), '\n') }, code: helperOK},
	}
	var runs, refused, records int
	for _, tc := range tests {
		for _, dest := range []string{"journal", "syslog"} {
			t.Run(tc.name+", "+dest, func(t *testing.T) {
				user, rhost := "alice", "127.0.0.1"
				if tc.user != "" {
					user = tc.user
				}
				if tc.rhost != "" {
					rhost = tc.rhost
				}
				stdin := []byte(randomOTP(runs))
				if tc.stdin != nil {
					stdin = tc.stdin()
				}
				auditFile := filepath.Join(t.TempDir(), "audit.json")
				cfg := filepath.Join(t.TempDir(), "helper.hcl")
				testkit.WriteFile(t, cfg, fmt.Sprintf("vault_addr = %q\nssh_mount_point = \"ssh\"\nallowed_roles = \"web\"\naudit = %q\naudit_file = %q\ntimeout = \"10s\"\n",
					srv.Addr, dest, auditFile))
				code, out := hostileLogin(t, socks, cfg, []string{"PAM_USER=" + user, "PAM_RHOST=" + rhost, "PAM_TYPE=auth", "PAM_SERVICE=sshd"}, stdin)
				runs++
				if code != tc.code {
					t.Fatalf("exit %d, want %d\n%s", code, tc.code, out)
				}
				if code != helperOK {
					refused++
				}
				if tc.reason != "" && !strings.Contains(out, tc.reason) {
					t.Errorf("the output does not say %q:\n%s", tc.reason, out)
				}
				for _, line := range strings.Split(out, "\n") {
					if strings.HasPrefix(line, "Dec  1") {
						t.Errorf("forged line in the output: %q", line)
					}
				}
				checkJSONAudit(t, auditFile, user, tc.reason)
				var got [][]byte
				if dest == "journal" {
					got = readDatagrams(socks.journal)
				} else {
					got = readDatagrams(socks.syslog)
				}
				if len(got) != 1 {
					t.Fatalf("%d %s records, want 1\n%s", len(got), dest, out)
				}
				records++
				var msg string
				if dest == "journal" {
					f, err := testkit.ParseJournal(got[0])
					testkit.Must(t, err)
					msg = f["MESSAGE"]
					if f["PAM_USER"] != user {
						t.Errorf("journal field PAM_USER = %q, want %q kept whole (journald stores fields binary-safe)", f["PAM_USER"], user)
					}
				} else {
					msg = strings.TrimSuffix(string(got[0]), "\n")
				}
				t.Logf("%s record: %q", dest, msg)
				if strings.ContainsAny(msg, "\n\r\x1b") || strings.Contains(msg, "\u2028") || strings.Contains(msg, "\x85") || !utf8.ValidString(msg) {
					t.Errorf("%s record not escaped: %q", dest, msg)
				}
				if tc.reason != "" && !strings.Contains(msg, tc.reason) {
					t.Errorf("%s record %q does not say %q", dest, msg, tc.reason)
				}
			})
		}
	}
	report("hostile helper: %d runs of %d inputs (10 MiB stdin, NUL, non-UTF-8, terminal escapes, control characters in PAM_USER/PAM_RHOST) through the real binary, %d refused with the reason named, %d journal and syslog records each one line with the input escaped, 0 forged lines",
		runs, len(tests), refused, records)
}

// checkJSONAudit checks that the audit file holds one JSON record of user
// (escaped by JSON, so one line whatever it holds) with reason.
func checkJSONAudit(t *testing.T, path, user, reason string) {
	t.Helper()
	b, err := os.ReadFile(path)
	testkit.Must(t, err)
	if bytes.Count(b, []byte("\n")) != 1 || !bytes.HasSuffix(b, []byte("\n")) {
		t.Fatalf("audit file is not one line: %q", b)
	}
	var rec struct {
		User   string `json:"pam_user"`
		Reason string `json:"reason"`
	}
	testkit.Must(t, json.Unmarshal(b, &rec))
	// JSON carries every character escaped; an invalid byte becomes U+FFFD.
	var want string
	j, _ := json.Marshal(user)
	testkit.Must(t, json.Unmarshal(j, &want))
	if rec.User != want {
		t.Errorf("audit pam_user = %q, want %q", rec.User, want)
	}
	if !strings.Contains(rec.Reason, reason) {
		t.Errorf("audit reason %q does not say %q", rec.Reason, reason)
	}
}

// otherUID is the user that plants symlinks in the destinations' directory.
const otherUID = 12345

// Hostile destinations through the real agent: a path with ".." through
// another user's symlink is cleaned (written beside, never through the
// link); a destination that is another user's symlink is replaced, its
// target untouched; and a process of another user swapping a symlink in
// at the destination, again and again while the agent renders, never gets
// a byte written outside.
func TestFaultHostileDestinations(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: symlinks are planted by a process of another user; CI runs as root")
	}
	srv := vaulttest.StartT(t, vaulttest.Options{})
	c := srv.Client
	agentSetup(t, c)
	// A directory another user may write to, and one outside it that
	// nothing may change.
	shared, err := os.MkdirTemp("", "latchkey-hostile-")
	testkit.Must(t, err)
	t.Cleanup(func() { os.RemoveAll(shared) })
	testkit.Must(t, os.Chmod(shared, 0o777))
	outside := t.TempDir()
	target := filepath.Join(outside, "target")
	testkit.WriteFile(t, target, "outside, untouched")
	before, err := os.Stat(target)
	testkit.Must(t, err)

	link := filepath.Join(shared, "link")
	testkit.Must(t, os.Symlink(outside, link))
	testkit.Must(t, os.Lchown(link, otherUID, otherUID))
	dotdot := filepath.Join(link, "..", "dotdot.txt") // lexically shared/dotdot.txt; through the link outside/../dotdot.txt
	symDest := filepath.Join(shared, "sym.txt")
	testkit.Must(t, os.Symlink(target, symDest))
	testkit.Must(t, os.Lchown(symDest, otherUID, otherUID))
	raced := filepath.Join(shared, "raced.txt")

	a := startAgentTo(t, c, fmt.Sprintf("address = %q", srv.Addr), raced, dotdot, symDest)
	a.waitContent(t, val(1), 30*time.Second)
	if got := testkit.ReadFile(filepath.Join(shared, "dotdot.txt")); got != val(1) {
		t.Errorf(`the ".." destination holds %q at its cleaned path, want v1`, got)
	}
	if _, err := os.Lstat(filepath.Join(filepath.Dir(outside), "dotdot.txt")); err == nil {
		t.Error(`the ".." destination was written through the symlink`)
	}
	testkit.Eventually(t, "the symlink destination replaced by a regular file", func() bool {
		fi, err := os.Lstat(symDest)
		return err == nil && fi.Mode().IsRegular() && testkit.ReadFile(symDest) == val(1)
	})

	// The race: another user renames a symlink to target over raced.txt
	// in a loop while the secret changes every 100 ms.
	swapper := exec.Command("sh", "-c", `n=0; while :; do ln -sf "$T" "$D.x" && mv -fT "$D.x" "$D" && n=$((n+1)); [ $((n % 50)) -eq 0 ] && echo $n > "$D.count"; done`)
	swapper.Env = []string{"T=" + target, "D=" + raced, "PATH=/usr/bin:/bin"}
	swapper.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: otherUID, Gid: otherUID}, Pdeathsig: syscall.SIGKILL}
	testkit.Must(t, swapper.Start())
	stopped := false
	stop := func() {
		if !stopped {
			swapper.Process.Kill()
			swapper.Wait()
			stopped = true
		}
	}
	t.Cleanup(stop)
	changes := 0
	for deadline := time.Now().Add(4 * time.Second); time.Now().Before(deadline); changes++ {
		v := val(100 + changes)
		remember(v)
		_, err := c.Logical().Write("kv/app", map[string]any{"v": v})
		testkit.Must(t, err)
		time.Sleep(100 * time.Millisecond)
	}
	stop()
	swaps := strings.TrimSpace(testkit.ReadFile(raced + ".count"))
	after, err := os.Stat(target)
	testkit.Must(t, err)
	if got := testkit.ReadFile(target); got != "outside, untouched" || !os.SameFile(before, after) || after.Mode() != before.Mode() {
		t.Fatalf("the file outside changed: %q, mode %v", got, after.Mode())
	}
	if strings.Contains(a.log.String(), "panic") {
		t.Errorf("the agent panicked:\n%s", a.log.String())
	}
	// The agent still works: once the race is over, the latest value arrives.
	remember(val(2))
	_, err = c.Logical().Write("kv/app", map[string]any{"v": val(2)})
	testkit.Must(t, err)
	testkit.Eventually(t, "the raced destination current after the race", func() bool {
		fi, err := os.Lstat(raced)
		return err == nil && fi.Mode().IsRegular() && testkit.ReadFile(raced) == val(2)
	})
	report(`hostile destinations: ".." through another user's symlink written at the cleaned path only; another user's symlink as destination replaced, its target untouched; %s symlink swaps by uid %d during %d secret changes: 0 bytes written outside, agent current afterwards`,
		swaps, otherUID, changes)
}
