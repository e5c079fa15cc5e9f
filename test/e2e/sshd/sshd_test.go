// Package sshd_test proves latchkey-ssh-helper through a real sshd and
// Linux-PAM: a private sshd on 127.0.0.1 with its own config, host key and
// PAM service (the stack shipped in packaging/), real local users, a Go SSH
// client typing the OTP at the keyboard-interactive prompt, and a real Vault.
//
// It needs root (sshd, useradd, /etc/pam.d, mounts); `make test` runs as
// root in CI and installs openssh-server first. It never touches the
// system's sshd config or /etc/pam.d/sshd. sshd runs in a private mount
// namespace (unshare, util-linux) whose /dev/log is the test's own socket, so
// what PAM and the helper send to syslog is always checked, and the
// machine's syslog and journal get none of it.
package sshd_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	"golang.org/x/crypto/ssh"

	"github.com/latchkey/latchkey/test/testbin"
	"github.com/latchkey/latchkey/test/testkit"
	"github.com/latchkey/latchkey/test/testkit/secretscan"
	"github.com/latchkey/latchkey/test/totptest"
	"github.com/latchkey/latchkey/test/vaulttest"
)

const sshdBin = testkit.SSHDBin

var srv *vaulttest.Server

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "test/e2e/sshd: SKIPPED: the sshd end-to-end test needs root (sshd, useradd, /etc/pam.d); CI runs it as root")
		os.Exit(0)
	}
	if _, err := os.Stat(sshdBin); err != nil {
		fmt.Fprintf(os.Stderr, "test/e2e/sshd: %s missing: run `make deps` as root (installs openssh-server)\n", sshdBin)
		os.Exit(1)
	}
	vaulttest.Main(m, vaulttest.Spec{Into: &srv, Options: vaulttest.Options{TLS: true}})
}

// rig is one private sshd with its PAM service and users.
type rig struct {
	t          *testing.T
	dir        string
	helper     string
	configPath string // the helper's config, rewritten per case
	auditPath  string
	addr       string
	users      [2]string
	syslog     *syslogSink
	service    string // sshd's PAM service name
	// secrets are the passwords typed so far; none may be logged.
	secretsMu sync.Mutex
	secrets   []string
	// userKeys are the users' SSH keys when sshd wants publickey first.
	userKeys map[string]ssh.Signer
}

// newRig starts sshd with keyboard-interactive (PAM) as the only method, or,
// with twoFactor, a public key first and then keyboard-interactive.
func newRig(t *testing.T, twoFactor bool) *rig {
	r := &rig{t: t, dir: t.TempDir()}
	bins, err := testbin.Build(filepath.Join(r.dir, "bin"), "./cmd/latchkey-ssh-helper")
	if err != nil {
		t.Fatal(err)
	}
	r.helper = bins[0]
	// The helper runs as root from sshd; its directory must be traversable.
	testkit.Must(t, os.Chmod(r.dir, 0o755))
	// sshd reads authorized_keys as the user: the temp dir's parent too.
	testkit.Must(t, os.Chmod(filepath.Dir(r.dir), 0o755))
	testkit.Must(t, os.Chmod(filepath.Join(r.dir, "bin"), 0o755))
	r.configPath = filepath.Join(r.dir, "helper.hcl")
	r.auditPath = filepath.Join(r.dir, "audit.log")
	suffix := randHex(3)
	for i := range r.users {
		r.users[i] = fmt.Sprintf("lke2e%c%s", 'a'+i, suffix)
		r.addUser(r.users[i])
	}
	// The test's own syslog socket: sshd runs in a private mount namespace
	// where it is /dev/log (see privateDevScript).
	devDir := filepath.Join(r.dir, "dev")
	testkit.Must(t, os.Mkdir(devDir, 0o755))
	r.syslog = listenSyslog(t, filepath.Join(devDir, "log"))
	// No secret typed in this rig may reach syslog or the audit file. Runs
	// after sshd is stopped (cleanups run last-registered first) and before
	// the syslog sink closes.
	t.Cleanup(r.checkNoSecretLogged)

	// sshd's PAM service is the name it was started as.
	r.service = "latchkey-e2e-sshd-" + suffix
	link := filepath.Join(r.dir, r.service)
	testkit.Must(t, os.Symlink(sshdBin, link))
	r.installPAM(r.service)

	hostKey := filepath.Join(r.dir, "host_ed25519")
	run(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", hostKey)
	methods := "PubkeyAuthentication no\nAuthenticationMethods keyboard-interactive\n"
	if twoFactor {
		r.userKeys = map[string]ssh.Signer{}
		for _, u := range r.users {
			pub, priv, err := ed25519.GenerateKey(rand.Reader)
			testkit.Must(t, err)
			signer, err := ssh.NewSignerFromKey(priv)
			testkit.Must(t, err)
			sshPub, err := ssh.NewPublicKey(pub)
			testkit.Must(t, err)
			r.userKeys[u] = signer
			writeFile(t, filepath.Join(r.dir, "authorized_keys."+u), string(ssh.MarshalAuthorizedKey(sshPub)), 0o644)
		}
		methods = fmt.Sprintf("PubkeyAuthentication yes\nAuthorizedKeysFile %s/authorized_keys.%%u\nAuthenticationMethods publickey,keyboard-interactive\n", r.dir)
	}
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(r.auditPath)
			t.Logf("audit log:\n%s", b)
		}
	})
	sshd := testkit.StartSSHD(t, testkit.SSHDOptions{Dir: r.dir, Bin: link, PrivateDev: devDir, Config: fmt.Sprintf(`HostKey %s
UsePAM yes
KbdInteractiveAuthentication yes
PasswordAuthentication no
%sPermitRootLogin no
StrictModes no
UseDNS no
AllowUsers %s %s
LogLevel VERBOSE
`, hostKey, methods, r.users[0], r.users[1])})
	r.addr = sshd.Addr
	return r
}

// checkNoSecretLogged fails the test when a password typed in this rig
// shows in syslog, the audit file or sshd's log.
func (r *rig) checkNoSecretLogged() {
	t := r.t
	logs := map[string]string{"syslog": strings.Join(r.syslog.since(0), "\n")}
	for name, p := range map[string]string{"audit file": r.auditPath, "sshd log": filepath.Join(r.dir, "sshd.log")} {
		b, err := os.ReadFile(p)
		if err != nil && !os.IsNotExist(err) {
			t.Errorf("read %s: %v", name, err)
		}
		logs[name] = string(b)
	}
	// Also every token, OTP and secret the kit's clients saw (the
	// package's scan, test/testkit/secretscan).
	for name, text := range logs {
		secretscan.Scan(t, "the rig's "+name, text)
	}
	r.secretsMu.Lock()
	defer r.secretsMu.Unlock()
	for _, secret := range r.secrets {
		for name, text := range logs {
			if containsSecret(text, secret) {
				t.Errorf("the %s contains a typed password", name)
			}
		}
	}
}

// containsSecret reports whether text holds secret. A TOTP code is digits
// only and is looked for as a whole number, so that a PID or port with the
// same digits in it does not count.
func containsSecret(text, secret string) bool {
	if secret == "" {
		return false
	}
	if strings.Trim(secret, "0123456789") != "" {
		return strings.Contains(text, secret)
	}
	return regexp.MustCompile(`(^|[^0-9])` + secret + `($|[^0-9])`).MatchString(text)
}

func (r *rig) addUser(name string) {
	t := r.t
	run(t, "useradd", "--no-create-home", "--home-dir", "/", "--shell", "/bin/sh", name)
	t.Cleanup(func() { exec.Command("userdel", name).Run() })
	// A usable (if unmatchable) password field: "!" would mark it locked.
	run(t, "usermod", "-p", "*", name)
}

// installPAM writes /etc/pam.d/<service> from the stack the package ships,
// pointing at the built helper and the test's config.
func (r *rig) installPAM(service string) {
	t := r.t
	root, err := vaulttest.RepoRoot()
	testkit.Must(t, err)
	b, err := os.ReadFile(filepath.Join(root, "packaging/ssh-helper/pam.d-sshd"))
	testkit.Must(t, err)
	stack := string(b)
	for old, repl := range map[string]string{
		"/usr/sbin/latchkey-ssh-helper":                 r.helper,
		"-config=/etc/latchkey-ssh-helper.d/config.hcl": "-config=" + r.configPath,
	} {
		if !strings.Contains(stack, old) {
			t.Fatalf("shipped PAM stack does not contain %q", old)
		}
		stack = strings.ReplaceAll(stack, old, repl)
	}
	p := "/etc/pam.d/" + service
	writeFile(t, p, stack, 0o644)
	t.Cleanup(func() { os.Remove(p) })
}

// configure writes the helper's config for the next logins.
func (r *rig) configure(vault *vaulttest.Server, extra string) {
	r.configureAt(vault.Addr, vault.CACert, extra)
}

// configureAt is configure for a Vault address and CA file.
func (r *rig) configureAt(addr, caCert, extra string) {
	writeFile(r.t, r.configPath, fmt.Sprintf(`vault_addr = %q
ca_cert = %q
ssh_mount_point = "ssh"
allowed_roles = "web"
timeout = "3s"
audit = "syslog"
audit_file = %q
%s`, addr, caCert, r.auditPath, extra), 0o644)
}

// login connects as user, types password at the keyboard-interactive prompt
// and runs `id -un`. It returns the command's output or the error.
func (r *rig) login(user, password string) (string, error) {
	return r.loginWith(user, nil, &password)
}

// loginWith offers key (when not nil) and then, when password is not nil,
// keyboard-interactive with *password; it runs `id -un`.
func (r *rig) loginWith(user string, key ssh.Signer, password *string) (string, error) {
	var auth []ssh.AuthMethod
	if key != nil {
		auth = append(auth, ssh.PublicKeys(key))
	}
	if password != nil {
		r.secretsMu.Lock()
		r.secrets = append(r.secrets, *password)
		r.secretsMu.Unlock()
		auth = append(auth, testkit.Password(*password))
	}
	return testkit.SSHLoginWith(r.addr, user, auth...)
}

func TestSSHLoginThroughPAM(t *testing.T) {
	r := newRig(t, false)
	alice, bob := r.users[0], r.users[1]
	c := srv.Client
	srv.MountT(t, "ssh", &api.MountInput{Type: "ssh"})
	_, err := c.Logical().Write("ssh/roles/web", map[string]any{
		"key_type": "otp", "default_user": alice, "allowed_users": alice + "," + bob,
		"cidr_list": "127.0.0.0/8,10.0.0.0/8",
	})
	testkit.Must(t, err)
	issue := func(user, ip string) string {
		s, err := c.Logical().Write("ssh/creds/web", map[string]any{"ip": ip, "username": user})
		testkit.Must(t, err)
		return s.Data["key"].(string)
	}
	r.configure(srv, "")

	otp := issue(alice, "127.0.0.1")
	mark := r.syslog.mark()
	out, err := r.login(alice, otp)
	if err != nil || out != alice {
		t.Fatalf("valid OTP: output %q, error %v", out, err)
	}
	// The record in the audit file, and the same login in syslog.
	rec := r.lastAudit()
	if rec.Service != r.service || rec.User != alice || rec.RHost != "127.0.0.1" || rec.Mode != "otp" ||
		rec.Role != "web" || rec.IP != "127.0.0.1" || rec.VaultAddr != srv.Addr || rec.RequestID == "" ||
		rec.Time.IsZero() || rec.Result != "success" || rec.Reason != "" {
		t.Errorf("audit file record = %+v; want service %s, user %s, rhost and ip 127.0.0.1, role web, vault %s, a request id and a time",
			rec, r.service, alice, srv.Addr)
	}
	if line := r.syslog.find(mark, "latchkey-ssh-helper[", "accepted otp login for "+alice); line == "" {
		t.Errorf("no audit record in syslog; got:\n%s", strings.Join(r.syslog.since(mark), "\n"))
	} else if got, err := parseSyslogAudit(line); err != nil {
		t.Errorf("audit record in syslog: %v", err)
	} else if want := (syslogAudit{
		Priority: "86", // authpriv.info
		User:     alice, From: "127.0.0.1", Service: r.service, Role: "web", IP: "127.0.0.1", Vault: srv.Addr, RequestID: rec.RequestID,
	}); got.Priority != want.Priority || got.User != want.User || got.From != want.From || got.Service != want.Service || got.Role != want.Role ||
		got.IP != want.IP || got.Vault != want.Vault || got.RequestID != want.RequestID || got.RequestID == "" {
		t.Errorf("audit record in syslog = %+v, want %+v (the request id of the audit file's record)", got, want)
	}
	for name, text := range map[string]string{
		"audit file": readFile(t, r.auditPath), "syslog": strings.Join(r.syslog.since(0), "\n"),
	} {
		if strings.Contains(text, otp) {
			t.Errorf("the %s contains the OTP", name)
		}
	}
	// The check below is only worth something if PAM's own messages arrive.
	// The session opens after authentication, and one socket keeps the
	// order of its datagrams, so once this message is in, any false
	// "authentication failure" of this login is in as well.
	if !r.syslog.contains(mark, "pam_unix(", "session opened for user "+alice) {
		t.Errorf("PAM's session message did not reach the test's syslog; got:\n%s", strings.Join(r.syslog.since(mark), "\n"))
	}
	for _, m := range r.syslog.since(mark) {
		if strings.Contains(m, "authentication failure") || strings.Contains(m, "unrecognized option") {
			t.Errorf("a successful login logged %q", m)
		}
	}

	refused := map[string]struct{ password, reason string }{
		"same OTP again":     {otp, "wrong, used or expired"},
		"random UUID":        {"11111111-2222-3333-4444-555555555555", "wrong, used or expired"},
		"OTP for other user": {issue(bob, "127.0.0.1"), "OTP was issued for user"},
		"OTP for other IP":   {issue(alice, "10.1.2.3"), "10.1.2.3, which is neither this host's"},
		"not an OTP":         {"hunter2", "not a Vault OTP"},
	}
	for name, tc := range refused {
		t.Run(name, func(t *testing.T) {
			before := len(readFile(t, r.auditPath))
			mark := r.syslog.mark()
			if out, err := r.login(alice, tc.password); err == nil {
				t.Fatalf("logged in (output %q)", out)
			}
			if rec := readFile(t, r.auditPath)[before:]; !strings.Contains(rec, tc.reason) {
				t.Errorf("audit record %q does not give the reason %q", rec, tc.reason)
			}
			// pam_exec reports the typed exit code (1: denied).
			if !r.syslog.contains(mark, "pam_exec(", "failed: exit code 1") {
				t.Errorf("pam_exec did not log the helper's exit code 1")
			}
		})
	}
	t.Run("the other user's own OTP works", func(t *testing.T) {
		if out, err := r.login(bob, issue(bob, "127.0.0.1")); err != nil || out != bob {
			t.Fatalf("output %q, error %v", out, err)
		}
	})

	t.Run("vault stopped", func(t *testing.T) {
		own := vaulttest.StartT(t, vaulttest.Options{TLS: true})
		own.MountT(t, "ssh", &api.MountInput{Type: "ssh"})
		_, err := own.Client.Logical().Write("ssh/roles/web", map[string]any{"key_type": "otp", "default_user": alice, "cidr_list": "127.0.0.0/8"})
		testkit.Must(t, err)
		s, err := own.Client.Logical().Write("ssh/creds/web", map[string]any{"ip": "127.0.0.1"})
		testkit.Must(t, err)
		// The host keeps its copy of the CA; Stop removes the server's own.
		ca := filepath.Join(r.dir, "stopped-vault-ca.pem")
		writeFile(t, ca, readFile(t, own.CACert), 0o644)
		r.configureAt(own.Addr, ca, "")
		testkit.Must(t, own.Stop())
		mark := r.syslog.mark()
		if out, err := r.login(alice, s.Data["key"].(string)); err == nil {
			t.Fatalf("logged in with Vault stopped (output %q)", out)
		}
		if !strings.Contains(readFile(t, r.auditPath), "no vault address answered") {
			t.Errorf("audit does not say Vault was unreachable")
		}
		if !r.syslog.contains(mark, "pam_exec(", "failed: exit code 4") {
			t.Errorf("pam_exec did not log the helper's exit code 4 (Vault unreachable)")
		}
		r.configure(srv, "")
	})

	// A broken config refuses every login, and says why where an operator
	// looks (syslog here), since the config could not name a destination.
	t.Run("broken config", func(t *testing.T) {
		writeFile(t, r.configPath, fmt.Sprintf("vault_addr = %q\nallowed_role = \"web\"\n", srv.Addr), 0o644)
		defer r.configure(srv, "")
		mark := r.syslog.mark()
		if out, err := r.login(alice, issue(alice, "127.0.0.1")); err == nil {
			t.Fatalf("logged in with a broken config (output %q)", out)
		}
		if !r.syslog.contains(mark, "latchkey-ssh-helper", "refused login for "+alice, `unknown key "allowed_role"`) {
			t.Errorf("no audit record naming the config error; syslog:\n%s", strings.Join(r.syslog.since(mark), "\n"))
		}
		if !r.syslog.contains(mark, "pam_exec(", "failed: exit code 3") {
			t.Errorf("pam_exec did not log the helper's exit code 3")
		}
	})

	// A Vault that accepts the connection and never answers (not even the
	// TLS handshake): pam_exec has no timeout, the helper's deadline ends it.
	t.Run("vault hung", func(t *testing.T) {
		hung := testkit.StartHung(t)
		writeFile(t, r.configPath, fmt.Sprintf("vault_addr = \"https://%s\"\nallowed_roles = \"web\"\ntimeout = \"1s\"\naudit = \"syslog\"\naudit_file = %q\n", hung.Addr, r.auditPath), 0o644)
		defer r.configure(srv, "")
		mark := r.syslog.mark()
		if out, err := r.login(alice, issue(alice, "127.0.0.1")); err == nil {
			t.Fatalf("logged in with Vault hung (output %q)", out)
		}
		if !strings.Contains(readFile(t, r.auditPath), "deadline of 1s reached") {
			t.Errorf("audit does not name the deadline")
		}
		if !r.syslog.contains(mark, "pam_exec(", "failed: exit code 4") {
			t.Errorf("pam_exec did not log the helper's exit code 4")
		}
	})

	t.Run("totp", func(t *testing.T) {
		srv.MountT(t, "totp", &api.MountInput{Type: "totp"})
		const seed = "JBSWY3DPEHPK3PXP"
		_, err := c.Logical().Write("totp/keys/"+alice, map[string]any{"key": seed, "generate": false, "issuer": "latchkey", "account_name": alice})
		testkit.Must(t, err)
		testkit.Must(t, c.Sys().PutPolicy("e2e-totp", `path "totp/code/*" { capabilities = ["update"] }`))
		tok, err := c.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{"e2e-totp"}, NoParent: true})
		testkit.Must(t, err)
		tokenFile := filepath.Join(r.dir, "token")
		writeFile(t, tokenFile, tok.Auth.ClientToken, 0o600)
		r.configure(srv, fmt.Sprintf("mode = \"totp\"\ntoken_file = %q\n", tokenFile))
		defer r.configure(srv, "")

		if out, err := r.login(alice, totptest.Code(seed, time.Now().Add(-5*time.Minute))); err == nil {
			t.Errorf("stale code accepted (output %q)", out)
		}
		if out, err := r.login(alice, totptest.Code(seed, time.Now())); err != nil || out != alice {
			t.Errorf("current code: output %q, error %v", out, err)
		}
	})
}

// syslogSink is the test's syslog: a datagram socket that sshd, PAM and the
// helper see as /dev/log (see privateDevScript), so every check on it runs,
// whatever the machine's own /dev/log is.
type syslogSink struct {
	mu   sync.Mutex
	msgs []string
}

func listenSyslog(t *testing.T, path string) *syslogSink {
	s := &syslogSink{}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listen on the test's syslog socket %s: %v", path, err)
	}
	// The helper and PAM write as root, sshd's privilege-separated child
	// may not.
	testkit.Must(t, os.Chmod(path, 0o666))
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 8192)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			s.mu.Lock()
			s.msgs = append(s.msgs, string(buf[:n]))
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		<-done
	})
	return s
}

func (s *syslogSink) mark() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.msgs)
}

func (s *syslogSink) since(mark int) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.msgs[mark:]...)
}

// contains reports whether a message since mark holds all of subs. The
// sink reads datagrams on its own goroutine, so a message sent just before
// may not be stored yet: it waits for one (up to 10 s) before saying no.
func (s *syslogSink) contains(mark int, subs ...string) bool {
	return s.find(mark, subs...) != ""
}

// find is contains returning the first message since mark that holds all
// of subs, or "".
func (s *syslogSink) find(mark int, subs ...string) string {
	for range 1000 {
		for _, m := range s.since(mark) {
			ok := true
			for _, sub := range subs {
				ok = ok && strings.Contains(m, sub)
			}
			if ok {
				return m
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return ""
}

// lastAudit is the last record of the audit file.
func (r *rig) lastAudit() auditRecord {
	t := r.t
	t.Helper()
	lines := strings.Split(strings.TrimSpace(readFile(t, r.auditPath)), "\n")
	var rec auditRecord
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rec); err != nil {
		t.Fatalf("audit file: %v", err)
	}
	return rec
}

// auditRecord is a line of the helper's audit_file (pam.Record's JSON).
type auditRecord struct {
	Time      time.Time `json:"time"`
	Service   string    `json:"pam_service"`
	User      string    `json:"pam_user"`
	RHost     string    `json:"pam_rhost"`
	Mode      string    `json:"mode"`
	Role      string    `json:"role"`
	IP        string    `json:"ip"`
	VaultAddr string    `json:"vault_addr"`
	RequestID string    `json:"vault_request_id"`
	Result    string    `json:"result"`
	Reason    string    `json:"reason"`
}

// syslogAudit is an accepted login's audit record as syslog received it.
type syslogAudit struct {
	Priority, User, From, Service, Role, IP, Vault, RequestID string
	Time                                                      time.Time
}

// The local syslog format of Go's log/syslog: "<pri>Jan _2 15:04:05
// tag[pid]: message\n".
var syslogAuditRE = regexp.MustCompile(`^<(\d+)>(\w{3} [ \d]\d \d\d:\d\d:\d\d) latchkey-ssh-helper\[\d+\]: ` +
	`accepted otp login for (\S+) from (\S+) via (\S+) \(role ("[^"]*"), ip (\S+), vault (\S+), request (\S+)\)\n?$`)

func parseSyslogAudit(line string) (syslogAudit, error) {
	m := syslogAuditRE.FindStringSubmatch(line)
	if m == nil {
		return syslogAudit{}, fmt.Errorf("%q does not have the expected form", line)
	}
	ts, err := time.Parse(time.Stamp, m[2])
	if err != nil || ts.IsZero() {
		return syslogAudit{}, fmt.Errorf("%q: timestamp %q: %v", line, m[2], err)
	}
	role, err := strconv.Unquote(m[6])
	if err != nil {
		return syslogAudit{}, fmt.Errorf("%q: role %s: %v", line, m[6], err)
	}
	return syslogAudit{Priority: m[1], Time: ts, User: m[3], From: m[4], Service: m[5], Role: role, IP: m[7], Vault: m[8], RequestID: m[9]}, nil
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func writeFile(t *testing.T, p, s string, mode os.FileMode) {
	t.Helper()
	testkit.Must(t, os.WriteFile(p, []byte(s), mode))
	testkit.Must(t, os.Chmod(p, mode))
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	testkit.Must(t, err)
	return string(b)
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// TOTP as the second factor after a public key (AuthenticationMethods
// publickey,keyboard-interactive): neither factor alone gets in.
func TestTwoFactorPublicKeyAndTOTP(t *testing.T) {
	r := newRig(t, true)
	alice := r.users[0]
	c := srv.Client
	const mount, seed = "totp-2fa", "KRSXG5CTMVRXEZLUKN2XAZLSKNSWG4TF"
	srv.MountT(t, mount, &api.MountInput{Type: "totp"})
	_, err := c.Logical().Write(mount+"/keys/ssh-"+alice, map[string]any{"key": seed, "generate": false, "issuer": "latchkey", "account_name": alice})
	testkit.Must(t, err)
	testkit.Must(t, c.Sys().PutPolicy("e2e-totp-2fa", fmt.Sprintf(`path "%s/code/*" { capabilities = ["update"] }`, mount)))
	tok, err := c.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{"e2e-totp-2fa"}, NoParent: true})
	testkit.Must(t, err)
	tokenFile := filepath.Join(r.dir, "token")
	writeFile(t, tokenFile, tok.Auth.ClientToken+"\n", 0o600)
	r.configure(srv, fmt.Sprintf("mode = \"totp\"\ntotp_mount = %q\ntotp_key_pattern = \"ssh-{{user}}\"\ntoken_file = %q\n", mount, tokenFile))

	key := r.userKeys[alice]
	code := func(at time.Time) *string { s := totptest.Code(seed, at); return &s }
	// Order matters: the current code is offered without the key first. If
	// sshd let that reach PAM, Vault would mark the code used and the
	// two-factor login below would fail.
	if out, err := r.loginWith(alice, nil, code(time.Now())); err == nil {
		t.Errorf("TOTP without the key got in (output %q)", out)
	}
	if out, err := r.loginWith(alice, key, nil); err == nil {
		t.Errorf("the key without TOTP got in (output %q)", out)
	}
	if out, err := r.loginWith(alice, key, code(time.Now().Add(-5*time.Minute))); err == nil {
		t.Errorf("key and a stale code got in (output %q)", out)
	}
	if out, err := r.loginWith(alice, key, code(time.Now())); err != nil || out != alice {
		t.Errorf("key and current code: output %q, error %v", out, err)
	}
	var modes []string
	for _, line := range strings.Split(strings.TrimSpace(readFile(t, r.auditPath)), "\n") {
		var rec struct{ Mode, Result string }
		testkit.Must(t, json.Unmarshal([]byte(line), &rec))
		modes = append(modes, rec.Mode+":"+rec.Result)
	}
	// PAM ran twice: the stale code, then the current one.
	if got := strings.Join(modes, " "); got != "totp:failure totp:success" {
		t.Errorf("audit records (mode:result) = %s, want totp:failure totp:success", got)
	}
}
