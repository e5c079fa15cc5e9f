package fault

import (
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/test/testkit"
	"github.com/latchkey/latchkey/test/vaulttest"
)

// The agent's one pooled HTTP/2 connection (Vault over TLS) goes silent,
// as behind a load balancer that black-holes the flows of a node that
// died, while new connections reach a live node: the agent gives the
// connection up within about one request timeout and a change reaches the
// file, instead of every request timing out on the dead connection.
func TestFaultStalledConnection(t *testing.T) {
	srv := vaulttest.StartT(t, vaulttest.Options{TLS: true})
	c := srv.Client
	agentSetup(t, c)
	proxy := vaulttest.NewTCPProxy(t, strings.TrimPrefix(srv.Addr, "https://"))
	addr := "https://" + strings.TrimPrefix(proxy.Addr, "http://")
	a := startAgent(t, c, "address = \""+addr+"\"\nca_cert = \""+srv.CACert+"\"\ntimeout = \"2s\"\nretry {\n  num_retries = 1\n}")
	a.waitContent(t, val(1), 30*time.Second)

	proxy.Stall()
	stalled := time.Now()
	remember(val(2))
	_, err := c.Logical().Write("kv/app", map[string]any{"v": val(2)})
	testkit.Must(t, err)
	// One refresh interval (1 s), one request timeout on the dead
	// connection (2 s) and a retry's wait (1–1.5 s), with room for a
	// loaded machine.
	took := a.waitContent(t, val(2), 30*time.Second)
	if took > 10*time.Second {
		t.Errorf("the change reached the file %s after the connection went silent, want within 10 s", took.Round(100*time.Millisecond))
	}
	report("stalled connection: the agent's HTTP/2 connection black-holed (request timeout 2 s), change→file %.1f s after it", time.Since(stalled).Seconds())
}
