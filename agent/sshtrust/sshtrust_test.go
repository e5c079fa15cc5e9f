package sshtrust

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/crypto/ssh"

	"github.com/latchkey/latchkey/internal/vaultclient"
	"github.com/latchkey/latchkey/test/testkit"
	"github.com/latchkey/latchkey/test/vaulttest"
)

var srv *vaulttest.Server

func TestMain(m *testing.M) { vaulttest.Main(m, vaulttest.Spec{Into: &srv}) }

func (f *fixture) addStatus(s string) {
	f.statusMu.Lock()
	defer f.statusMu.Unlock()
	f.status = append(f.status, s)
}

func (f *fixture) statuses() []string {
	f.statusMu.Lock()
	defer f.statusMu.Unlock()
	return append([]string(nil), f.status...)
}

// fixture is one Trust against a Vault, with its files in a temp dir.
type fixture struct {
	t     *testing.T
	dir   string
	cfg   Config
	vault *vaulttest.Server
	logs  *observer.ObservedLogs
	// status are the STATUS= lines, appended by Run's goroutine.
	statusMu sync.Mutex
	status   []string
	// defaults, when set, are the host's default principals (its
	// hostname and FQDN).
	defaults []string
}

func newFixture(t *testing.T, vault *vaulttest.Server) *fixture {
	dir := t.TempDir()
	return &fixture{t: t, dir: dir, vault: vault, cfg: Config{
		TrustedUserCAKeys: filepath.Join(dir, "trusted-user-ca-keys.pem"),
		RefreshInterval:   DefaultRefreshInterval,
	}}
}

func (f *fixture) trust() *Trust {
	log, logs := testkit.Observed(f.t)
	f.logs = logs
	tr, err := New(f.cfg, Deps{
		Vault:  func(tok string) (*vaultclient.Client, error) { return f.vault.AgentClient(f.t, tok), nil },
		Token:  func() string { return f.vault.RootToken },
		Logger: log, Status: f.addStatus,
	})
	if f.defaults != nil {
		tr.deps.DefaultPrincipals = func() ([]string, error) { return f.defaults, nil }
	}
	testkit.Must(f.t, err)
	return tr
}

func (f *fixture) round() error {
	_, err := f.trust().Round(context.Background())
	return err
}

// hostKey writes a new ed25519 host public key into the fixture's dir.
func (f *fixture) hostKey(name string) string {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	testkit.Must(f.t, err)
	k, err := ssh.NewPublicKey(pub)
	testkit.Must(f.t, err)
	p := filepath.Join(f.dir, name+".pub")
	testkit.Must(f.t, os.WriteFile(p, ssh.MarshalAuthorizedKey(k), 0o644))
	return p
}

func mountUnique(t *testing.T, base string) string {
	return base + "-" + strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
}

func TestTrustFileHoldsEveryMountAndPinnedKey(t *testing.T) {
	a, b := mountUnique(t, "ca-a"), mountUnique(t, "ca-b")
	ka, kb := srv.SSHCAT(t, a), srv.SSHCAT(t, b)
	f := newFixture(t, srv)
	pinnedPub, _, _ := ed25519.GenerateKey(rand.Reader)
	pinned, _ := ssh.NewPublicKey(pinnedPub)
	pinnedFile := filepath.Join(f.dir, "pinned.pub")
	testkit.Must(t, os.WriteFile(pinnedFile, append([]byte("# offline break-glass CA\n"), ssh.MarshalAuthorizedKey(pinned)...), 0o644))
	f.cfg.UserCAMounts = []string{a, b}
	f.cfg.PinnedUserCAKeys = pinnedFile
	testkit.Must(t, f.round())

	got, err := readTrustFile(f.cfg.TrustedUserCAKeys)
	testkit.Must(t, err)
	want := []caKey{{ka, "mount:" + a}, {kb, "mount:" + b}, {pinned, "pinned:" + pinnedFile}}
	if len(got) != len(want) {
		t.Fatalf("trust file holds %d keys, want %d:\n%s", len(got), len(want), testkit.ReadFile(f.cfg.TrustedUserCAKeys))
	}
	for i := range want {
		if ssh.FingerprintSHA256(got[i].Key) != ssh.FingerprintSHA256(want[i].Key) || got[i].Source != want[i].Source {
			t.Errorf("line %d: %s %s, want %s %s", i, ssh.FingerprintSHA256(got[i].Key), got[i].Source, ssh.FingerprintSHA256(want[i].Key), want[i].Source)
		}
	}
	fi, err := os.Stat(f.cfg.TrustedUserCAKeys)
	testkit.Must(t, err)
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("trust file mode %o, want 644", fi.Mode().Perm())
	}
	// Unchanged sources: the file is not rewritten (same inode).
	testkit.Must(t, f.round())
	fi2, err := os.Stat(f.cfg.TrustedUserCAKeys)
	testkit.Must(t, err)
	if !os.SameFile(fi, fi2) {
		t.Error("an unchanged trust file was rewritten")
	}
	if n := f.logs.FilterMessage("ssh: file updated").Len(); n != 0 {
		t.Errorf("%d 'file updated' lines for an unchanged file", n)
	}
}

func TestTrustFileKeptWhenAMountFails(t *testing.T) {
	a := mountUnique(t, "ca-a")
	srv.SSHCAT(t, a)
	noCA := mountUnique(t, "no-ca")
	srv.MountT(t, noCA, &api.MountInput{Type: "ssh"})
	f := newFixture(t, srv)
	f.cfg.UserCAMounts = []string{a}
	testkit.Must(t, f.round())
	before := testkit.ReadFile(f.cfg.TrustedUserCAKeys)

	// A mount without a CA answers 404: the whole file is kept (dropping
	// a CA because of a transient answer would lock its users out).
	f.cfg.UserCAMounts = []string{a, noCA}
	err := f.round()
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("round with a 404 mount: %v, want an error naming 404", err)
	}
	if got := testkit.ReadFile(f.cfg.TrustedUserCAKeys); got != before {
		t.Errorf("trust file changed:\n%s\nwant\n%s", got, before)
	}
	if f.logs.FilterMessage("ssh: keeping the current trust file: a user CA source could not be read").Len() != 1 {
		t.Errorf("no 'keeping the current trust file' log line: %v", f.logs.All())
	}
}

func TestVaultDownKeepsFileAndFirstStartWritesPinnedOnly(t *testing.T) {
	v := vaulttest.StartT(t, vaulttest.Options{})
	a := "ca-own"
	v.SSHCAT(t, a)
	f := newFixture(t, v)
	pinnedPub, _, _ := ed25519.GenerateKey(rand.Reader)
	pinned, _ := ssh.NewPublicKey(pinnedPub)
	pinnedFile := filepath.Join(f.dir, "pinned.pub")
	testkit.Must(t, os.WriteFile(pinnedFile, ssh.MarshalAuthorizedKey(pinned), 0o644))
	f.cfg.UserCAMounts = []string{a}
	f.cfg.PinnedUserCAKeys = pinnedFile
	testkit.Must(t, f.round())
	before := testkit.ReadFile(f.cfg.TrustedUserCAKeys)
	testkit.Must(t, v.Stop())

	tr := f.trust()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { tr.Run(ctx); close(done) }()
	// The round logs before it returns; Run sends the STATUS= line after.
	testkit.Eventually(t, "a STATUS= line about the user CA keys", func() bool { return len(f.statuses()) > 0 })
	cancel()
	<-done
	if f.logs.FilterMessage("ssh: keeping the current trust file: a user CA source could not be read").Len() == 0 {
		t.Errorf("no 'keeping the current trust file' log line: %v", f.logs.All())
	}
	if got := testkit.ReadFile(f.cfg.TrustedUserCAKeys); got != before {
		t.Errorf("trust file changed while Vault was down:\n%s", got)
	}
	select {
	case <-tr.Ready():
		t.Error("ready although the user CA keys could not be read")
	default:
	}
	if len(f.status) == 0 || !strings.Contains(f.status[0], "mount:"+a) {
		t.Errorf("STATUS= lines %q, want one naming mount:%s", f.status, a)
	}

	// First start with Vault down: the pinned key alone gets written, so
	// that break-glass works; the round still fails.
	testkit.Must(t, os.Remove(f.cfg.TrustedUserCAKeys))
	if err := f.round(); err == nil {
		t.Error("a round with Vault down succeeded")
	}
	got, err := readTrustFile(f.cfg.TrustedUserCAKeys)
	testkit.Must(t, err)
	if len(got) != 1 || got[0].Source != "pinned:"+pinnedFile {
		t.Errorf("first-start trust file = %v, want the pinned key only", got)
	}

	// Nothing readable and no file: nothing written (never empty).
	testkit.Must(t, os.Remove(f.cfg.TrustedUserCAKeys))
	f.cfg.PinnedUserCAKeys = ""
	if err := f.round(); err == nil {
		t.Error("a round with nothing to trust succeeded")
	}
	if _, err := os.Stat(f.cfg.TrustedUserCAKeys); !os.IsNotExist(err) {
		t.Errorf("trust file written with nothing to trust (stat: %v)", err)
	}
}

// hostRole sets up a host signer with a role for test.example.com.
func hostRole(t *testing.T, mount string, ttl string) ssh.PublicKey {
	k := srv.SSHCAT(t, mount)
	_, err := srv.Client.Logical().Write(mount+"/roles/host", map[string]any{
		"key_type": "ca", "allow_host_certificates": true, "allowed_domains": "example.com",
		"allow_subdomains": true, "allow_bare_domains": true, "ttl": ttl, "not_before_duration": "1s",
	})
	testkit.Must(t, err)
	return k
}

func TestHostCertificateSignedKeptAndRenewed(t *testing.T) {
	mount := mountUnique(t, "host")
	ca := hostRole(t, mount, "72h")
	f := newFixture(t, srv)
	f.cfg.TrustedUserCAKeys = ""
	pub := f.hostKey("ssh_host_ed25519_key")
	reloads := filepath.Join(f.dir, "reloads")
	f.cfg.Host = &HostCertificate{Mount: mount, Role: "host", Keys: []string{filepath.Join(f.dir, "ssh_host_*_key.pub")},
		Principals: []string{"web1.example.com", "web1-alias.example.com"}, TTL: time.Hour}
	f.cfg.ReloadCommand = []string{"sh", "-c", "echo reload >> " + reloads}
	testkit.Must(t, f.round())

	certFile := certPath(pub)
	cert, err := readCert(certFile)
	testkit.Must(t, err)
	if cert.CertType != ssh.HostCert {
		t.Errorf("cert type %d, want host", cert.CertType)
	}
	if !samePrincipals(cert.ValidPrincipals, f.cfg.Host.Principals) {
		t.Errorf("principals %v", cert.ValidPrincipals)
	}
	if ssh.FingerprintSHA256(cert.SignatureKey) != ssh.FingerprintSHA256(ca) {
		t.Error("certificate not signed by the host CA")
	}
	if from, to := validity(cert); to.Sub(from) > time.Hour+time.Minute {
		t.Errorf("validity %s..%s, want about the asked 1h ttl", from, to)
	}
	fi, err := os.Stat(certFile)
	testkit.Must(t, err)
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("certificate mode %o, want 644", fi.Mode().Perm())
	}
	if got := testkit.ReadFile(reloads); got != "reload\n" {
		t.Errorf("reload_command ran %q times, want once", got)
	}

	// A restart (a new Trust) reads the certificate and keeps it.
	wait, err := f.trust().Round(context.Background())
	testkit.Must(t, err)
	again, err := readCert(certFile)
	testkit.Must(t, err)
	if again.Serial != cert.Serial {
		t.Error("a restart signed the host key again")
	}
	if got := testkit.ReadFile(reloads); got != "reload\n" {
		t.Errorf("reload_command ran without a certificate change (%q)", got)
	}
	if wait > DefaultRefreshInterval {
		t.Errorf("next round in %s, want at most the refresh interval", wait)
	}

	// Past 2/3 of its life: signed again.
	tr := f.trust()
	tr.deps.Now = func() time.Time { return renewAt(cert).Add(time.Second) }
	_, err = tr.Round(context.Background())
	testkit.Must(t, err)
	renewed, err := readCert(certFile)
	testkit.Must(t, err)
	if renewed.Serial == cert.Serial {
		t.Error("a certificate past its renewal time was not renewed")
	}

	// Other principals: signed again.
	f.cfg.Host.Principals = []string{"web2.example.com"}
	testkit.Must(t, f.round())
	other, err := readCert(certFile)
	testkit.Must(t, err)
	if !samePrincipals(other.ValidPrincipals, []string{"web2.example.com"}) {
		t.Errorf("principals %v after a change, want web2.example.com", other.ValidPrincipals)
	}
}

func TestHostCertificateRefusedPrincipalKeepsCurrent(t *testing.T) {
	mount := mountUnique(t, "host")
	hostRole(t, mount, "1h")
	f := newFixture(t, srv)
	f.cfg.TrustedUserCAKeys = ""
	pub := f.hostKey("ssh_host_ed25519_key")
	f.cfg.Host = &HostCertificate{Mount: mount, Role: "host", Keys: []string{pub}, Principals: []string{"127.0.0.1"}}
	err := f.round()
	if err == nil || !strings.Contains(err.Error(), "valid_principals") {
		t.Fatalf("signing for an IP the role does not allow: %v, want Vault's valid_principals refusal", err)
	}
	if _, err := os.Stat(certPath(pub)); !os.IsNotExist(err) {
		t.Errorf("a certificate was written (stat: %v)", err)
	}
}

func TestFailingCheckRestoresPreviousFiles(t *testing.T) {
	a := mountUnique(t, "ca-a")
	srv.SSHCAT(t, a)
	mount := mountUnique(t, "host")
	hostRole(t, mount, "1h")
	f := newFixture(t, srv)
	f.cfg.UserCAMounts = []string{a}
	pub := f.hostKey("ssh_host_ed25519_key")
	f.cfg.Host = &HostCertificate{Mount: mount, Role: "host", Keys: []string{pub}, Principals: []string{"a.example.com"}}
	testkit.Must(t, f.round())
	trustBefore, certBefore := testkit.ReadFile(f.cfg.TrustedUserCAKeys), testkit.ReadFile(certPath(pub))

	b := mountUnique(t, "ca-b")
	srv.SSHCAT(t, b)
	f.cfg.UserCAMounts = []string{a, b}
	f.cfg.Host.Principals = []string{"b.example.com"}
	reloads := filepath.Join(f.dir, "reloads")
	f.cfg.ReloadCommand = []string{"sh", "-c", "echo reload >> " + reloads}
	checks := filepath.Join(f.dir, "checks")
	f.cfg.CheckCommand = []string{"sh", "-c", "echo check >> " + checks + "; echo 'sshd: bad host certificate' >&2; exit 1"}
	tr := f.trust()
	_, err := tr.Round(context.Background())
	if !errors.Is(err, ErrCheck) || !strings.Contains(err.Error(), "sshd: bad host certificate") {
		t.Fatalf("round with a failing check: %v, want ErrCheck with the command's output", err)
	}
	if got := testkit.ReadFile(f.cfg.TrustedUserCAKeys); got != trustBefore {
		t.Errorf("trust file not restored:\n%s", got)
	}
	if got := testkit.ReadFile(certPath(pub)); got != certBefore {
		t.Error("host certificate not restored")
	}
	if testkit.ReadFile(reloads) != "" {
		t.Error("sshd reloaded after a failed check")
	}
	if f.logs.FilterMessage("ssh: new files refused; the previous ones are back in place").Len() != 1 {
		t.Errorf("no log line for the refused files")
	}
	// The same refused files are not put in place again at the retry.
	if _, err := tr.Round(context.Background()); !errors.Is(err, ErrCheck) {
		t.Errorf("retry of refused files: %v, want the refusal again", err)
	}
	if got := testkit.ReadFile(checks); got != "check\n" {
		t.Errorf("check_command ran %q, want once for the same refused files", got)
	}
	if got := testkit.ReadFile(f.cfg.TrustedUserCAKeys); got != trustBefore {
		t.Errorf("trust file changed at the retry:\n%s", got)
	}

	// A first write the check refuses leaves no file behind.
	g := newFixture(t, srv)
	g.cfg.UserCAMounts = []string{a}
	g.cfg.CheckCommand = []string{"false"}
	if err := g.round(); !errors.Is(err, ErrCheck) {
		t.Fatalf("first round with a failing check: %v", err)
	}
	if _, err := os.Stat(g.cfg.TrustedUserCAKeys); !os.IsNotExist(err) {
		t.Errorf("a refused first trust file was left (stat: %v)", err)
	}
}

func TestRunReadyAfterFirstRound(t *testing.T) {
	a := mountUnique(t, "ca-a")
	srv.SSHCAT(t, a)
	f := newFixture(t, srv)
	f.cfg.UserCAMounts = []string{a}
	tr := f.trust()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- tr.Run(ctx) }()
	select {
	case <-tr.Ready():
	case <-time.After(testkit.EventuallyTimeout):
		t.Fatal("not ready")
	}
	if testkit.ReadFile(f.cfg.TrustedUserCAKeys) == "" {
		t.Error("ready before the trust file was written")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

func TestRenewAtIsTwoThirdsWithJitter(t *testing.T) {
	for serial := uint64(0); serial < 3000; serial += 499 {
		c := &ssh.Certificate{ValidAfter: 0, ValidBefore: 3000, Serial: serial}
		at := renewAt(c).Unix()
		if at > 2000 || at < 2000-150 {
			t.Errorf("serial %d: renew at %d, want within [1850, 2000]", serial, at)
		}
	}
	if !renewAt(&ssh.Certificate{ValidBefore: ssh.CertTimeInfinity}).IsZero() {
		t.Error("a certificate valid forever has a renewal time")
	}
}

func TestValidate(t *testing.T) {
	good := func() Config {
		return Config{TrustedUserCAKeys: "/t", UserCAMounts: []string{"m"}, RefreshInterval: time.Minute}
	}
	for name, tc := range map[string]struct {
		edit func(*Config)
		want string
	}{
		"ok":         {func(*Config) {}, ""},
		"nothing":    {func(c *Config) { *c = Config{RefreshInterval: time.Minute} }, "ssh: trusted_user_ca_keys: the ssh block manages nothing: give trusted_user_ca_keys, host_certificate or both"},
		"no sources": {func(c *Config) { c.UserCAMounts = nil }, "ssh: trusted_user_ca_keys: needs user_ca_mounts or pinned_user_ca_keys: the trust file is never written empty"},
		"no file": {func(c *Config) {
			c.TrustedUserCAKeys = ""
			c.Host = &HostCertificate{Mount: "h", Role: "r", Keys: []string{"/k.pub"}}
		}, "ssh: trusted_user_ca_keys: user_ca_mounts and pinned_user_ca_keys need the file to write them to (the one sshd's TrustedUserCAKeys names)"},
		"empty mount": {func(c *Config) { c.UserCAMounts = []string{"/"} }, "ssh: user_ca_mounts: a mount path is empty"},
		"no role":     {func(c *Config) { c.Host = &HostCertificate{Mount: "h", Keys: []string{"/k.pub"}} }, "ssh: host_certificate.role: is required (a role with allow_host_certificates=true)"},
		"no mount":    {func(c *Config) { c.Host = &HostCertificate{Role: "r", Keys: []string{"/k.pub"}} }, "ssh: host_certificate.mount: is required (the SSH secrets engine mount that signs host keys)"},
		"private key": {func(c *Config) { c.Host = &HostCertificate{Mount: "h", Role: "r", Keys: []string{"/k"}} }, `ssh: host_certificate.keys: "/k": want public key files (*.pub); the certificate is written beside each as *-cert.pub`},
		"interval":    {func(c *Config) { c.RefreshInterval = 0 }, `ssh: refresh_interval: want a positive duration such as "5m"`},
		"empty check": {func(c *Config) { c.CheckCommand = []string{""} }, "ssh: check_command: the program name is empty"},
	} {
		t.Run(name, func(t *testing.T) {
			c := good()
			tc.edit(&c)
			err := c.Validate()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("Validate() = %q\nwant         %q", got, tc.want)
			}
		})
	}
}

func TestStatusLabelsSourcesAndCertificates(t *testing.T) {
	a := mountUnique(t, "ca-a")
	ka := srv.SSHCAT(t, a)
	mount := mountUnique(t, "host")
	hostRole(t, mount, "1h")
	f := newFixture(t, srv)
	pinnedPub, _, _ := ed25519.GenerateKey(rand.Reader)
	pinned, _ := ssh.NewPublicKey(pinnedPub)
	pinnedFile := filepath.Join(f.dir, "pinned.pub")
	testkit.Must(t, os.WriteFile(pinnedFile, ssh.MarshalAuthorizedKey(pinned), 0o644))
	f.cfg.UserCAMounts = []string{a}
	f.cfg.PinnedUserCAKeys = pinnedFile
	pub := f.hostKey("ssh_host_ed25519_key")
	f.cfg.Host = &HostCertificate{Mount: mount, Role: "host", Keys: []string{pub}, Principals: []string{"s.example.com"}}
	testkit.Must(t, f.round())
	cert, err := readCert(certPath(pub))
	testkit.Must(t, err)

	var out strings.Builder
	testkit.Must(t, WriteStatus(&out, f.cfg, time.Now()))
	for _, want := range []string{
		ssh.FingerprintSHA256(ka) + " ssh-ed25519 mount " + a,
		ssh.FingerprintSHA256(pinned) + " ssh-ed25519 pinned " + pinnedFile,
		"principals s.example.com",
		"(valid)",
		"next renewal " + renewAt(cert).UTC().Format(time.RFC3339),
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, out.String())
		}
	}
}

// Before the first login the host certificate waits for the token, without
// a failure in the log or STATUS=, and is signed as soon as it comes.
func TestHostCertificateWaitsForFirstLogin(t *testing.T) {
	mount := mountUnique(t, "host")
	hostRole(t, mount, "1h")
	f := newFixture(t, srv)
	f.cfg.TrustedUserCAKeys = ""
	pub := f.hostKey("ssh_host_ed25519_key")
	f.cfg.Host = &HostCertificate{Mount: mount, Role: "host", Keys: []string{pub}, Principals: []string{"w.example.com"}}
	log, logs := testkit.Observed(t)
	var mu sync.Mutex
	token, changed := "", make(chan struct{})
	tr, err := New(f.cfg, Deps{
		Vault:        func(tok string) (*vaultclient.Client, error) { return srv.AgentClient(t, tok), nil },
		Token:        func() string { mu.Lock(); defer mu.Unlock(); return token },
		TokenChanged: func() <-chan struct{} { mu.Lock(); defer mu.Unlock(); return changed },
		Logger:       log, Status: f.addStatus,
	})
	testkit.Must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go tr.Run(ctx)
	testkit.Eventually(t, "the wait for the first login", func() bool {
		return logs.FilterMessage("ssh: waiting for the first login to sign host certificates").Len() > 0
	})
	mu.Lock()
	token = srv.RootToken
	close(changed)
	changed = make(chan struct{})
	mu.Unlock()
	select {
	case <-tr.Ready():
	case <-time.After(testkit.EventuallyTimeout):
		t.Fatal("not ready after the login")
	}
	if n := logs.FilterMessage("ssh: round failed; will retry").Len(); n != 0 {
		t.Errorf("%d failure lines while waiting for the first login", n)
	}
	if _, err := readCert(certPath(pub)); err != nil {
		t.Errorf("no certificate after the login: %v", err)
	}
}

// A host CA rotated in Vault: the certificate signed by the old key is
// replaced at the next round, before its renewal time.
func TestHostCARotationSignsAgain(t *testing.T) {
	mount := mountUnique(t, "host")
	hostRole(t, mount, "1h")
	f := newFixture(t, srv)
	f.cfg.TrustedUserCAKeys = ""
	pub := f.hostKey("ssh_host_ed25519_key")
	f.cfg.Host = &HostCertificate{Mount: mount, Role: "host", Keys: []string{pub}, Principals: []string{"r.example.com"}}
	testkit.Must(t, f.round())
	old, err := readCert(certPath(pub))
	testkit.Must(t, err)
	_, err = srv.Client.Logical().Delete(mount + "/config/ca")
	testkit.Must(t, err)
	sec, err := srv.Client.Logical().Write(mount+"/config/ca", map[string]any{"generate_signing_key": true, "key_type": "ed25519"})
	testkit.Must(t, err)
	newCA, _, _, _, err := ssh.ParseAuthorizedKey([]byte(sec.Data["public_key"].(string)))
	testkit.Must(t, err)
	testkit.Must(t, f.round())
	cur, err := readCert(certPath(pub))
	testkit.Must(t, err)
	if cur.Serial == old.Serial || ssh.FingerprintSHA256(cur.SignatureKey) != ssh.FingerprintSHA256(newCA) {
		t.Errorf("after the host CA's rotation the certificate is signed by %s, want the new CA %s", ssh.FingerprintSHA256(cur.SignatureKey), ssh.FingerprintSHA256(newCA))
	}
}

// Without principals the host certificate is for the hostname and the
// FQDN. A role that allows subdomains only (packaging/terraform's) refuses
// the short hostname, and the whole request with it: the agent then signs
// for the FQDN alone, with a warning, and a restart keeps that
// certificate instead of signing again.
func TestHostCertificateDefaultPrincipals(t *testing.T) {
	const fallback = "signing for the FQDN only"
	for _, tc := range []struct {
		name     string
		role     map[string]any
		defaults []string
		want     []string // nil: refused, no certificate
		warned   bool
	}{
		{"role allows both", map[string]any{"allowed_domains": "example.com,web1", "allow_bare_domains": true, "allow_subdomains": true},
			[]string{"web1", "web1.example.com"}, []string{"web1", "web1.example.com"}, false},
		{"subdomains only", map[string]any{"allowed_domains": "example.com", "allow_subdomains": true},
			[]string{"web1", "web1.example.com"}, []string{"web1.example.com"}, true},
		{"short name only", map[string]any{"allowed_domains": "example.com", "allow_subdomains": true},
			[]string{"web1"}, nil, false},
		{"foreign domain", map[string]any{"allowed_domains": "example.com", "allow_subdomains": true},
			[]string{"web1", "web1.example.org"}, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mount := mountUnique(t, "host")
			srv.SSHCAT(t, mount)
			role := map[string]any{"key_type": "ca", "allow_host_certificates": true, "ttl": "1h"}
			for k, v := range tc.role {
				role[k] = v
			}
			_, err := srv.Client.Logical().Write(mount+"/roles/host", role)
			testkit.Must(t, err)
			f := newFixture(t, srv)
			f.cfg.TrustedUserCAKeys = ""
			f.defaults = tc.defaults
			pub := f.hostKey("ssh_host_ed25519_key")
			f.cfg.Host = &HostCertificate{Mount: mount, Role: "host", Keys: []string{pub}}
			err = f.round()
			if warned := f.logs.FilterMessageSnippet(fallback).Len() > 0; warned != tc.warned {
				t.Errorf("fallback warning logged: %v, want %v", warned, tc.warned)
			}
			if tc.want == nil {
				if err == nil || !strings.Contains(err.Error(), "valid_principals") {
					t.Fatalf("round: %v, want Vault's valid_principals refusal", err)
				}
				if _, err := os.Stat(certPath(pub)); !os.IsNotExist(err) {
					t.Errorf("a certificate was written (stat: %v)", err)
				}
				return
			}
			testkit.Must(t, err)
			cert, err := readCert(certPath(pub))
			testkit.Must(t, err)
			if !samePrincipals(cert.ValidPrincipals, tc.want) {
				t.Errorf("principals %v, want %v", cert.ValidPrincipals, tc.want)
			}
			// A restart (a new Trust) keeps the certificate.
			testkit.Must(t, f.round())
			again, err := readCert(certPath(pub))
			testkit.Must(t, err)
			if again.Serial != cert.Serial {
				t.Error("a restart signed the host key again")
			}
			if n := f.logs.FilterMessageSnippet(fallback).Len(); n != 0 {
				t.Errorf("the restart fell back again (%d warnings)", n)
			}
		})
	}
}

// Defect: a trust file whose content was current was never touched again,
// whatever its mode or owner: after a chmod 0666 (or a chown to a user),
// anyone who could write it could add a CA of their own and log in as
// anyone, for as long as the agent ran. It is now written anew, 0644 and
// the agent's, at the next round.
func TestTrustFileModeAndOwnerPutRight(t *testing.T) {
	a := mountUnique(t, "ca-a")
	srv.SSHCAT(t, a)
	tests := map[string]struct {
		mode     os.FileMode
		uid      int // -1: unchanged
		rewrites bool
	}{
		"as written":        {mode: 0o644, uid: -1},
		"world-writable":    {mode: 0o666, uid: -1, rewrites: true},
		"group-writable":    {mode: 0o664, uid: -1, rewrites: true},
		"owned by a user":   {mode: 0o644, uid: 65534, rewrites: true},
		"readable by owner": {mode: 0o600, uid: -1, rewrites: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if tc.uid >= 0 && os.Geteuid() != 0 {
				t.Skip("not root: chown needs root")
			}
			f := newFixture(t, srv)
			f.cfg.UserCAMounts = []string{a}
			testkit.Must(t, f.round())
			p := f.cfg.TrustedUserCAKeys
			content := testkit.ReadFile(p)
			testkit.Must(t, os.Chmod(p, tc.mode))
			if tc.uid >= 0 {
				testkit.Chown(t, p, tc.uid, -1)
			}
			before, err := os.Stat(p)
			testkit.Must(t, err)
			testkit.Must(t, f.round())
			fi, err := os.Stat(p)
			testkit.Must(t, err)
			if rewritten := !os.SameFile(before, fi); rewritten != tc.rewrites {
				t.Errorf("rewritten = %v, want %v", rewritten, tc.rewrites)
			}
			if fi.Mode().Perm() != 0o644 && tc.rewrites {
				t.Errorf("mode %#o, want 0644", fi.Mode().Perm())
			}
			if st := fi.Sys().(*syscall.Stat_t); tc.rewrites && int(st.Uid) != os.Geteuid() {
				t.Errorf("owned by uid %d, want %d", st.Uid, os.Geteuid())
			}
			if got := testkit.ReadFile(p); got != content {
				t.Errorf("content changed:\n%s\nwant\n%s", got, content)
			}
		})
	}
}

// Defect: a pinned file holding a certificate (the break-glass CA's
// signed key given instead of the CA's .pub) was written into the trust
// file, where sshd matches nothing: break-glass silently did not work. It
// is now refused, naming the file and line.
func TestPinnedCertificateRefused(t *testing.T) {
	f := newFixture(t, srv)
	_, caPriv, err := ed25519.GenerateKey(rand.Reader)
	testkit.Must(t, err)
	signer, err := ssh.NewSignerFromKey(caPriv)
	testkit.Must(t, err)
	userPub, _, err := ed25519.GenerateKey(rand.Reader)
	testkit.Must(t, err)
	uk, err := ssh.NewPublicKey(userPub)
	testkit.Must(t, err)
	cert := &ssh.Certificate{Key: uk, CertType: ssh.UserCert, KeyId: "alice", ValidPrincipals: []string{"alice"}, ValidBefore: ssh.CertTimeInfinity}
	testkit.Must(t, cert.SignCert(rand.Reader, signer))
	pinned := filepath.Join(f.dir, "pinned.pub")
	testkit.Must(t, os.WriteFile(pinned, append([]byte("# break-glass\n"), ssh.MarshalAuthorizedKey(cert)...), 0o644))
	f.cfg.PinnedUserCAKeys = pinned
	err = f.round()
	if err == nil || !strings.Contains(err.Error(), pinned+":2: a certificate, not a CA public key") {
		t.Fatalf("round: %v, want the pinned file's line 2 named", err)
	}
	if _, err := os.Stat(f.cfg.TrustedUserCAKeys); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a trust file was written: %v", err)
	}
}
