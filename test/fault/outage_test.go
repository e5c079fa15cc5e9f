package fault

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/test/testkit"
	"github.com/latchkey/latchkey/test/vaulttest"
)

// outageLength is how long every node stays stopped: 6 s in CI,
// LATCHKEY_FAULT_OUTAGE (a duration) to try longer ones.
func outageLength(t *testing.T) time.Duration {
	if v := os.Getenv("LATCHKEY_FAULT_OUTAGE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("LATCHKEY_FAULT_OUTAGE=%q: %v", v, err)
		}
		return d
	}
	return 6 * time.Second
}

// Every node is frozen (SIGSTOP: connections are accepted, nothing
// answers). The helper refuses every login within its deadline; the agent
// keeps its file untouched and renders the current secret once Vault is
// back, without a restart.
func TestFaultOutage(t *testing.T) {
	cl := vaulttest.StartCluster(t, 3)
	c := cl.Client(t)
	agentSetup(t, c)
	sshRole(t, c)
	var valid []string
	for i := 0; i < 5; i++ {
		valid = append(valid, issueOTP(t, c))
	}
	// The agent reaches each node through a counting proxy.
	var proxies []*vaulttest.CountingProxy
	var proxied []string
	for _, nd := range cl.Nodes {
		p := vaulttest.NewCountingProxy(t, nd.Addr)
		proxies, proxied = append(proxies, p), append(proxied, p.URL)
	}
	a := startAgent(t, c, "addresses = "+hclList(proxied))
	a.waitContent(t, val(1), 30*time.Second)
	cfg := helperConfig(t, cl.Addrs(), "2s")
	outage := outageLength(t)

	failedBefore := strings.Count(a.log.String(), "refresh failed")
	for i := range cl.Nodes {
		cl.Stop(i)
	}
	stopped := time.Now()
	for _, p := range proxies {
		p.Reset()
	}
	var logins, refused int
	var slowest time.Duration
	for i := 0; time.Since(stopped) < outage; i++ {
		otp := randomOTP(i)
		if i < len(valid) {
			otp = valid[i]
		}
		start := time.Now()
		code, out := login(t, cfg, otp)
		slowest = max(slowest, time.Since(start))
		logins++
		if code != helperOK {
			refused++
		} else {
			t.Errorf("login %d accepted with every node stopped: %s", i, out)
		}
		if got := a.content(); got != val(1) {
			t.Fatalf("during the outage the destination holds %q, want the last good v1", got)
		}
	}
	failed := strings.Count(a.log.String(), "refresh failed") - failedBefore
	down := time.Since(stopped)
	perMinute := float64(failed) / down.Minutes()
	requests := 0
	for _, p := range proxies {
		requests += p.Total()
	}
	// The bound: a frozen node never answers, so each request attempt
	// lasts its address's share of the 10 s request timeout (3.3 s with
	// three addresses; the retry backoffs — template 250 ms doubling,
	// request retries 1–1.5 s — are shorter), and the agent's three loops
	// that ask Vault (templates, token renewal, token check) each have one
	// attempt out at a time: at most 3 × (down / 3.3 s + 1) requests.
	attempt := 10 * time.Second / time.Duration(len(cl.Nodes))
	bound := 3 * (int(down/attempt) + 1)
	if requests > bound {
		t.Errorf("%d requests to Vault during %.1f s of outage, want at most %d", requests, down.Seconds(), bound)
	}
	for i := range cl.Nodes {
		cl.Cont(i)
	}
	resumed := time.Now()
	if err := cl.WaitHealthy(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	writeKV(t, cl, val(2))
	recovery := a.waitContent(t, val(2), 60*time.Second)
	report("outage: %s with every node stopped: %d/%d logins refused, slowest %.1f s (deadline 2 s); agent kept its file, %d requests (%.0f a minute, bound %d), %.0f failed refreshes a minute; back %.1f s after Vault, change→file %.1f s",
		outage, refused, logins, slowest.Seconds(), requests, float64(requests)/down.Minutes(), bound, perMinute, time.Since(resumed).Seconds(), recovery.Seconds())
}

// A TCP proxy in front of Vault delays, black-holes and resets
// connections: the helper answers within its deadline each time, the
// agent's 2 s request timeout fires and it recovers once Vault answers.
func TestFaultHungVault(t *testing.T) {
	srv := vaulttest.StartT(t, vaulttest.Options{})
	c := srv.Client
	agentSetup(t, c)
	sshRole(t, c)
	proxy := vaulttest.NewTCPProxy(t, strings.TrimPrefix(srv.Addr, "http://"))
	cfg := helperConfig(t, []string{proxy.Addr}, "3s")
	a := startAgent(t, c, "address = "+`"`+proxy.Addr+`"`+"\ntimeout = \"2s\"\nretry {\n  num_retries = 1\n}")
	a.waitContent(t, val(1), 30*time.Second)

	type outcome struct {
		mode     string
		code     int
		took     time.Duration
		wantCode int
	}
	var outcomes []outcome
	try := func(mode string, m vaulttest.ProxyMode, delay time.Duration, want int) {
		proxy.SetMode(m)
		proxy.SetDelay(delay)
		proxy.Cut()
		otp := issueOTP(t, c)
		start := time.Now()
		code, out := login(t, cfg, otp)
		outcomes = append(outcomes, outcome{mode, code, time.Since(start), want})
		if code != want {
			t.Errorf("%s: helper exit %d, want %d: %s", mode, code, want, out)
		}
	}
	try("delayed 200 ms", vaulttest.Pass, 200*time.Millisecond, helperOK)
	try("reset", vaulttest.Reset, 0, helperVault)
	// The agent meets the black hole at its next refresh (every second)
	// and gives up on it at its request timeout.
	const timedOut = "context deadline exceeded"
	failedBefore := strings.Count(a.log.String(), timedOut)
	holed := time.Now()
	try("black-holed", vaulttest.BlackHole, 0, helperVault)
	testkit.Eventually(t, "an agent request timing out on the black hole", func() bool {
		return strings.Count(a.log.String(), timedOut) > failedBefore
	})
	timeoutFired := time.Since(holed)
	if got := a.content(); got != val(1) {
		t.Fatalf("while Vault hung the destination holds %q, want v1", got)
	}
	proxy.SetMode(vaulttest.Pass)
	proxy.SetDelay(0)
	proxy.Cut()
	remember(val(2))
	_, err := c.Logical().Write("kv/app", map[string]any{"v": val(2)})
	testkit.Must(t, err)
	recovery := a.waitContent(t, val(2), 30*time.Second)

	var parts []string
	for _, o := range outcomes {
		parts = append(parts, fmt.Sprintf("%s exit %d in %.1f s", o.mode, o.code, o.took.Seconds()))
	}
	report("hung vault: helper (deadline 3 s) %s; agent request timeout (2 s) fired %.1f s after the black hole, change→file %.1f s after it cleared",
		strings.Join(parts, ", "), timeoutFired.Seconds(), recovery.Seconds())
}
