package main

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/latchkey/latchkey/test/testkit"
	"github.com/latchkey/latchkey/test/vaulttest"
)

// agentProc is a started agent whose log the test reads.
type agentProc struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan error
}

// startAgent starts the built agent with args and env (VAULT_ADDR first
// unless env sets it); it is killed when the test ends.
func startAgent(t *testing.T, args []string, env ...string) *agentProc {
	t.Helper()
	cmd := agentCmdEnv(args, env...)
	a := &agentProc{cmd: cmd, stderr: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stderr = a.stderr
	testkit.ScanOutput(t, cmd)
	testkit.Must(t, cmd.Start())
	go func() { a.done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-a.done
		if t.Failed() {
			t.Logf("agent log:\n%s", a.stderr.String())
		}
	})
	return a
}

func (a *agentProc) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	testkit.Must(t, a.cmd.Process.Signal(sig))
}

// logged waits until the log holds s n times in all.
func (a *agentProc) logged(t *testing.T, s string, n int) {
	t.Helper()
	testkit.Eventually(t, fmt.Sprintf("%d× %q in the log", n, s), func() bool {
		return strings.Count(a.stderr.String(), s) >= n
	})
}

// stop sends SIGTERM and returns the exit code.
func (a *agentProc) stop(t *testing.T) int {
	t.Helper()
	a.signal(t, syscall.SIGTERM)
	select {
	case err := <-a.done:
		a.done <- err
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		testkit.Must(t, err)
		return 0
	case <-time.After(30 * time.Second):
		t.Fatal("agent did not stop on SIGTERM")
		return -1
	}
}

// countLines is how many lines the file holds (a command appends one per run).
func countLines(p string) int {
	return strings.Count(testkit.ReadFile(p), "\n")
}

// pkiMount mounts a PKI engine with a root CA and a role "web", and gives
// the approle role at mount a policy that may issue from it.
func pkiMount(t *testing.T, pki, approleMount string) {
	t.Helper()
	c := srv.Client
	srv.MountT(t, pki, &api.MountInput{Type: "pki", Config: api.MountConfigInput{MaxLeaseTTL: "87600h"}})
	_, err := c.Logical().Write(pki+"/root/generate/internal", map[string]any{"common_name": "test root", "ttl": "87600h"})
	testkit.Must(t, err)
	_, err = c.Logical().Write(pki+"/roles/web", map[string]any{"allowed_domains": "example.com", "allow_subdomains": true, "max_ttl": "2h"})
	testkit.Must(t, err)
	testkit.Must(t, c.Sys().PutPolicy(pki, fmt.Sprintf(`path "%s/issue/web" { capabilities = ["update"] }`, pki)))
	if approleMount == "" { // a root token's agent
		return
	}
	_, err = c.Logical().Write("auth/"+approleMount+"/role/web", map[string]any{"token_ttl": "1h", "token_policies": pki})
	testkit.Must(t, err)
}

// Defect: after a SIGHUP that kept the auth config, a revoked token could
// not be replaced: the reload had built a new approle method that no
// longer knew the secret id whose file it had removed. The method (and
// its secret id) now survives every reload that keeps it.
func TestApproleSecretIDSurvivesSIGHUP(t *testing.T) {
	dir := t.TempDir()
	cfg, sink := approleConfig(t, dir, "approle-hup", "")
	// Short-lived tokens: a revoked one is noticed at its next renewal.
	_, err := srv.Client.Logical().Write("auth/approle-hup/role/web", map[string]any{"token_ttl": "3s", "token_max_ttl": "1h"})
	testkit.Must(t, err)
	a := startAgent(t, []string{"-config", cfg}, "VAULT_ADDR="+srv.Addr)
	testkit.Eventually(t, "the first token", func() bool { return testkit.ReadFile(sink) != "" })
	first := testkit.ReadFile(sink)
	if _, err := os.Stat(filepath.Join(dir, "secret-id")); !os.IsNotExist(err) {
		t.Fatalf("the secret id file was not removed after reading (%v)", err)
	}
	for i := 1; i <= 2; i++ {
		a.signal(t, syscall.SIGHUP)
		a.logged(t, "reloaded; auth unchanged, keeping the token", i)
	}
	if strings.Count(a.stderr.String(), "token written to sink") != 1 {
		t.Errorf("a reload logged the unchanged sink as written")
	}
	testkit.Must(t, srv.Client.Auth().Token().RevokeOrphan(first))
	testkit.Eventually(t, "a new token after the revocation", func() bool {
		tok := testkit.ReadFile(sink)
		return tok != "" && tok != first
	})
	// A reload that changes the auth settings but not the approle method
	// (here: the Vault address moves into the file) logs in again with the
	// secret id read at start.
	second := testkit.ReadFile(sink)
	testkit.WriteFile(t, cfg, fmt.Sprintf("vault {\n  address = %q\n}\n", srv.Addr)+testkit.ReadFile(cfg))
	a.signal(t, syscall.SIGHUP)
	a.logged(t, "reloaded; auth changed, logging in again", 1)
	testkit.Eventually(t, "a new login after the auth change", func() bool {
		tok := testkit.ReadFile(sink)
		return tok != "" && tok != second
	})
	if strings.Contains(a.stderr.String(), "no earlier secret id") {
		t.Error("a re-login after a reload lost the secret id")
	}
	if code := a.stop(t); code != 0 {
		t.Errorf("exit %d", code)
	}
}

// A reload is built completely before the running instance is touched.
// A refused one (a template source that no longer parses) changes
// nothing: no certificate is issued, no destination rewritten, no command
// run; and the agent is never left without a running instance, also when
// the configuration it runs could not be built again.
func TestRefusedReloadChangesNothing(t *testing.T) {
	dir := t.TempDir()
	cfg, _ := approleConfig(t, dir, "approle-refuse", "")
	pkiMount(t, "pki-refuse", "approle-refuse")
	base := testkit.ReadFile(cfg)
	runs := filepath.Join(dir, "runs")
	tmpl := func(n int) (src, dest, stanza string) {
		src, dest = filepath.Join(dir, fmt.Sprintf("cert%d.tmpl", n)), filepath.Join(dir, fmt.Sprintf("cert%d.pem", n))
		testkit.WriteFile(t, src, `{{ with pkiCert "pki-refuse/issue/web" "common_name=a.example.com" "ttl=1h" }}{{ .Cert }}{{ end }}`)
		stanza = fmt.Sprintf("template {\n  source = %q\n  destination = %q\n  command = \"echo run >> %s\"\n}\n", src, dest, runs)
		return src, dest, stanza
	}
	src1, dest1, t1 := tmpl(1)
	testkit.WriteFile(t, cfg, base+t1)
	proxy := vaulttest.NewCountingProxy(t, srv.Addr)
	issued := func() int {
		return proxy.Count("PUT", "/v1/pki-refuse/issue/web") + proxy.Count("POST", "/v1/pki-refuse/issue/web")
	}
	a := startAgent(t, []string{"-config", cfg}, "VAULT_ADDR="+proxy.URL)
	testkit.Eventually(t, "the first certificate", func() bool { return testkit.ReadFile(dest1) != "" && countLines(runs) == 1 })
	cert1 := testkit.ReadFile(dest1)

	// 1. The running template's source breaks: the reload is refused.
	testkit.WriteFile(t, src1, "{{ with pkiCert")
	a.signal(t, syscall.SIGHUP)
	a.logged(t, "reload refused; the running configuration is unchanged", 1)
	if strings.Contains(a.stderr.String(), "templates unchanged, still rendering") {
		t.Error("a refused reload was logged as a reload")
	}
	// 2. A new configuration that builds, while the running one no longer
	// would: the reload goes through.
	_, dest2, t2 := tmpl(2)
	testkit.WriteFile(t, cfg, base+t2)
	a.signal(t, syscall.SIGHUP)
	a.logged(t, "reloaded; auth unchanged, keeping the token", 1)
	testkit.Eventually(t, "the second template", func() bool { return testkit.ReadFile(dest2) != "" && countLines(runs) == 2 })
	// 3. A broken configuration file: refused, the agent runs on.
	testkit.WriteFile(t, cfg, "auto_auth {\n")
	a.signal(t, syscall.SIGHUP)
	a.logged(t, "reload refused; the running configuration is unchanged", 2)
	// Let anything a refusal might wrongly have started happen.
	time.Sleep(time.Second)
	if n := issued(); n != 2 {
		t.Errorf("%d certificates issued, want 2 (one per template)", n)
	}
	if n := countLines(runs); n != 2 {
		t.Errorf("commands ran %d times, want 2", n)
	}
	if testkit.ReadFile(dest1) != cert1 {
		t.Error("the refused reload rewrote the first destination")
	}
	if code := a.stop(t); code != 0 {
		t.Errorf("exit %d after the refused reloads", code)
	}
}

// Defect: a refused login was replayed by the client's retries
// (vault { retry { num_retries } }, meant for templates): a signed cloud
// login is then refused for its reused nonce, and Vault's reason was lost
// behind a deadline. A login attempt is sent once and Vault's answer is
// logged, and in STATUS, at once.
func TestRefusedLoginIsSentOnce(t *testing.T) {
	const reason = "sts: SignatureNonceUsed: the nonce was used before"
	for name, exitOnErr := range map[string]bool{"exit_on_err": true, "retrying": false} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			mount := "approle-once-" + name
			cfg, _ := approleConfig(t, dir, mount, "vault {\n  retry {\n    num_retries = 12\n  }\n}\n")
			// A long backoff: the second attempt cannot come during the test.
			opts := "    min_backoff = \"30s\"\n    max_backoff = \"1m\"\n"
			if exitOnErr {
				opts += "    exit_on_err = true\n"
			}
			testkit.WriteFile(t, cfg, strings.Replace(testkit.ReadFile(cfg), "    config = {\n", opts+"    config = {\n", 1))
			var logins atomic.Int32
			target, err := url.Parse(srv.Addr)
			testkit.Must(t, err)
			front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/v1/auth/"+mount+"/login" {
					logins.Add(1)
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusInternalServerError)
					fmt.Fprintf(w, `{"errors":[%q]}`, reason)
					return
				}
				vaulttest.Forward(w, r, target)
			}))
			t.Cleanup(front.Close)
			n := testkit.ListenNotify(t)
			a := startAgent(t, []string{"-config", cfg}, "VAULT_ADDR="+front.URL, "NOTIFY_SOCKET="+n.Path)
			if exitOnErr {
				var exitErr error
				select {
				case exitErr = <-a.done:
					a.done <- exitErr
				case <-time.After(60 * time.Second):
					t.Fatal("exit_on_err: still running")
				}
				var ee *exec.ExitError
				if !errors.As(exitErr, &ee) || ee.ExitCode() != exitAuth {
					t.Errorf("exit %v, want %d", exitErr, exitAuth)
				}
			} else {
				i := n.WaitFor(t, "STATUS=login failed, retrying in", 0)
				status := n.Messages()[i]
				if !strings.Contains(status, reason) {
					t.Errorf("STATUS lacks Vault's reason: %q", status)
				}
			}
			if got := logins.Load(); got != 1 {
				t.Errorf("the login was sent %d times, want once", got)
			}
			if !strings.Contains(a.stderr.String(), reason) {
				t.Errorf("Vault's reason is not in the log")
			}
		})
	}
}

// Defect: render -dry-run logged in as the agent does, deleting the
// approle secret id file, issued a real certificate, and found an unknown
// -template only after the login. A dry run has no side effect unless
// -issue says so, and says what it issued.
func TestRenderDryRunHasNoSideEffects(t *testing.T) {
	dir := t.TempDir()
	cfg, _ := approleConfig(t, dir, "approle-dry", "")
	pkiMount(t, "pki-dry", "approle-dry")
	kvDest, pkiDest := filepath.Join(dir, "plain.txt"), filepath.Join(dir, "cert.pem")
	testkit.WriteFile(t, cfg, testkit.ReadFile(cfg)+fmt.Sprintf(`template {
  contents    = "plain"
  destination = %q
}
template {
  contents    = "{{ with pkiCert \"pki-dry/issue/web\" \"common_name=a.example.com\" }}{{ .Cert }}{{ end }}"
  destination = %q
}
`, kvDest, pkiDest))
	proxy := vaulttest.NewCountingProxy(t, srv.Addr)
	secretID := filepath.Join(dir, "secret-id")
	logins := func() int { return proxy.Count("PUT", "/v1/auth/approle-dry/login") }
	issued := func() int { return proxy.Count("PUT", "/v1/pki-dry/issue/web") }
	for _, tc := range []struct {
		name           string
		args           []string
		code           int
		logins, issued int
		stderr         string
	}{
		{"unknown template: usage, before any login", []string{"-template", "nope", "-dry-run"}, exitUsage, 0, 0, "no such template"},
		{"plain template", []string{"-template", kvDest, "-dry-run"}, exitOK, 1, 0, ""},
		{"pkiCert refused without -issue", []string{"-template", pkiDest, "-dry-run"}, exitUsage, 2, 0, "add -issue"},
		{"pkiCert with -issue, said", []string{"-template", pkiDest, "-dry-run", "-issue"}, exitOK, 3, 1, "issued vault.pki(pki-dry/issue/web)"},
		{"-issue without -dry-run", []string{"-template", pkiDest, "-issue"}, exitUsage, 3, 1, "-issue goes with -dry-run"},
	} {
		cmd := agentCmdEnv(append([]string{"render", "-config", cfg}, tc.args...), "VAULT_ADDR="+proxy.URL)
		var stderr syncBuffer
		cmd.Stderr = &stderr
		if code := exitCode(t, cmd); code != tc.code {
			t.Errorf("%s: exit %d, want %d\n%s", tc.name, code, tc.code, stderr.String())
		}
		if logins() != tc.logins || issued() != tc.issued {
			t.Errorf("%s: %d logins and %d certificates so far, want %d and %d", tc.name, logins(), issued(), tc.logins, tc.issued)
		}
		if !strings.Contains(stderr.String(), tc.stderr) {
			t.Errorf("%s: stderr lacks %q:\n%s", tc.name, tc.stderr, stderr.String())
		}
		if testkit.ReadFile(secretID) == "" {
			t.Fatalf("%s: the dry run consumed the secret id file", tc.name)
		}
	}
	for _, p := range []string{kvDest, pkiDest} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("a dry run wrote %s (%v)", p, err)
		}
	}
	// With a valid certificate at the destination (the agent ran), a dry
	// run previews pkiCert without issuing.
	cmd := agentCmdEnv([]string{"render", "-config", cfg, "-template", pkiDest}, "VAULT_ADDR="+proxy.URL)
	if code := exitCode(t, cmd); code != exitOK || issued() != 2 {
		t.Fatalf("render without -dry-run: exit %d, %d certificates", code, issued())
	}
	testkit.NewSecretID(t, srv.Client, "approle-dry", secretID) // the render above consumed it
	cmd = agentCmdEnv([]string{"render", "-config", cfg, "-template", pkiDest, "-dry-run"}, "VAULT_ADDR="+proxy.URL)
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if code := exitCode(t, cmd); code != exitOK || issued() != 2 {
		t.Errorf("dry run over a valid certificate: exit %d, %d certificates, want 0 and 2\n%s", code, issued(), stderr.String())
	}
}

// Defect: a certificate issued with secret "pki/issue/..." (a write, not
// pkiCert) was issued again at every static_secret_render_interval. It is
// refreshed by the certificate's life instead.
func TestCertificateWriteRefreshedByItsLife(t *testing.T) {
	dir := t.TempDir()
	cfg, _ := approleConfig(t, dir, "approle-certwrite", "template_config {\n  static_secret_render_interval = \"1s\"\n}\n")
	pkiMount(t, "pki-certwrite", "approle-certwrite")
	dest, runs := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "runs")
	testkit.WriteFile(t, cfg, testkit.ReadFile(cfg)+fmt.Sprintf(`template {
  contents    = "{{ with secret \"pki-certwrite/issue/web\" \"common_name=a.example.com\" \"ttl=2h\" }}{{ .Data.certificate }}{{ end }}"
  destination = %q
  command     = "echo run >> %s"
}
`, dest, runs))
	proxy := vaulttest.NewCountingProxy(t, srv.Addr)
	a := startAgent(t, []string{"-config", cfg}, "VAULT_ADDR="+proxy.URL)
	testkit.Eventually(t, "the certificate", func() bool { return countLines(runs) == 1 })
	// Several static intervals go by.
	time.Sleep(3 * time.Second)
	if n := proxy.Count("PUT", "/v1/pki-certwrite/issue/web"); n != 1 {
		t.Errorf("%d certificates issued in 3 static intervals, want 1", n)
	}
	if n := countLines(runs); n != 1 {
		t.Errorf("the command ran %d times, want 1", n)
	}
	a.stop(t)
}

// Defect: a second -config file setting only template_config {
// exit_on_retry_failure } reset the first file's
// static_secret_render_interval to its default (5m). Keys merge one by one.
func TestSecondConfigFileKeepsTheFirstsTemplateConfig(t *testing.T) {
	dir := t.TempDir()
	srv.MountT(t, "merge-kv", &api.MountInput{Type: "kv", Options: map[string]string{"version": "2"}})
	put := func(v string) {
		_, err := srv.Client.Logical().Write("merge-kv/data/app", map[string]any{"data": map[string]any{"k": v}})
		testkit.Must(t, err)
	}
	put("one")
	cfg, _ := approleConfig(t, dir, "approle-merge", "template_config {\n  static_secret_render_interval = \"1s\"\n}\n")
	testkit.Must(t, srv.Client.Sys().PutPolicy("merge", `path "merge-kv/*" { capabilities = ["read"] }
path "sys/internal/ui/mounts/*" { capabilities = ["read"] }`))
	_, err := srv.Client.Logical().Write("auth/approle-merge/role/web", map[string]any{"token_ttl": "1h", "token_policies": "merge"})
	testkit.Must(t, err)
	dest := filepath.Join(dir, "app.txt")
	testkit.WriteFile(t, cfg, testkit.ReadFile(cfg)+fmt.Sprintf("template {\n  contents = \"{{ with secret \\\"merge-kv/app\\\" }}{{ .Data.data.k }}{{ end }}\"\n  destination = %q\n}\n", dest))
	second := filepath.Join(dir, "second.hcl")
	testkit.WriteFile(t, second, "template_config {\n  exit_on_retry_failure = true\n}\n")
	a := startAgent(t, []string{"-config", cfg, "-config", second}, "VAULT_ADDR="+srv.Addr)
	testkit.Eventually(t, "the first render", func() bool { return testkit.ReadFile(dest) == "one" })
	put("two")
	testkit.Eventually(t, "the change seen within the first file's 1s interval", func() bool { return testkit.ReadFile(dest) == "two" })
	a.stop(t)
}

// Defect: a reload that added or removed one template restarted all of
// them, issuing their certificates again and running their commands.
// Unchanged templates keep rendering across any reload.
func TestReloadAddingATemplateKeepsTheOthers(t *testing.T) {
	dir := t.TempDir()
	cfg, _ := approleConfig(t, dir, "approle-add", "")
	pkiMount(t, "pki-add", "approle-add")
	base := testkit.ReadFile(cfg)
	stanza := func(n int) string {
		return fmt.Sprintf(`template {
  contents    = "{{ with secret \"pki-add/issue/web\" \"common_name=%d.example.com\" \"ttl=2h\" }}{{ .Data.certificate }}{{ end }}"
  destination = %q
  command     = "echo run >> %s"
}
`, n, filepath.Join(dir, fmt.Sprintf("cert%d.pem", n)), filepath.Join(dir, fmt.Sprintf("runs%d", n)))
	}
	runs := func(n int) int { return countLines(filepath.Join(dir, fmt.Sprintf("runs%d", n))) }
	testkit.WriteFile(t, cfg, base+stanza(1))
	proxy := vaulttest.NewCountingProxy(t, srv.Addr)
	issued := func() int { return proxy.Count("PUT", "/v1/pki-add/issue/web") }
	a := startAgent(t, []string{"-config", cfg}, "VAULT_ADDR="+proxy.URL)
	testkit.Eventually(t, "the first template", func() bool { return runs(1) == 1 })
	// Add a template, then remove it again.
	testkit.WriteFile(t, cfg, base+stanza(1)+stanza(2))
	a.signal(t, syscall.SIGHUP)
	testkit.Eventually(t, "the added template", func() bool { return runs(2) == 1 })
	testkit.WriteFile(t, cfg, base+stanza(1))
	a.signal(t, syscall.SIGHUP)
	a.logged(t, "reloaded; auth unchanged, keeping the token", 2)
	time.Sleep(time.Second) // let a wrongly restarted template show
	if n := issued(); n != 2 {
		t.Errorf("%d certificates issued, want 2 (one per template)", n)
	}
	if n := runs(1); n != 1 {
		t.Errorf("the unchanged template's command ran %d times, want 1", n)
	}
	a.stop(t)
}

// latchkey { login_splay }: the first login waits a random part of the
// splay, saying so in the log and in STATUS=, and asks nothing of Vault
// meanwhile; SIGTERM ends the wait at once (exit 0, nothing written), and
// after the wait the agent logs in and writes its sink as usual.
func TestLoginSplay(t *testing.T) {
	tests := map[string]struct {
		splay string
		term  bool // SIGTERM during the wait
	}{
		"SIGTERM while waiting": {splay: "10m", term: true},
		"logs in after it":      {splay: "1s"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			mount := "approle-splay-" + strings.ToLower(strings.Fields(name)[0])
			cfg, sink := approleConfig(t, dir, mount, fmt.Sprintf("latchkey {\n  login_splay = %q\n}\n", tc.splay))
			proxy := vaulttest.NewCountingProxy(t, srv.Addr)
			n := testkit.ListenNotify(t)
			a := startAgent(t, []string{"-config", cfg}, "VAULT_ADDR="+proxy.URL, "NOTIFY_SOCKET="+n.Path)
			i := n.WaitFor(t, "STATUS=waiting ", 0)
			if want := "before logging in (login_splay " + tc.splay; !strings.Contains(n.Messages()[i], want) {
				t.Errorf("STATUS = %q, want it to hold %q", n.Messages()[i], want)
			}
			a.logged(t, "waiting before the first login (login_splay)", 1)
			if !tc.term {
				n.WaitFor(t, "READY=1", i)
				if testkit.ReadFile(sink) == "" {
					t.Error("sink empty after READY=1")
				}
				if got := proxy.Count("PUT", "/v1/auth/"+mount+"/login"); got != 1 {
					t.Errorf("%d logins, want 1", got)
				}
				if code := a.stop(t); code != 0 {
					t.Errorf("exit %d after SIGTERM, want 0", code)
				}
				return
			}
			time.Sleep(500 * time.Millisecond)
			// stop gives up after 30 s, well inside a 10 m splay.
			if code := a.stop(t); code != 0 {
				t.Errorf("exit %d after SIGTERM, want 0", code)
			}
			if got := proxy.Counts(); len(got) != 0 {
				t.Errorf("requests to Vault during the splay: %v", got)
			}
			if _, err := os.Stat(sink); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("sink after a stop during the splay: %v", err)
			}
		})
	}
}
