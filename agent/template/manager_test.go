package template

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	"go.uber.org/zap/zaptest"

	"github.com/latchkey/latchkey/agent/config"
	"github.com/latchkey/latchkey/test/testkit"
	"github.com/latchkey/latchkey/test/vaulttest"
)

var srv *vaulttest.Server

func TestMain(m *testing.M) { vaulttest.Main(m, vaulttest.Spec{Into: &srv}) }

var seq atomic.Int32

// counting counts the requests to the real Vault, to show how often each
// secret is fetched.
type counting struct {
	*vaulttest.CountingProxy
	url string
}

func newCounting(t *testing.T) *counting {
	p := vaulttest.NewCountingProxy(t, srv.Addr)
	return &counting{CountingProxy: p, url: p.URL}
}

// puts counts PUT and POST requests to path.
func (c *counting) puts(path string) int {
	return c.Count("PUT", "/v1/"+path) + c.Count("POST", "/v1/"+path)
}

// count counts GET requests to path.
func (c *counting) count(path string) int { return c.Count("GET", "/v1/"+path) }

// root returns the test kit's client double with the root token, reaching
// Vault at addr (a counting proxy, or srv.Addr).
func root(t *testing.T, addr string) *testkit.Clients {
	return testkit.NewClients(t, addr, srv.RootToken)
}

var _ Clients = (*testkit.Clients)(nil)

func kvMounts(t *testing.T) (v1, v2 string) {
	n := seq.Add(1)
	v1, v2 = fmt.Sprintf("kv1-%d", n), fmt.Sprintf("kv2-%d", n)
	testkit.Must(t, srv.Client.Sys().Mount(v1, &api.MountInput{Type: "kv", Options: map[string]string{"version": "1"}}))
	testkit.Must(t, srv.Client.Sys().Mount(v2, &api.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}))
	return v1, v2
}

func putV1(t *testing.T, mount, p string, data map[string]any) {
	_, err := srv.Client.Logical().Write(mount+"/"+p, data)
	testkit.Must(t, err)
}

func putV2(t *testing.T, mount, p string, data map[string]any) {
	_, err := srv.Client.Logical().Write(mount+"/data/"+p, map[string]any{"data": data})
	testkit.Must(t, err)
}

type running struct {
	m    *Manager
	done chan error
	// clk is the manager's clock: a fake one, which the test moves,
	// unless the test passed Options.Clock.
	clk *testkit.Clock
}

func run(t *testing.T, o Options) *running {
	t.Helper()
	if o.Logger == nil {
		o.Logger = zaptest.NewLogger(t)
	}
	if o.Config == (config.TemplateConfig{}) {
		o.Config = quick()
	}
	if o.Clock == nil {
		o.Clock = testkit.NewClock(time.Now())
	}
	m, err := New(o)
	testkit.Must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{m: m, done: make(chan error, 1)}
	r.clk, _ = o.Clock.(*testkit.Clock)
	go func() { r.done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(30 * time.Second):
			t.Error("manager did not stop")
		}
	})
	return r
}

// quick is the default template_config with retries of 50ms to 200ms.
func quick() config.TemplateConfig {
	c := config.DefaultTemplateConfig()
	c.RetryMin, c.RetryMax = 50*time.Millisecond, 200*time.Millisecond
	return c
}

func tmpl(dir, name, contents string) config.Template {
	return config.Template{Contents: contents, Destination: filepath.Join(dir, name), CreateDestDirs: true}
}

func waitReady(t *testing.T, m *Manager) {
	t.Helper()
	select {
	case <-m.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("templates never all rendered")
	}
}

func TestKVv1AndV2Refresh(t *testing.T) {
	v1, v2 := kvMounts(t)
	putV1(t, v1, "app", map[string]any{"password": "one", "user": "app"})
	putV2(t, v2, "app/rds", map[string]any{"password": "two", "key-with-dash": "x"})
	dir := t.TempDir()
	cfg := quick()
	cfg.StaticSecretRenderInterval = 200 * time.Millisecond
	ts := []config.Template{
		tmpl(dir, "v1", fmt.Sprintf(`{{ with secret "%s/app" }}{{ .Data.user }}:{{ .Data.password }}{{ end }}`, v1)),
		tmpl(dir, "v2", fmt.Sprintf(`{{ with secret "%s/app/rds" }}{{ .Data.data.password }} {{ index .Data.data "key-with-dash" }} v{{ .Data.metadata.version }}{{ end }}`, v2)),
		tmpl(dir, "v2-data", fmt.Sprintf(`{{- with secret "%s/data/app/rds" -}}
{{ .Data.data.password }}
{{- end }}`, v2)),
		tmpl(dir, "list", fmt.Sprintf(`{{ range secrets "%s/app/" }}{{ . }},{{ end }}`, v2)),
	}
	r := run(t, Options{Templates: ts, Config: cfg, Clients: root(t, srv.Addr)})
	waitReady(t, r.m)
	for name, want := range map[string]string{"v1": "app:one", "v2": "two x v1", "v2-data": "two", "list": "rds,"} {
		if got := testkit.ReadFile(filepath.Join(dir, name)); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	putV1(t, v1, "app", map[string]any{"password": "three", "user": "app"})
	putV2(t, v2, "app/rds", map[string]any{"password": "four", "key-with-dash": "y"})
	r.clk.StepUntil(t, cfg.StaticSecretRenderInterval, "KV v1 update rendered", func() bool { return testkit.ReadFile(filepath.Join(dir, "v1")) == "app:three" })
	r.clk.StepUntil(t, cfg.StaticSecretRenderInterval, "KV v2 update rendered", func() bool { return testkit.ReadFile(filepath.Join(dir, "v2")) == "four y v2" })
}

// Many templates, one secret: fetched once; a token change fetches nothing.
func TestSharedSecretFetchedOnce(t *testing.T) {
	_, v2 := kvMounts(t)
	putV2(t, v2, "shared", map[string]any{"k": "v"})
	proxy := newCounting(t)
	dir := t.TempDir()
	var ts []config.Template
	for i := 0; i < 8; i++ {
		ts = append(ts, tmpl(dir, fmt.Sprint(i), fmt.Sprintf(`{{ with secret "%s/shared" }}{{ .Data.data.k }}{{ end }}`, v2)))
	}
	r := run(t, Options{Templates: ts, Clients: root(t, proxy.url)})
	waitReady(t, r.m)
	if n := proxy.count(v2 + "/data/shared"); n != 1 {
		t.Errorf("the shared secret was fetched %d times, want 1", n)
	}
}

func TestMissingSecretIsolated(t *testing.T) {
	_, v2 := kvMounts(t)
	putV2(t, v2, "good", map[string]any{"k": "good"})
	proxy := newCounting(t)
	dir := t.TempDir()
	ts := []config.Template{
		tmpl(dir, "good", fmt.Sprintf(`{{ with secret "%s/good" }}{{ .Data.data.k }}{{ end }}`, v2)),
		tmpl(dir, "bad", fmt.Sprintf(`{{ with secret "%s/missing" }}{{ .Data.data.k }}{{ end }}`, v2)),
	}
	r := run(t, Options{Templates: ts, Clients: root(t, proxy.url)})
	testkit.Eventually(t, "the good template", func() bool { return testkit.ReadFile(filepath.Join(dir, "good")) == "good" })
	r.clk.StepUntil(t, 200*time.Millisecond, "retries of the bad one", func() bool { return proxy.count(v2+"/data/missing") >= 3 })
	if n := proxy.count(v2 + "/data/good"); n != 1 {
		t.Errorf("the good secret was fetched %d times while the bad template retried, want 1", n)
	}
	select {
	case <-r.m.Ready():
		t.Fatal("ready while a template has never rendered")
	default:
	}
	if _, err := os.Stat(filepath.Join(dir, "bad")); err == nil {
		t.Error("the failing template wrote a file")
	}
	putV2(t, v2, "missing", map[string]any{"k": "late"})
	r.clk.StepUntil(t, 200*time.Millisecond, "the bad template once its secret exists", func() bool { return testkit.ReadFile(filepath.Join(dir, "bad")) == "late" })
	waitReady(t, r.m)
}

func TestExitOnRetryFailure(t *testing.T) {
	_, v2 := kvMounts(t)
	cfg := quick()
	cfg.ExitOnRetryFailure = true
	cfg.RetryMin, cfg.RetryMax, cfg.RetryAttempts = 10*time.Millisecond, 20*time.Millisecond, 3
	m, err := New(Options{Templates: []config.Template{tmpl(t.TempDir(), "x", fmt.Sprintf(`{{ with secret "%s/nope" }}{{ end }}`, v2))},
		Config: cfg, Clients: root(t, srv.Addr), Logger: zaptest.NewLogger(t)})
	testkit.Must(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.Run(ctx); err == nil || !strings.Contains(err.Error(), "no secret exists") {
		t.Fatalf("Run = %v, want the template's error", err)
	}
}

func TestErrorOnMissingKey(t *testing.T) {
	_, v2 := kvMounts(t)
	putV2(t, v2, "app", map[string]any{"k": "v"})
	dir := t.TempDir()
	loose := tmpl(dir, "loose", fmt.Sprintf(`{{ with secret "%s/app" }}[{{ .Data.data.nope }}]{{ end }}`, v2))
	strict := tmpl(dir, "strict", fmt.Sprintf(`{{ with secret "%s/app" }}[{{ .Data.data.nope }}]{{ end }}`, v2))
	strict.ErrorOnMissingKey = true
	r := run(t, Options{Templates: []config.Template{loose, strict}, Clients: root(t, srv.Addr)})
	testkit.Eventually(t, "the loose template", func() bool { return testkit.ReadFile(filepath.Join(dir, "loose")) == "[<no value>]" })
	// Several retries of the strict one (RetryMax is 200ms in run).
	for i := 0; i < 4; i++ {
		r.clk.Step(t, 200*time.Millisecond)
	}
	if _, err := os.Stat(filepath.Join(dir, "strict")); err == nil {
		t.Error("error_on_missing_key wrote <no value>")
	}
}

func TestModeOwnerBackupAndCommand(t *testing.T) {
	_, v2 := kvMounts(t)
	putV2(t, v2, "app", map[string]any{"k": "one"})
	dir := t.TempDir()
	perms := os.FileMode(0o600)
	uid, gid := 65534, 65534
	marker := filepath.Join(dir, "ran")
	tc := tmpl(dir, "out", fmt.Sprintf(`{{ with secret "%s/app" }}{{ .Data.data.k }}{{ end }}`, v2))
	tc.Perms, tc.UID, tc.GID, tc.Backup = &perms, &uid, &gid, true
	tc.Exec = &config.Exec{Command: []string{"/bin/sh", "-c", "echo x >> " + marker}, Timeout: 10 * time.Second}
	cfg := quick()
	cfg.StaticSecretRenderInterval = 200 * time.Millisecond
	r := run(t, Options{Templates: []config.Template{tc}, Config: cfg, Clients: root(t, srv.Addr)})
	dest := filepath.Join(dir, "out")
	testkit.Eventually(t, "first render", func() bool { return testkit.ReadFile(dest) == "one" })
	check := func() {
		t.Helper()
		fi, err := os.Stat(dest)
		testkit.Must(t, err)
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode().Perm() != 0o600 || st.Uid != 65534 || st.Gid != 65534 {
			t.Errorf("mode %v owner %d:%d, want 0600 65534:65534", fi.Mode().Perm(), st.Uid, st.Gid)
		}
	}
	check()
	testkit.Eventually(t, "command after the first render", func() bool { return testkit.ReadFile(marker) == "x\n" })
	// Someone loosens the mode and takes the file: put back (fsnotify sees
	// the chmod), without a change of content and so without the command.
	testkit.Must(t, os.Chmod(dest, 0o666))
	testkit.Must(t, os.Chown(dest, 0, 0))
	testkit.Eventually(t, "mode and owner restored", func() bool {
		fi, err := os.Stat(dest)
		st := fi.Sys().(*syscall.Stat_t)
		return err == nil && fi.Mode().Perm() == 0o600 && st.Uid == 65534 && st.Gid == 65534
	})
	for i := 0; i < 3; i++ { // several refreshes without a change
		r.clk.Step(t, cfg.StaticSecretRenderInterval)
	}
	if testkit.ReadFile(marker) != "x\n" {
		t.Errorf("command ran without a change: %q", testkit.ReadFile(marker))
	}
	putV2(t, v2, "app", map[string]any{"k": "two"})
	r.clk.StepUntil(t, cfg.StaticSecretRenderInterval, "re-render", func() bool { return testkit.ReadFile(dest) == "two" })
	check()
	if testkit.ReadFile(dest+".bak") != "one" {
		t.Errorf("backup = %q", testkit.ReadFile(dest+".bak"))
	}
	testkit.Eventually(t, "command after the change", func() bool { return testkit.ReadFile(marker) == "x\nx\n" })
}

func TestFsnotifySourceAndDestination(t *testing.T) {
	_, v2 := kvMounts(t)
	putV2(t, v2, "app", map[string]any{"k": "v"})
	dir := t.TempDir()
	src := filepath.Join(dir, "app.tmpl")
	testkit.Must(t, os.WriteFile(src, []byte(fmt.Sprintf(`a={{ with secret "%s/app" }}{{ .Data.data.k }}{{ end }}`, v2)), 0o644))
	dest := filepath.Join(dir, "out", "app.conf")
	tc := config.Template{Source: src, Destination: dest, CreateDestDirs: true}
	r := run(t, Options{Templates: []config.Template{tc}, Clients: root(t, srv.Addr)})
	testkit.Eventually(t, "first render", func() bool { return testkit.ReadFile(dest) == "a=v" })
	testkit.Must(t, os.WriteFile(src, []byte(fmt.Sprintf(`b={{ with secret "%s/app" }}{{ .Data.data.k }}{{ end }}`, v2)), 0o644))
	r.clk.StepUntil(t, config.DefaultSourceQuiet, "source edit rendered", func() bool { return testkit.ReadFile(dest) == "b=v" })
	testkit.Must(t, os.Remove(dest))
	testkit.Eventually(t, "deleted destination restored", func() bool { return testkit.ReadFile(dest) == "b=v" })
	testkit.Must(t, os.WriteFile(dest, []byte("tampered"), 0o644))
	testkit.Eventually(t, "altered destination restored", func() bool { return testkit.ReadFile(dest) == "b=v" })
}

// A bind-mounted destination (a container's config file) cannot be
// replaced by rename: it is written in place.
func TestBindMountedDestination(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("bind mounts need root; CI runs as root")
	}
	_, v2 := kvMounts(t)
	putV2(t, v2, "app", map[string]any{"k": "one"})
	dir := t.TempDir()
	backing := filepath.Join(dir, "backing")
	dest := filepath.Join(dir, "dest")
	testkit.Must(t, os.WriteFile(backing, []byte("old"), 0o644))
	testkit.Must(t, os.WriteFile(dest, []byte("old"), 0o644))
	if out, err := exec.Command("mount", "--bind", backing, dest).CombinedOutput(); err != nil {
		t.Fatalf("mount --bind: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dest).Run() })
	tc := config.Template{Contents: fmt.Sprintf(`{{ with secret "%s/app" }}{{ .Data.data.k }}{{ end }}`, v2), Destination: dest}
	run(t, Options{Templates: []config.Template{tc}, Clients: root(t, srv.Addr)})
	testkit.Eventually(t, "the bind-mounted file updated in place", func() bool { return testkit.ReadFile(backing) == "one" })
}

func TestRenderDryRunMasks(t *testing.T) {
	_, v2 := kvMounts(t)
	putV2(t, v2, "app", map[string]any{"password": "hunter2"})
	dir := t.TempDir()
	tc := tmpl(dir, "out", fmt.Sprintf(`pw={{ with secret "%s/app" }}{{ .Data.data.password }}{{ end }}`, v2))
	m, err := New(Options{Templates: []config.Template{tc}, Config: config.DefaultTemplateConfig(), Clients: root(t, srv.Addr), Logger: zaptest.NewLogger(t)})
	testkit.Must(t, err)
	out, err := m.Render(context.Background(), tc.Destination, true, false)
	testkit.Must(t, err)
	if string(out) != "pw=<redacted>" {
		t.Errorf("masked render = %q", out)
	}
	out, err = m.Render(context.Background(), "1", true, true)
	testkit.Must(t, err)
	if string(out) != "pw=hunter2" {
		t.Errorf("shown render = %q", out)
	}
	if _, err := os.Stat(tc.Destination); err == nil {
		t.Error("a dry run wrote the destination")
	}
	if _, err := m.Render(context.Background(), "nope", true, false); err == nil {
		t.Error("unknown template rendered")
	}
}

// Execution errors never carry a secret value.
func TestErrorsRedacted(t *testing.T) {
	_, v2 := kvMounts(t)
	putV2(t, v2, "app", map[string]any{"password": "s3cr3t-value"})
	tc := tmpl(t.TempDir(), "out", fmt.Sprintf(`{{ with secret "%s/app" }}{{ .Data.data.password | parseInt }}{{ end }}`, v2))
	m, err := New(Options{Templates: []config.Template{tc}, Config: config.DefaultTemplateConfig(), Clients: root(t, srv.Addr), Logger: zaptest.NewLogger(t)})
	testkit.Must(t, err)
	err = m.renderUnit(context.Background(), 0)
	// The function's error holds no value at all (funcs.valueFree): it names
	// the function and the reason instead of a redacted copy.
	if err == nil || strings.Contains(strings.ToLower(err.Error()), "s3cr3t") || !strings.Contains(err.Error(), "parseInt: ParseInt: invalid syntax") {
		t.Fatalf("error = %v", err)
	}
}

func TestParseErrorNamesTemplate(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "bad.tmpl")
	testkit.Must(t, os.WriteFile(src, []byte("{{ with secret \"x\" }}"), 0o644))
	_, err := New(Options{Templates: []config.Template{{Source: src, Destination: filepath.Join(dir, "o")}}, Config: config.DefaultTemplateConfig(), Logger: zaptest.NewLogger(t)})
	if err == nil || !strings.Contains(err.Error(), "parse template "+src) {
		t.Fatalf("error = %v", err)
	}
}

// A certificate is issued again at lease_renewal_threshold of its life, not
// before; a restart with a valid certificate on disk does not issue one.
func TestPKICertReissuedNearExpiry(t *testing.T) {
	c := srv.Client
	mount := fmt.Sprintf("pki-%d", seq.Add(1))
	testkit.Must(t, c.Sys().Mount(mount, &api.MountInput{Type: "pki", Config: api.MountConfigInput{MaxLeaseTTL: "87600h"}}))
	_, err := c.Logical().Write(mount+"/root/generate/internal", map[string]any{"common_name": "Test Root", "ttl": "8700h"})
	testkit.Must(t, err)
	_, err = c.Logical().Write(mount+"/roles/web", map[string]any{"allowed_domains": "example.com", "allow_subdomains": true, "max_ttl": "1h", "not_before_duration": "1s"})
	testkit.Must(t, err)
	dir := t.TempDir()
	short := tmpl(dir, "short.pem", fmt.Sprintf(`{{ with pkiCert "%s/issue/web" "common_name=a.example.com" "ttl=6s" }}{{ .Cert }}
{{ .Key }}{{ end }}`, mount))
	long := tmpl(dir, "long.pem", fmt.Sprintf(`{{ with pkiCert "%s/issue/web" "common_name=b.example.com" "ttl=1h" }}{{ .Cert }}
{{ .Key }}{{ end }}`, mount))
	cfg := quick()
	cfg.LeaseRenewalThreshold = 0.5
	r := run(t, Options{Templates: []config.Template{short, long}, Config: cfg, Clients: root(t, srv.Addr)})
	waitReady(t, r.m)
	firstShort, firstLong := serial(t, short.Destination), serial(t, long.Destination)
	r.clk.StepUntil(t, time.Second, "the short-lived certificate re-issued", func() bool { return serial(t, short.Destination) != firstShort })
	if serial(t, long.Destination) != firstLong {
		t.Error("the long-lived certificate was re-issued early")
	}

	// A restart: a new manager finds the long-lived certificate on disk.
	proxy := newCounting(t)
	m2 := run(t, Options{Templates: []config.Template{long}, Config: cfg, Clients: root(t, proxy.url)})
	waitReady(t, m2.m)
	if serial(t, long.Destination) != firstLong {
		t.Error("a restart re-issued a still-valid certificate")
	}
}

func serial(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	c, err := parseCert(string(b))
	if err != nil {
		return ""
	}
	return c.SerialNumber.String()
}

// A dynamic secret with a short, non-renewable lease (SSH OTP credentials,
// whose lease is the mount's TTL) is fetched again at the threshold.
func TestShortLeaseRefetched(t *testing.T) {
	c := srv.Client
	mount := fmt.Sprintf("ssh-%d", seq.Add(1))
	testkit.Must(t, c.Sys().Mount(mount, &api.MountInput{Type: "ssh", Config: api.MountConfigInput{DefaultLeaseTTL: "4s", MaxLeaseTTL: "4s"}}))
	_, err := c.Logical().Write(mount+"/roles/otp", map[string]any{"key_type": "otp", "default_user": "app", "cidr_list": "127.0.0.0/8"})
	testkit.Must(t, err)
	dir := t.TempDir()
	tc := tmpl(dir, "otp", fmt.Sprintf(`{{ with secret "%s/creds/otp" "ip=127.0.0.1" }}{{ .Data.key }} {{ .LeaseDuration }} {{ .Renewable }}{{ end }}`, mount))
	cfg := quick()
	cfg.LeaseRenewalThreshold = 0.5
	r := run(t, Options{Templates: []config.Template{tc}, Config: cfg, Clients: root(t, srv.Addr)})
	waitReady(t, r.m)
	first := testkit.ReadFile(tc.Destination)
	if !strings.HasSuffix(first, " 4 false") {
		t.Fatalf("rendered %q, want a 4s non-renewable lease", first)
	}
	r.clk.StepUntil(t, 500*time.Millisecond, "a new credential before the lease ends", func() bool {
		now := testkit.ReadFile(tc.Destination)
		return now != "" && now != first
	})
}

// A re-login changes the token, nothing else: no fetch, no render.
func TestTokenChangeFetchesNothing(t *testing.T) {
	_, v2 := kvMounts(t)
	putV2(t, v2, "app", map[string]any{"k": "v"})
	proxy := newCounting(t)
	cl := root(t, proxy.url)
	dir := t.TempDir()
	tc := tmpl(dir, "out", fmt.Sprintf(`{{ with secret "%s/app" }}{{ .Data.data.k }}{{ end }}`, v2))
	r := run(t, Options{Templates: []config.Template{tc}, Clients: cl})
	waitReady(t, r.m)
	fi1, _ := os.Stat(tc.Destination)
	s, err := srv.Client.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{"root"}})
	testkit.Must(t, err)
	turns := r.clk.Timers()
	cl.SetToken(s.Auth.ClientToken) // what a re-login does
	// The login is seen (a turn of the loop), and time goes on short of a
	// refresh.
	r.clk.WaitTimers(t, turns+1)
	r.clk.Step(t, time.Minute)
	if n := proxy.count(v2 + "/data/app"); n != 1 {
		t.Errorf("the secret was fetched %d times, want 1", n)
	}
	fi2, _ := os.Stat(tc.Destination)
	if !fi1.ModTime().Equal(fi2.ModTime()) {
		t.Error("the destination was rewritten after a token change")
	}
}

// wait { min }: a change is rendered only after min without another one.
func TestWaitQuiescence(t *testing.T) {
	_, v2 := kvMounts(t)
	putV2(t, v2, "app", map[string]any{"k": "0"})
	dir := t.TempDir()
	tc := tmpl(dir, "out", fmt.Sprintf(`{{ with secret "%s/app" }}{{ .Data.data.k }}{{ end }}`, v2))
	tc.Wait = config.Wait{Min: 4 * time.Second, Max: 60 * time.Second}
	cfg := quick()
	cfg.StaticSecretRenderInterval = 100 * time.Millisecond
	r := run(t, Options{Templates: []config.Template{tc}, Config: cfg, Clients: root(t, srv.Addr)})
	testkit.Eventually(t, "first render", func() bool { return testkit.ReadFile(tc.Destination) == "0" })
	// Changes every 200ms (of the manager's clock): none is written while
	// they keep coming.
	for i := 1; i <= 5; i++ {
		putV2(t, v2, "app", map[string]any{"k": fmt.Sprint(i)})
		r.clk.Step(t, 200*time.Millisecond)
		if got := testkit.ReadFile(tc.Destination); got != "0" {
			t.Fatalf("rendered %q during a burst of changes", got)
		}
	}
	r.clk.StepUntil(t, 200*time.Millisecond, "the last value after the quiet period", func() bool { return testkit.ReadFile(tc.Destination) == "5" })
}

func TestSameValue(t *testing.T) {
	a := &Secret{RequestID: "1", Data: map[string]any{"k": "v"}}
	tests := map[string]struct {
		b    any
		want bool
	}{
		"only the request id differs": {&Secret{RequestID: "2", Data: map[string]any{"k": "v"}}, true},
		"data differs":                {&Secret{RequestID: "1", Data: map[string]any{"k": "w"}}, false},
		"new lease":                   {&Secret{RequestID: "1", LeaseID: "l2", Data: map[string]any{"k": "v"}}, false},
		"not a secret":                {[]string{"a"}, false},
	}
	for name, tc := range tests {
		if got := sameValue(a, tc.b); got != tc.want {
			t.Errorf("%s: sameValue = %v, want %v", name, got, tc.want)
		}
	}
}

// A failing command is logged and runs again at the next change; the
// template counts as rendered and nothing stops.
func TestFailingCommandRetriedOnNextChange(t *testing.T) {
	_, v2 := kvMounts(t)
	putV2(t, v2, "app", map[string]any{"k": "one"})
	dir := t.TempDir()
	count := filepath.Join(dir, "count")
	tc := tmpl(dir, "out", fmt.Sprintf(`{{ with secret "%s/app" }}{{ .Data.data.k }}{{ end }}`, v2))
	tc.Exec = &config.Exec{Command: []string{"/bin/sh", "-c", "echo x >> " + count + "; exit 3"}, Timeout: 10 * time.Second}
	cfg := quick()
	cfg.StaticSecretRenderInterval = 200 * time.Millisecond
	r := run(t, Options{Templates: []config.Template{tc}, Config: cfg, Clients: root(t, srv.Addr)})
	waitReady(t, r.m)
	testkit.Eventually(t, "the command ran once", func() bool { return testkit.ReadFile(count) == "x\n" })
	putV2(t, v2, "app", map[string]any{"k": "two"})
	r.clk.StepUntil(t, cfg.StaticSecretRenderInterval, "the command ran again after the change", func() bool { return testkit.ReadFile(count) == "x\nx\n" })
	select {
	case err := <-r.done:
		t.Fatalf("the manager stopped: %v", err)
		r.done <- err
	default:
	}
}

// A file read with `file` is watched: editing it re-renders the template,
// and a template waiting for a file that does not exist yet renders once it
// appears.
func TestFileFunctionWatched(t *testing.T) {
	dir := t.TempDir()
	inc := filepath.Join(dir, "inc", "part.txt")
	testkit.Must(t, os.MkdirAll(filepath.Dir(inc), 0o755))
	testkit.Must(t, os.WriteFile(inc, []byte("one"), 0o644))
	later := filepath.Join(dir, "inc", "later.txt")
	a := tmpl(dir, "a", fmt.Sprintf(`[{{ file %q }}]`, inc))
	b := tmpl(dir, "b", fmt.Sprintf(`<{{ file %q }}>`, later))
	r := run(t, Options{Templates: []config.Template{a, b}, Clients: root(t, srv.Addr)})
	testkit.Eventually(t, "first render", func() bool { return testkit.ReadFile(a.Destination) == "[one]" })
	testkit.Must(t, os.WriteFile(inc, []byte("two"), 0o644))
	testkit.Eventually(t, "re-render after the file changed", func() bool { return testkit.ReadFile(a.Destination) == "[two]" })
	testkit.Must(t, os.WriteFile(later, []byte("here"), 0o644))
	r.clk.StepUntil(t, 200*time.Millisecond, "render once the file exists", func() bool { return testkit.ReadFile(b.Destination) == "<here>" })
}

// A 403 is reported to auth (so that it can log in again) and the template
// retried; with a token that may read, it renders.
func TestPermissionDeniedReported(t *testing.T) {
	_, v2 := kvMounts(t)
	putV2(t, v2, "app", map[string]any{"k": "v"})
	testkit.Must(t, srv.Client.Sys().PutPolicy(v2+"-none", `path "`+v2+`/data/other" { capabilities = ["read"] }`))
	tok, err := srv.Client.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{v2 + "-none"}, NoDefaultPolicy: true})
	testkit.Must(t, err)
	cl := testkit.NewClients(t, srv.Addr, tok.Auth.ClientToken)
	dir := t.TempDir()
	tc := tmpl(dir, "out", fmt.Sprintf(`{{ with secret "%s/app" }}{{ .Data.data.k }}{{ end }}`, v2))
	r := run(t, Options{Templates: []config.Template{tc}, Clients: cl})
	testkit.Eventually(t, "the denial reported", func() bool { return cl.Denied() >= 1 })
	if _, err := os.Stat(tc.Destination); err == nil {
		t.Fatal("rendered without permission")
	}
	cl.SetToken(srv.RootToken)
	r.clk.StepUntil(t, 200*time.Millisecond, "render with the new token", func() bool { return testkit.ReadFile(tc.Destination) == "v" })
}

// A secret that disappears after its first render is asked for again with
// the template's backoff — not in a loop — and the file keeps its content.
// Templates sharing it do not each ask for it.
func TestRefreshFailureBacksOff(t *testing.T) {
	_, v2 := kvMounts(t)
	putV2(t, v2, "gone", map[string]any{"k": "before"})
	proxy := newCounting(t)
	dir := t.TempDir()
	cfg := quick()
	cfg.StaticSecretRenderInterval = 100 * time.Millisecond
	var ts []config.Template
	for i := 0; i < 4; i++ {
		ts = append(ts, tmpl(dir, fmt.Sprint(i), fmt.Sprintf(`{{ with secret "%s/gone" }}{{ .Data.data.k }}{{ end }}`, v2)))
	}
	cfg.RetryMin, cfg.RetryMax = 200*time.Millisecond, 400*time.Millisecond
	r := run(t, Options{Templates: ts, Config: cfg, Clients: root(t, proxy.url)})
	waitReady(t, r.m)
	_, err := srv.Client.Logical().Delete(v2 + "/metadata/gone")
	testkit.Must(t, err)
	r.clk.StepUntil(t, 100*time.Millisecond, "a failed refresh", func() bool { return proxy.count(v2+"/data/gone") >= 3 })
	before := proxy.count(v2 + "/data/gone")
	for i := 0; i < 20; i++ {
		r.clk.Step(t, 100*time.Millisecond)
	}
	// With a 400ms backoff, 2s hold about 5 rounds of one request each; a
	// loop without backoff makes hundreds, one per template per round 20.
	if n := proxy.count(v2+"/data/gone") - before; n > 12 {
		t.Errorf("%d requests for the missing secret in 2s: no backoff", n)
	}
	for i := range ts {
		if got := testkit.ReadFile(ts[i].Destination); got != "before" {
			t.Errorf("template %d = %q after a failed refresh, want the previous content", i, got)
		}
	}
	putV2(t, v2, "gone", map[string]any{"k": "after"})
	for i := range ts {
		r.clk.StepUntil(t, 100*time.Millisecond, "the secret back", func() bool { return testkit.ReadFile(ts[i].Destination) == "after" })
	}
}

// A revoked token takes its leases with it: after the re-login, the lease it
// created is fetched again under the new token; the KV secret is not.
func TestLeasesOfARevokedTokenFetchedAgain(t *testing.T) {
	c := srv.Client
	mount := fmt.Sprintf("ssh-%d", seq.Add(1))
	testkit.Must(t, c.Sys().Mount(mount, &api.MountInput{Type: "ssh", Config: api.MountConfigInput{DefaultLeaseTTL: "1h", MaxLeaseTTL: "1h"}}))
	_, err := c.Logical().Write(mount+"/roles/otp", map[string]any{"key_type": "otp", "default_user": "app", "cidr_list": "127.0.0.0/8"})
	testkit.Must(t, err)
	_, v2 := kvMounts(t)
	putV2(t, v2, "app", map[string]any{"k": "static"})
	token := func() string {
		s, err := c.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{"root"}})
		testkit.Must(t, err)
		return s.Auth.ClientToken
	}
	first := token()
	proxy := newCounting(t)
	cl := testkit.NewClients(t, proxy.url, first)
	dir := t.TempDir()
	otp := tmpl(dir, "otp", fmt.Sprintf(`{{ with secret "%s/creds/otp" "ip=127.0.0.1" }}{{ .LeaseID }}{{ end }}`, mount))
	kv := tmpl(dir, "kv", fmt.Sprintf(`{{ with secret "%s/app" }}{{ .Data.data.k }}{{ end }}`, v2))
	r := run(t, Options{Templates: []config.Template{otp, kv}, Clients: cl})
	waitReady(t, r.m)
	lease := testkit.ReadFile(otp.Destination)
	alive := func(id string) bool {
		_, err := c.Logical().Write("sys/leases/lookup", map[string]any{"lease_id": id})
		return err == nil
	}
	if !alive(lease) {
		t.Fatalf("lease %s not alive after the first render", lease)
	}
	testkit.Must(t, c.Auth().Token().RevokeTree(first))
	// Vault revokes a token's leases in the background.
	testkit.Eventually(t, "the lease revoked with its token", func() bool { return !alive(lease) })
	cl.Relogin(r.clk.Now(), token())
	testkit.Eventually(t, "a live lease of the new token", func() bool {
		now := testkit.ReadFile(otp.Destination)
		return now != lease && alive(now)
	})
	if n := proxy.puts(mount + "/creds/otp"); n != 2 {
		t.Errorf("credentials fetched %d times, want 2", n)
	}
	if n := proxy.count(v2 + "/data/app"); n != 1 {
		t.Errorf("the KV secret was fetched %d times, want 1 (it has no lease)", n)
	}
}

// A secret a template stopped using (its source was edited) is no longer
// refreshed.
func TestSecretDroppedBySourceEditNotRefreshed(t *testing.T) {
	_, v2 := kvMounts(t)
	putV2(t, v2, "old", map[string]any{"k": "old"})
	putV2(t, v2, "new", map[string]any{"k": "new"})
	proxy := newCounting(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "app.tpl")
	testkit.Must(t, os.WriteFile(src, []byte(fmt.Sprintf(`{{ with secret "%s/old" }}{{ .Data.data.k }}{{ end }}`, v2)), 0o644))
	tc := config.Template{Source: src, Destination: filepath.Join(dir, "out"), CreateDestDirs: true}
	cfg := quick()
	cfg.StaticSecretRenderInterval = 100 * time.Millisecond
	r := run(t, Options{Templates: []config.Template{tc}, Config: cfg, Clients: root(t, proxy.url)})
	testkit.Eventually(t, "the first render", func() bool { return testkit.ReadFile(tc.Destination) == "old" })
	r.clk.StepUntil(t, cfg.StaticSecretRenderInterval, "a refresh of the old secret", func() bool { return proxy.count(v2+"/data/old") >= 2 })
	testkit.Must(t, os.WriteFile(src, []byte(fmt.Sprintf(`{{ with secret "%s/new" }}{{ .Data.data.k }}{{ end }}`, v2)), 0o644))
	r.clk.StepUntil(t, cfg.StaticSecretRenderInterval, "the edited source rendered", func() bool { return testkit.ReadFile(tc.Destination) == "new" })
	r.clk.StepUntil(t, cfg.StaticSecretRenderInterval, "a refresh of the new secret", func() bool { return proxy.count(v2+"/data/new") >= 2 })
	before := proxy.count(v2 + "/data/old")
	r.clk.StepUntil(t, cfg.StaticSecretRenderInterval, "more refreshes of the new secret", func() bool { return proxy.count(v2+"/data/new") >= 6 })
	if n := proxy.count(v2+"/data/old") - before; n > 0 {
		t.Errorf("the secret no template uses was fetched %d more times", n)
	}
}
