package main

// Attacks on the built binary through its environment, its files and its
// log lines (issue 15). Every server is on 127.0.0.1.

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/latchkey/latchkey/test/testkit"
)

const fakeOTP = "11111111-2222-3333-4444-555555555555"

// yesServer says yes to any OTP for user, and counts the requests it got
// (as a Vault, or as a proxy: a proxy's requests carry an absolute URL).
func yesServer(t *testing.T, user string, tls bool) (*httptest.Server, *atomic.Int32) {
	var n atomic.Int32
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"request_id": "evil",
			"data": map[string]string{"username": user, "ip": "127.0.0.1", "role_name": "web"}})
	})
	var s *httptest.Server
	if tls {
		s = httptest.NewTLSServer(h)
	} else {
		s = httptest.NewServer(h)
	}
	t.Cleanup(s.Close)
	return s, &n
}

func runHelper(t *testing.T, cfg string, environ []string, stdin string, args ...string) (int, string) {
	t.Helper()
	cmd := boundedCommand(t, helper, append([]string{"-config=" + cfg}, args...)...)
	cmd.Env = environ
	cmd.Stdin = strings.NewReader(stdin)
	return runCommand(t, cmd)
}

// runCommand runs cmd (stdout and stderr together, through the package's
// secret scan) and returns its exit code and output; a command that could
// not be started fails the test.
func runCommand(t *testing.T, cmd *exec.Cmd) (int, string) {
	t.Helper()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	testkit.ScanOutput(t, cmd)
	if err := cmd.Run(); cmd.ProcessState == nil {
		t.Fatalf("%v: %v", cmd.Args, err)
	}
	return cmd.ProcessState.ExitCode(), out.String()
}

// An attacker's proxy and CA in the environment: never used. Malformed
// VAULT_* variables: never read, so they cannot break logins either.
func TestBinaryIgnoresEnvironment(t *testing.T) {
	proxy, proxyHits := yesServer(t, "alice", false)
	evil, evilHits := yesServer(t, "alice", true)
	caFile := filepath.Join(t.TempDir(), "evil-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: evil.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	hostile := []string{
		"HTTP_PROXY=" + proxy.URL, "HTTPS_PROXY=" + proxy.URL, "http_proxy=" + proxy.URL, "https_proxy=" + proxy.URL,
		"ALL_PROXY=" + proxy.URL, "NO_PROXY=", "SSL_CERT_FILE=" + caFile, "SSL_CERT_DIR=" + filepath.Dir(caFile),
		"VAULT_ADDR=" + proxy.URL, "VAULT_SKIP_VERIFY=maybe", "VAULT_MAX_RETRIES=x", "VAULT_CACERT=/nonexistent",
		"VAULT_HEADERS=notjson", "VAULT_CLIENT_TIMEOUT=forever", "VAULT_PROXY_ADDR=" + proxy.URL, "VAULT_HTTP_PROXY=" + proxy.URL,
	}
	pamEnv := []string{"PAM_USER=alice", "PAM_TYPE=auth", "PAM_RHOST=127.0.0.1"}

	t.Run("proxy from the environment", func(t *testing.T) {
		// A name that does not resolve: only a proxy could reach it.
		cfg := writeConfig(t, "vault_addr = \"http://vault.invalid:8200\"\nallowed_roles = \"*\"\ntimeout = \"3s\"\naudit = \"off\"\n")
		code, out := runHelper(t, cfg, append(pamEnv, hostile...), fakeOTP, "-dev")
		if code == exitOK || proxyHits.Load() != 0 {
			t.Fatalf("exit %d, proxy got %d requests (want none and a refusal)\n%s", code, proxyHits.Load(), out)
		}
	})
	t.Run("CA from SSL_CERT_FILE", func(t *testing.T) {
		// The attacker's server at a configured address, its CA in
		// SSL_CERT_FILE; the config names no ca_cert.
		cfg := writeConfig(t, fmt.Sprintf("vault_addr = %q\nallowed_roles = \"*\"\ntimeout = \"3s\"\naudit = \"off\"\n", evil.URL))
		code, out := runHelper(t, cfg, append(pamEnv, hostile...), fakeOTP)
		if code != exitVault || evilHits.Load() != 0 || !strings.Contains(out, "certificate") {
			t.Fatalf("exit %d, attacker got %d requests (want exit %d, none, a certificate error)\n%s", code, evilHits.Load(), exitVault, out)
		}
	})
	t.Run("proxy_addr from the config is used", func(t *testing.T) {
		proxyHits.Store(0)
		cfg := writeConfig(t, fmt.Sprintf("vault_addr = \"http://vault.invalid:8200\"\nproxy_addr = %q\nallowed_roles = \"*\"\ntimeout = \"3s\"\naudit = \"off\"\n", proxy.URL))
		code, out := runHelper(t, cfg, pamEnv, fakeOTP, "-dev")
		if code != exitOK || proxyHits.Load() != 1 {
			t.Fatalf("exit %d, proxy got %d requests (want 0 and 1)\n%s", code, proxyHits.Load(), out)
		}
	})
	t.Run("malformed VAULT_* do not break a real login", func(t *testing.T) {
		const mount = "ssh-hostile-env"
		srv.MountT(t, mount, &api.MountInput{Type: "ssh"})
		c := srv.Client
		if _, err := c.Logical().Write(mount+"/roles/web", map[string]any{"key_type": "otp", "default_user": "alice", "cidr_list": "127.0.0.0/8"}); err != nil {
			t.Fatal(err)
		}
		s, err := c.Logical().Write(mount+"/creds/web", map[string]any{"ip": "127.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		// No proxy variables here: the address is 127.0.0.1, which Go's
		// proxy rules would skip anyway.
		var vaultOnly []string
		for _, kv := range hostile {
			if strings.HasPrefix(kv, "VAULT_") {
				vaultOnly = append(vaultOnly, kv)
			}
		}
		cfg := writeConfig(t, fmt.Sprintf("vault_addr = %q\nssh_mount_point = %q\nallowed_roles = \"web\"\naudit = \"off\"\n", srv.Addr, mount))
		code, out := runHelper(t, cfg, append(pamEnv, vaultOnly...), s.Data["key"].(string), "-dev")
		if code != exitOK {
			t.Fatalf("exit %d, want %d\n%s", code, exitOK, out)
		}
	})
}

// A user name with a newline, a NEL (U+0085) or a lone 0x85 byte cannot
// forge a second line in what pam_exec's log= file keeps: such a PAM_USER
// (or PAM_RHOST) is refused before Vault is asked, even when Vault would
// say yes, and the refusal's line quotes it.
func TestBinaryLogInjection(t *testing.T) {
	const forged = "Dec  1 00:00:00 host sshd[1]: Accepted password for root"
	for name, tc := range map[string]struct {
		user string
		want int
	}{
		"newline":   {"alice\n" + forged, exitDenied},
		"U+0085":    {"alice\u0085" + forged, exitDenied},
		"lone 0x85": {"alice\x85" + forged, exitDenied},
	} {
		t.Run(name, func(t *testing.T) {
			user := tc.user
			yes, hits := yesServer(t, user, false)
			cfg := writeConfig(t, fmt.Sprintf("vault_addr = %q\nallowed_roles = \"*\"\ntimeout = \"3s\"\naudit = \"off\"\n", yes.URL))
			code, out := runHelper(t, cfg, []string{"PAM_USER=" + user, "PAM_TYPE=auth", "PAM_RHOST=" + user}, fakeOTP, "-dev")
			if code != tc.want {
				t.Fatalf("exit %d, want %d\n%s", code, tc.want, out)
			}
			for _, line := range strings.Split(out, "\n") {
				if strings.HasPrefix(line, "Dec  1") {
					t.Errorf("forged line in the output: %q\n%s", line, out)
				}
			}
			if strings.Contains(out, "\x85") {
				t.Errorf("a raw 0x85 byte in the output: %q", out)
			}
			if !strings.Contains(out, "PAM_USER holds a control character or invalid UTF-8") {
				t.Errorf("the refusal does not say why: %s", out)
			}
			if n := hits.Load(); n != 0 {
				t.Errorf("Vault was asked %d times", n)
			}
		})
	}
}

// FIFOs nobody writes or reads, as the config, as ca_cert and as
// audit_file: the run never blocks on them. The config and CA are refused
// (exit 3, not the deadline's 4); the audit file does not decide the login.
func TestBinaryFIFOs(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	yes, _ := yesServer(t, "alice", false)
	pamEnv := []string{"PAM_USER=alice", "PAM_TYPE=auth", "PAM_RHOST=127.0.0.1"}
	tests := map[string]struct {
		cfg      string
		wantCode int
		want     string
	}{
		"config":     {cfg: fifo, wantCode: exitConfig, want: "not a regular file"},
		"ca_cert":    {cfg: writeConfig(t, fmt.Sprintf("vault_addr = \"https://127.0.0.1:1\"\nca_cert = %q\naudit = \"off\"\n", fifo)), wantCode: exitConfig, want: "ca_cert"},
		"audit_file": {cfg: writeConfig(t, fmt.Sprintf("vault_addr = %q\nallowed_roles = \"*\"\ntimeout = \"30s\"\naudit = \"off\"\naudit_file = %q\n", yes.URL, fifo)), wantCode: exitOK, want: "audit file"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			args := []string{}
			if name == "audit_file" {
				args = append(args, "-dev")
			}
			code, out := runHelper(t, tc.cfg, pamEnv, fakeOTP, args...)
			if code != tc.wantCode || !strings.Contains(out, tc.want) {
				t.Fatalf("exit %d, want %d naming %q\n%s", code, tc.wantCode, tc.want, out)
			}
		})
	}
}

// vault_addr with a password: refused, and the password shows nowhere.
func TestBinaryUserinfoRefused(t *testing.T) {
	cfg := writeConfig(t, "vault_addr = \"http://admin:s3cretpw@127.0.0.1:8200\"\naudit = \"off\"\n")
	code, out := runHelper(t, cfg, []string{"PAM_USER=alice", "PAM_TYPE=auth", "PAM_RHOST=127.0.0.1"}, fakeOTP, "-dev")
	if code != exitConfig || strings.Contains(out, "s3cretpw") {
		t.Fatalf("exit %d, want %d without the password\n%s", code, exitConfig, out)
	}
}

// A config someone other than root could have written chooses the Vault
// that approves every login: refused (exit 3) before Vault is asked, naming
// the file or directory and the fix; a file only root can write, in
// directories only root can write (or a sticky one), still logs in.
func TestBinaryConfigWriters(t *testing.T) {
	yes, hits := yesServer(t, "alice", false)
	body := fmt.Sprintf("vault_addr = %q\nallowed_roles = \"*\"\ntimeout = \"5s\"\naudit = \"off\"\n", yes.URL)
	const nobody = 65534 // a uid and gid that are not the test's
	root := os.Geteuid() == 0
	tests := map[string]struct {
		mode     os.FileMode // the file's
		dirMode  os.FileMode // its directory's (0: 0700)
		owner    int         // the file's uid and gid (0: the test's)
		group    int
		dirOwner int  // its directory's uid and gid (0: the test's)
		link     bool // -config names a symlink, in a private directory, to the file
		needRoot bool
		wantCode int
		want     string
	}{
		"0600":                        {mode: 0o600, wantCode: exitOK},
		"0644":                        {mode: 0o644, wantCode: exitOK},
		"group-writable, own group":   {mode: 0o664, wantCode: exitOK},
		"in a sticky world dir":       {mode: 0o600, dirMode: 0o777 | os.ModeSticky, wantCode: exitOK},
		"world-writable":              {mode: 0o666, wantCode: exitConfig, want: "is writable by every user (mode 0666)"},
		"writable by another group":   {mode: 0o660, group: nobody, needRoot: true, wantCode: exitConfig, want: "is writable by group 65534"},
		"owned by another user":       {mode: 0o600, owner: nobody, needRoot: true, wantCode: exitConfig, want: "is owned by uid 65534"},
		"in a world-writable dir":     {mode: 0o600, dirMode: 0o777, wantCode: exitConfig, want: "is writable by every user (mode 0777), who could then put another config in its place"},
		"symlink to a world-writable": {mode: 0o666, link: true, wantCode: exitConfig, want: "is writable by every user (mode 0666)"},
		"symlink into a world dir":    {mode: 0o600, dirMode: 0o777, link: true, wantCode: exitConfig, want: "put another config in its place"},
		"dir owned by another user":   {mode: 0o600, dirOwner: nobody, needRoot: true, wantCode: exitConfig, want: "its directory"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if tc.needRoot && !root {
				t.Skip("needs root to give a file away")
			}
			dir := filepath.Join(t.TempDir(), "d")
			testkit.Must(t, os.Mkdir(dir, 0o700))
			cfg := filepath.Join(dir, "config.hcl")
			testkit.Must(t, os.WriteFile(cfg, []byte(body), 0o600))
			testkit.Must(t, os.Chmod(cfg, tc.mode))
			testkit.Chown(t, cfg, tc.owner, tc.group)
			testkit.Chown(t, dir, tc.dirOwner, tc.dirOwner)
			if tc.dirMode != 0 {
				testkit.Must(t, os.Chmod(dir, tc.dirMode))
			}
			arg := cfg
			if tc.link {
				arg = filepath.Join(t.TempDir(), "link.hcl")
				testkit.Must(t, os.Symlink(cfg, arg))
			}
			hits.Store(0)
			code, out := runHelper(t, arg, []string{"PAM_USER=alice", "PAM_TYPE=auth", "PAM_RHOST=127.0.0.1"}, fakeOTP, "-dev")
			if code != tc.wantCode || !strings.Contains(out, tc.want) {
				t.Fatalf("exit %d, want %d naming %q\n%s", code, tc.wantCode, tc.want, out)
			}
			if tc.wantCode != exitOK {
				if hits.Load() != 0 {
					t.Errorf("Vault was asked %d times", hits.Load())
				}
				if !strings.Contains(out, "refused (ch") {
					t.Errorf("the refusal names no fix: %s", out)
				}
			}
		})
	}
}

// Defect: only the directories above the file a config path resolves to
// were checked, not where the symlinks on the way lie: a link in another
// user's directory (or a link that user owns in a sticky one) let them
// point the helper at a config of their own, and so at their own Vault.
// Each link and the directories above it are checked as the file's are.
func TestBinaryConfigThroughSymlinks(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a directory away") // CI runs as root
	}
	yes, hits := yesServer(t, "alice", false)
	const nobody = 65534
	tests := map[string]struct {
		linkDirMode  os.FileMode // the directory holding the link
		linkDirOwner int
		linkOwner    int  // the link's own uid (0: the test's)
		double       bool // a second link, in a private directory, to the first
		wantCode     int
		want         string
	}{
		"a link in a private directory":             {linkDirMode: 0o700, wantCode: exitOK},
		"a link in another user's directory":        {linkDirMode: 0o755, linkDirOwner: nobody, wantCode: exitConfig, want: "is owned by uid 65534, who could then put another config in its place"},
		"a link in a world-writable directory":      {linkDirMode: 0o777, wantCode: exitConfig, want: "is writable by every user (mode 0777)"},
		"another user's link in a sticky dir":       {linkDirMode: 0o777 | os.ModeSticky, linkOwner: nobody, wantCode: exitConfig, want: "is a symlink owned by uid 65534"},
		"own link in a sticky dir":                  {linkDirMode: 0o777 | os.ModeSticky, wantCode: exitOK},
		"through a second link, first in a bad dir": {linkDirMode: 0o777, double: true, wantCode: exitConfig, want: "is writable by every user (mode 0777)"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := filepath.Join(dir, "config.hcl")
			testkit.WriteFile(t, cfg, fmt.Sprintf("vault_addr = %q\nallowed_roles = \"*\"\ntimeout = \"5s\"\naudit = \"off\"\n", yes.URL))
			testkit.Must(t, os.Chmod(dir, 0o700))
			linkDir := filepath.Join(t.TempDir(), "links")
			testkit.Must(t, os.Mkdir(linkDir, 0o700))
			link := filepath.Join(linkDir, "config.hcl")
			testkit.Must(t, os.Symlink(cfg, link))
			if tc.linkOwner != 0 {
				testkit.Must(t, os.Lchown(link, tc.linkOwner, tc.linkOwner))
			}
			testkit.Chown(t, linkDir, tc.linkDirOwner, tc.linkDirOwner)
			testkit.Must(t, os.Chmod(linkDir, tc.linkDirMode))
			arg := link
			if tc.double {
				arg = filepath.Join(t.TempDir(), "via.hcl")
				testkit.Must(t, os.Symlink(link, arg))
			}
			hits.Store(0)
			code, out := runHelper(t, arg, []string{"PAM_USER=alice", "PAM_TYPE=auth", "PAM_RHOST=127.0.0.1"}, fakeOTP, "-dev")
			if code != tc.wantCode || !strings.Contains(out, tc.want) {
				t.Fatalf("exit %d, want %d naming %q\n%s", code, tc.wantCode, tc.want, out)
			}
			if tc.wantCode != exitOK && hits.Load() != 0 {
				t.Errorf("Vault was asked %d times", hits.Load())
			}
		})
	}
}

// pam_exec sets PAM_TYPE to the line's type. Only an auth line's stdin is
// a login's password: on a password line (pam_exec passes the new password
// of a password change with expose_authtok) and on account and session
// lines the helper refuses with exit 2, reads no stdin and asks no Vault,
// even one that would say yes to anything.
func TestBinaryPAMType(t *testing.T) {
	yes, hits := yesServer(t, "alice", false)
	cfg := writeConfig(t, fmt.Sprintf("vault_addr = %q\nallowed_roles = \"*\"\ntimeout = \"5s\"\naudit = \"off\"\n", yes.URL))
	tests := map[string]struct {
		env      []string
		wantCode int
		want     string
	}{
		"auth":          {env: []string{"PAM_TYPE=auth"}, wantCode: exitOK, want: "authenticated!"},
		"by hand":       {env: nil, wantCode: exitOK, want: "authenticated!"},
		"password":      {env: []string{"PAM_TYPE=password"}, wantCode: exitUsage, want: `PAM_TYPE "password": the helper belongs on an auth line only`},
		"account":       {env: []string{"PAM_TYPE=account"}, wantCode: exitUsage, want: `PAM_TYPE "account"`},
		"open_session":  {env: []string{"PAM_TYPE=open_session"}, wantCode: exitUsage, want: `PAM_TYPE "open_session"`},
		"close_session": {env: []string{"PAM_TYPE=close_session"}, wantCode: exitUsage, want: `PAM_TYPE "close_session"`},
		"Auth":          {env: []string{"PAM_TYPE=Auth"}, wantCode: exitUsage, want: `PAM_TYPE "Auth"`},
		"a newline":     {env: []string{"PAM_TYPE=auth\nx"}, wantCode: exitUsage, want: `PAM_TYPE "auth\nx"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			hits.Store(0)
			code, out := runHelper(t, cfg, append([]string{"PAM_USER=alice", "PAM_RHOST=127.0.0.1"}, tc.env...), fakeOTP, "-dev")
			if code != tc.wantCode || !strings.Contains(out, tc.want) {
				t.Fatalf("exit %d, want %d naming %q\n%s", code, tc.wantCode, tc.want, out)
			}
			wantHits := int32(0)
			if tc.wantCode == exitOK {
				wantHits = 1
			}
			if got := hits.Load(); got != wantHits {
				t.Fatalf("Vault was asked %d times, want %d", got, wantHits)
			}
		})
	}
}

// Under PAM a refusal before the config is read (here: a config others may
// write) still leaves its record: on a host with neither journal nor
// syslog, in the fallback file, which for the tests' binary is the test's
// own (so that they leave nothing in /var/log).
func TestBinaryEarlyRefusalRecorded(t *testing.T) {
	for _, sock := range []string{"/run/systemd/journal/socket", "/dev/log"} {
		if _, err := os.Stat(sock); err == nil {
			t.Skipf("%s exists: the record goes there, not to the fallback file", sock)
		}
	}
	cfg := writeConfig(t, "vault_addr = \"http://127.0.0.1:1\"\naudit = \"off\"\n")
	testkit.Must(t, os.Chmod(cfg, 0o666))
	before, _ := os.ReadFile(auditFallback)
	code, out := runHelper(t, cfg, []string{"PAM_USER=alice", "PAM_TYPE=auth", "PAM_RHOST=127.0.0.1", "PAM_SERVICE=sshd"}, fakeOTP, "-dev")
	if code != exitConfig {
		t.Fatalf("exit %d, want %d\n%s", code, exitConfig, out)
	}
	after, err := os.ReadFile(auditFallback)
	if err != nil {
		t.Fatal(err)
	}
	rec := strings.TrimSuffix(strings.TrimPrefix(string(after), string(before)), "\n")
	var r struct {
		User, Service, Result, Reason string
	}
	if err := json.Unmarshal([]byte(rec), &r); err != nil || r.Result != "failure" || !strings.Contains(r.Reason, cfg+" is writable by every user") {
		t.Fatalf("fallback record %q (%v), want one failure naming %s", rec, err, cfg)
	}
}

// privateSyslog runs its arguments in a private mount namespace whose
// /dev/log is the test's socket $S: the helper's real syslog client, the
// machine's syslog untouched.
const privateSyslog = `set -e
mount -t tmpfs -o mode=0755 tmpfs /dev
: > /dev/log
mount --bind "$S" /dev/log
exec "$@"`

// sshd hands PAM any user name a client sends, blanks included. In the
// syslog line such a name is quoted, so that "x from 192.0.2.1 via sshd:"
// cannot make a refusal (or a success) read as coming from 192.0.2.1: each
// field before the reason is one token, and the name unquotes to what was
// sent. Through the helper's real syslog client, in a private mount
// namespace (root).
func TestBinarySyslogLineFields(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: /dev/log is the test's socket in a private mount namespace")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skipf("unshare (util-linux) is needed: %v", err)
	}
	sock := filepath.Join(t.TempDir(), "log")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	line := regexp.MustCompile(`latchkey-ssh-helper\[\d+\]: (accepted|refused) otp login for ("(?:[^"\\]|\\.)*"|[^ "]+) from (\S+) via ([^ ":]+)[ :]`)
	const rhost = "203.0.113.9"
	for name, tc := range map[string]struct {
		user   string
		accept bool // Vault says yes for the user
		want   string
	}{
		"a forged from, refused":  {user: "x from 192.0.2.1 via sshd:", want: "refused"},
		"a forged from, accepted": {user: "x from 192.0.2.1 via sshd:", accept: true, want: "accepted"},
		"a double quote":          {user: `a" from 192.0.2.1 via sshd: "`, want: "refused"},
		"plain":                   {user: "alice", accept: true, want: "accepted"},
	} {
		t.Run(name, func(t *testing.T) {
			addr := "http://127.0.0.1:1" // refused: exit 4
			if tc.accept {
				yes, _ := yesServer(t, tc.user, false)
				addr = yes.URL
			}
			// From a remote rhost, yesServer's loopback IP is admitted by
			// allowed_cidr_list only (a loopback OTP is every host's).
			cfg := writeConfig(t, fmt.Sprintf("vault_addr = %q\nallowed_roles = \"*\"\nallowed_cidr_list = \"127.0.0.1/32\"\ntimeout = \"5s\"\naudit = \"syslog\"\n", addr))
			cmd := boundedCommand(t, "unshare", "--mount", "--propagation", "private", "sh", "-c", privateSyslog, "sh",
				helper, "-config="+cfg, "-dev")
			cmd.Env = []string{"S=" + sock, "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
				"PAM_USER=" + tc.user, "PAM_TYPE=auth", "PAM_SERVICE=sshd", "PAM_RHOST=" + rhost}
			cmd.Stdin = strings.NewReader(fakeOTP)
			out, _ := cmd.CombinedOutput()
			if code := cmd.ProcessState.ExitCode(); (code == exitOK) != tc.accept {
				t.Fatalf("exit %d, want accepted=%v\n%s", code, tc.accept, out)
			}
			buf := make([]byte, 8192)
			testkit.Must(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
			n, err := conn.Read(buf)
			if err != nil {
				t.Fatalf("no syslog line: %v\n%s", err, out)
			}
			m := line.FindStringSubmatch(string(buf[:n]))
			if m == nil || m[1] != tc.want {
				t.Fatalf("syslog line %q does not read as one %s login", buf[:n], tc.want)
			}
			user := m[2]
			if strings.HasPrefix(user, `"`) {
				if user, err = strconv.Unquote(user); err != nil {
					t.Fatal(err)
				}
			}
			if user != tc.user || m[3] != rhost || m[4] != "sshd" {
				t.Fatalf("syslog line %q reads as user %q from %q via %q, want %q from %s via sshd", buf[:n], user, m[3], m[4], tc.user, rhost)
			}
		})
	}
}

// Only Vault's own 400 ({"errors": [...]}, "OTP not found") is a definite
// no (exit 1, "wrong, used or expired"). A 400 from something that is not
// Vault's API, above all Vault's TLS listener asked over http:// (Go's
// server answers "Client sent an HTTP request to an HTTPS server"), is an
// unexpected answer (exit 4) that says so, for a login and for
// -verify-only alike; its body is never quoted.
func TestBinaryBadRequestNotFromVault(t *testing.T) {
	tlsVault := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	tlsVault.Config.ErrorLog = log.New(io.Discard, "", 0) // its "TLS handshake error" lines
	tlsVault.StartTLS()
	t.Cleanup(tlsVault.Close)
	raw400 := func(body string) string {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, body)
		}))
		t.Cleanup(s.Close)
		return s.URL
	}
	tests := map[string]struct {
		addr       string
		wantCode   int // of a login; -verify-only exits the same
		want       string
		verifyOnly bool
	}{
		"http:// to a TLS listener": {addr: strings.Replace(tlsVault.URL, "https://", "http://", 1), wantCode: exitVault,
			want: "without Vault's JSON errors: not Vault's API"},
		"http:// to a TLS listener, -verify-only": {addr: strings.Replace(tlsVault.URL, "https://", "http://", 1), verifyOnly: true,
			wantCode: exitVault, want: "without Vault's JSON errors"},
		"a proxy's HTML page": {addr: raw400("<html>400 Bad Request " + fakeOTP + "</html>"), wantCode: exitVault, want: "not Vault's API"},
		"empty errors":        {addr: raw400(`{"errors":[]}`), wantCode: exitVault, want: "not Vault's API"},
		"Vault's OTP not found": {addr: raw400(`{"errors":["OTP not found"]}`), wantCode: exitDenied,
			want: "wrong, used or expired"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := writeConfig(t, fmt.Sprintf("vault_addr = %q\nallowed_roles = \"*\"\ntimeout = \"5s\"\naudit = \"off\"\n", tc.addr))
			env, args := []string{"PAM_USER=alice", "PAM_TYPE=auth", "PAM_RHOST=127.0.0.1"}, []string{"-dev"}
			if tc.verifyOnly {
				env, args = nil, append(args, "-verify-only")
			}
			code, out := runHelper(t, cfg, env, fakeOTP, args...)
			if code != tc.wantCode || !strings.Contains(out, tc.want) {
				t.Fatalf("exit %d, want %d naming %q\n%s", code, tc.wantCode, tc.want, out)
			}
			if strings.Contains(out, fakeOTP) || strings.Contains(out, "<html>") {
				t.Errorf("the answer's body is in the output:\n%s", out)
			}
		})
	}
}

// The CA that checks Vault's certificate decides which Vault is believed:
// a ca_cert (or ca_path) someone other than root could have written is
// refused (exit 3) before Vault is asked, as the config file is; one only
// root can write still logs in over https.
func TestBinaryCAWriters(t *testing.T) {
	yes, hits := yesServer(t, "alice", true)
	pemCA := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: yes.Certificate().Raw})
	tests := map[string]struct {
		key      string      // ca_cert or ca_path
		mode     os.FileMode // the CA file's
		dirMode  os.FileMode // its directory's (0: 0700)
		owner    int         // the CA file's uid (0: unchanged)
		linkDir  os.FileMode // ca_path's entry is a symlink to the file in another directory of this mode
		wantCode int
		want     string
	}{
		"ca_cert 0644":                  {key: "ca_cert", mode: 0o644, wantCode: exitOK},
		"ca_cert world-writable":        {key: "ca_cert", mode: 0o666, wantCode: exitConfig, want: "is writable by every user (mode 0666), who could then have a Vault of their own trusted"},
		"ca_cert in a world dir":        {key: "ca_cert", mode: 0o644, dirMode: 0o777, wantCode: exitConfig, want: "put another CA in its place"},
		"ca_cert in a sticky world dir": {key: "ca_cert", mode: 0o644, dirMode: 0o777 | os.ModeSticky, wantCode: exitOK},
		"ca_path 0755":                  {key: "ca_path", mode: 0o644, dirMode: 0o755, wantCode: exitOK},
		"ca_path world-writable":        {key: "ca_path", mode: 0o644, dirMode: 0o777, wantCode: exitConfig, want: "ca_path"},
		// Each file of ca_path is trusted as ca_cert is: it was not checked,
		// and a world-writable or a user's CA file there was trusted.
		"ca_path, a world-writable file": {key: "ca_path", mode: 0o666, dirMode: 0o755, wantCode: exitConfig,
			want: "ca.pem is writable by every user (mode 0666), who could then have a Vault of their own trusted; refused (chmod go-w "},
		"ca_path, a user's file": {key: "ca_path", mode: 0o644, dirMode: 0o755, owner: 65534, wantCode: exitConfig,
			want: "ca.pem is owned by uid 65534, who could then have a Vault of their own trusted; refused (chown root "},
		"ca_path, a link into a world dir": {key: "ca_path", mode: 0o644, dirMode: 0o755, linkDir: 0o777, wantCode: exitConfig,
			want: "is writable by every user (mode 0777), who could then put another CA in its place"},
		"ca_path, a link into a root dir": {key: "ca_path", mode: 0o644, dirMode: 0o755, linkDir: 0o755, wantCode: exitOK},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if tc.owner != 0 && os.Geteuid() != 0 {
				t.Skip("needs root to give the CA file away")
			}
			dir := filepath.Join(t.TempDir(), "ca")
			testkit.Must(t, os.Mkdir(dir, 0o700))
			ca := filepath.Join(dir, "ca.pem")
			if tc.linkDir != 0 {
				ext := filepath.Join(t.TempDir(), "ext")
				testkit.Must(t, os.Mkdir(ext, tc.linkDir))
				testkit.Must(t, os.Chmod(ext, tc.linkDir))
				testkit.Must(t, os.Symlink(filepath.Join(ext, "ca.pem"), ca))
				ca = filepath.Join(ext, "ca.pem")
			}
			testkit.Must(t, os.WriteFile(ca, pemCA, 0o600))
			testkit.Must(t, os.Chmod(ca, tc.mode))
			if tc.owner != 0 {
				testkit.Must(t, os.Chown(ca, tc.owner, -1))
			}
			if tc.dirMode != 0 {
				testkit.Must(t, os.Chmod(dir, tc.dirMode))
			}
			val := ca
			if tc.key == "ca_path" {
				val = dir
			}
			cfg := writeConfig(t, fmt.Sprintf("vault_addr = %q\n%s = %q\nallowed_roles = \"*\"\ntimeout = \"5s\"\naudit = \"off\"\n", yes.URL, tc.key, val))
			hits.Store(0)
			code, out := runHelper(t, cfg, []string{"PAM_USER=alice", "PAM_TYPE=auth", "PAM_RHOST=127.0.0.1"}, fakeOTP)
			if code != tc.wantCode || !strings.Contains(out, tc.want) {
				t.Fatalf("exit %d, want %d naming %q\n%s", code, tc.wantCode, tc.want, out)
			}
			if tc.wantCode != exitOK && hits.Load() != 0 {
				t.Errorf("Vault was asked %d times", hits.Load())
			}
			if tc.wantCode == exitOK && hits.Load() != 1 {
				t.Errorf("Vault was asked %d times, want once", hits.Load())
			}
		})
	}
}
