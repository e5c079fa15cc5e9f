package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/latchkey/latchkey/test/testkit"
	"github.com/latchkey/latchkey/test/vaulttest"
)

// alive fails the test at once if the agent has exited.
func (a *agentProc) alive(t *testing.T) {
	t.Helper()
	select {
	case err := <-a.done:
		a.done <- err
		t.Fatalf("the agent exited: %v", err)
	default:
	}
}

// A SIGHUP that comes while the agent reads its config at start
// (logrotate's postrotate, a configuration run reloading what it just
// started) killed it: Go's default action for SIGHUP ends the process until
// the runner subscribed, and systemd does not restart a unit SIGHUP ended
// (a clean signal to Restart=on-failure). The CLI now subscribes before it
// reads the config; the signals wait and are reloads. A large config
// (about 0.2 s to read) holds the start in that window.
func TestSIGHUPWhileTheConfigLoads(t *testing.T) {
	dir := t.TempDir()
	cfg := rootTokenConfig(t, dir, strings.Repeat("# "+strings.Repeat("x", 1000)+"\n", 30000))
	n := testkit.ListenNotify(t)
	a := startAgent(t, []string{"-config", cfg, "-log-format", "json"}, "VAULT_ADDR="+srv.Addr, "NOTIFY_SOCKET="+n.Path)
	time.Sleep(30 * time.Millisecond) // past the Go runtime's start, into the config's read
	for range 10 {
		a.alive(t)
		a.signal(t, syscall.SIGHUP)
		time.Sleep(10 * time.Millisecond)
	}
	testkit.Eventually(t, "a reload after the start", func() bool {
		a.alive(t)
		return strings.Contains(a.stderr.String(), "reloaded;")
	})
	n.WaitFor(t, "READY=1", 0)
	if code := a.stop(t); code != 0 {
		t.Errorf("exit %d", code)
	}
}

// Ten SIGHUPs within 100 ms while templates render, the config edited
// before each: no crash, one login, every reload applied or queued (none
// refused), and the files end with what the last edit says. A reload that
// replaced the previous one while it looked the kept token up logged
// "kept token: lookup-self failed ... context canceled" as if Vault had
// failed; nothing failed, and nothing is logged.
func TestSIGHUPBurstWhileTemplatesRender(t *testing.T) {
	dir := t.TempDir()
	const mount = "approle-burst"
	c := srv.Client
	srv.MountT(t, "burst-kv", &api.MountInput{Type: "kv", Options: map[string]string{"version": "2"}})
	_, err := c.Logical().Write("burst-kv/data/app", map[string]any{"data": map[string]any{"k": "s3cret-burst"}})
	testkit.Must(t, err)
	testkit.Must(t, c.Sys().PutPolicy("burst", `path "burst-kv/*" { capabilities = ["read", "list"] }
path "sys/internal/ui/mounts/*" { capabilities = ["read"] }`))
	cfg, sink := approleConfig(t, dir, mount, "")
	_, err = c.Logical().Write("auth/"+mount+"/role/web", map[string]any{"token_ttl": "1h", "token_policies": "burst"})
	testkit.Must(t, err)
	base := testkit.ReadFile(cfg)
	dests := []string{filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "c")}
	write := func(v int) {
		var b strings.Builder
		b.WriteString(base)
		for _, d := range dests {
			fmt.Fprintf(&b, "template {\n  contents = \"v%d {{ with secret \\\"burst-kv/app\\\" }}{{ .Data.data.k }}{{ end }}\"\n  destination = %q\n}\n", v, d)
		}
		// Written whole and renamed in, as an editor or a config run does.
		testkit.WriteFile(t, cfg+".new", b.String())
		testkit.Must(t, os.Rename(cfg+".new", cfg))
	}
	write(0)
	// Each read of the secret takes 200 ms: the burst lands while renders
	// are in flight.
	proxy := vaulttest.NewCountingProxy(t, srv.Addr)
	proxy.OnRequest = func(r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v1/burst-kv/") {
			time.Sleep(200 * time.Millisecond)
		}
	}
	n := testkit.ListenNotify(t)
	a := startAgent(t, []string{"-config", cfg, "-log-format", "json"}, "VAULT_ADDR="+proxy.URL, "NOTIFY_SOCKET="+n.Path)
	a.logged(t, `"msg":"logged in"`, 1)
	for v := 1; v <= 10; v++ {
		write(v)
		a.signal(t, syscall.SIGHUP)
		time.Sleep(10 * time.Millisecond)
	}
	for _, d := range dests {
		testkit.Eventually(t, d+" from the last config", func() bool {
			a.alive(t)
			return testkit.ReadFile(d) == "v10 s3cret-burst"
		})
	}
	// Every reload is done, the last one ready: READY=1 after the last
	// RELOADING=1.
	testkit.Eventually(t, "every reload's end", func() bool {
		log := a.stderr.String()
		return strings.Count(log, "SIGHUP: reloading") == strings.Count(log, "reloaded;")
	})
	msgs := n.Messages()
	last := 0
	for i, m := range msgs {
		if strings.HasPrefix(m, "RELOADING=1") {
			last = i
		}
	}
	n.WaitFor(t, "READY=1", last)
	log := a.stderr.String()
	if k := proxy.Count("PUT", "/v1/auth/"+mount+"/login"); k != 1 {
		t.Errorf("%d logins, want 1", k)
	}
	for _, bad := range []string{"reload refused", "panic", "lookup-self failed"} {
		if strings.Contains(log, bad) {
			t.Errorf("%q in the log:\n%s", bad, log)
		}
	}
	if testkit.ReadFile(sink) == "" {
		t.Errorf("sink %s empty", sink)
	}
	if code := a.stop(t); code != 0 {
		t.Errorf("exit %d", code)
	}
}
