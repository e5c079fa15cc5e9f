package vaultclient_test

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/vaultclient"
	"github.com/latchkey/latchkey/test/testkit"
	"github.com/latchkey/latchkey/test/vaulttest"
)

// A pooled HTTP/2 connection whose node died silently (behind a load
// balancer that black-holes its flows) is given up within about one
// request timeout: the next request dials anew and reaches a live node,
// as over HTTP/1.1, instead of every request timing out on the dead
// connection until TCP gives up on it (a quarter of an hour).
func TestDeadHTTP2ConnectionGivenUp(t *testing.T) {
	const timeout = 2 * time.Second
	proxy := vaulttest.NewTCPProxy(t, strings.TrimPrefix(secure.Addr, "https://"))
	addr := "https://" + strings.TrimPrefix(proxy.Addr, "http://")
	c, err := vaultclient.New(vaultclient.Config{Address: addr, CACert: secure.CACert, Timeout: timeout, MaxRetries: vaultclient.Int(0)})
	testkit.Must(t, err)
	resp, err := c.ReadRaw(context.Background(), "sys/health")
	testkit.Must(t, err)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Fatalf("the client spoke %s to Vault over TLS, want HTTP/2", resp.Proto)
	}

	proxy.Stall()
	stalled := time.Now()
	var failed int
	for {
		_, err := c.Health(context.Background())
		if err == nil {
			break
		}
		failed++
		if time.Since(stalled) > 8*timeout {
			t.Fatalf("%d requests failed in %s after the connection went silent (last: %v); want a new connection within about one timeout (%s)",
				failed, time.Since(stalled).Round(time.Second), err, timeout)
		}
	}
	if took := time.Since(stalled); took > 3*timeout {
		t.Errorf("a request succeeded %s after the connection went silent, want within about one timeout (%s)", took.Round(100*time.Millisecond), timeout)
	}
	t.Logf("%d requests failed, the next succeeded %s after the connection went silent", failed, time.Since(stalled).Round(100*time.Millisecond))
}
