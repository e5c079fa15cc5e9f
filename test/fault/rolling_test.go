package fault

import (
	"testing"
	"time"

	"github.com/latchkey/latchkey/test/vaulttest"
)

// A rolling upgrade: each node in turn is stopped (SIGTERM, as an upgrade
// does) and started again on its data, the active one last. Between
// restarts, once the cluster is healthy, a valid OTP is accepted and a
// random one refused, and a changed secret reaches the agent's file.
func TestFaultRollingRestart(t *testing.T) {
	cl := vaulttest.StartCluster(t, 3)
	c := cl.Client(t)
	agentSetup(t, c)
	sshRole(t, c)
	a := startAgent(t, c, "addresses = "+hclList(cl.Addrs()))
	a.waitContent(t, val(1), 30*time.Second)
	cfg := helperConfig(t, cl.Addrs(), "5s")

	leader := cl.Leader()
	order := []int{}
	for i := range cl.Nodes {
		if i != leader {
			order = append(order, i)
		}
	}
	order = append(order, leader)
	var logins, wrong int
	var slowest time.Duration
	for k, i := range order {
		cl.Shutdown(i)
		cl.Restart(t, i)
		if err := cl.WaitHealthy(60 * time.Second); err != nil {
			t.Fatal(err)
		}
		for j, otp := range []string{issueOTP(t, cl.Client(t)), randomOTP(k)} {
			code, out := login(t, cfg, otp)
			logins++
			if want := []int{helperOK, helperDenied}[j]; code != want {
				wrong++
				t.Errorf("after restarting node %d: login %d exit %d, want %d: %s", i, j, code, want, out)
			}
		}
		writeKV(t, cl, val(10+k))
		slowest = max(slowest, a.waitContent(t, val(10+k), 30*time.Second))
	}
	report("rolling restart: %d nodes restarted in turn (active last): %d logins, %d wrong answers; agent file current after each, change→file at most %.1f s",
		len(order), logins, wrong, slowest.Seconds())
}
