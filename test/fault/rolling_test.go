package fault

import (
	"strings"
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
	var logins, wrong, early, skipped500 int
	var slowest time.Duration
	for k, i := range order {
		cl.Shutdown(i)
		cl.Restart(t, i)
		if i != leader {
			// Right after its unseal, before the cluster is healthy, the
			// restarted standby comes first: while it knows no active node
			// it answers 500 "active cluster node not found", which proves
			// the OTP was not processed, so the helper asks the next node
			// (once refused with exit 4). A valid OTP is accepted.
			first := []string{cl.Nodes[i].Addr}
			for j, a := range cl.Addrs() {
				if j != i {
					first = append(first, a)
				}
			}
			early1 := helperConfig(t, first, "5s")
			for n := 0; n < 3; n++ {
				code, out := login(t, early1, issueOTP(t, cl.Client(t)))
				logins++
				early++
				if strings.Contains(out, "standby knows no active node") {
					skipped500++
				}
				if code != helperOK {
					wrong++
					t.Errorf("just after restarting standby %d: a valid login exit %d, want 0: %s", i, code, out)
				}
			}
		}
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
	report("rolling restart: %d nodes restarted in turn (active last): %d logins (%d right after a standby's unseal, %d of them past its 500 'no active node'), %d wrong answers; agent file current after each, change→file at most %.1f s",
		len(order), logins, early, skipped500, wrong, slowest.Seconds())
}
