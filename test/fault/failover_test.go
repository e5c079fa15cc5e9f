package fault

import (
	"fmt"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey/latchkey/test/vaulttest"
)

// settled reports whether a node other than old is active and every
// running node names it as the leader: from then on no login may fail.
func settled(cl *vaulttest.Cluster, old int) bool {
	l := cl.Leader()
	if l < 0 || l == old {
		return false
	}
	for i, nd := range cl.Nodes {
		if i == old {
			continue
		}
		ld, err := nd.Client.Sys().Leader()
		if err != nil || ld.LeaderAddress != cl.Nodes[l].Addr {
			return false
		}
	}
	return true
}

// The active node dies during a stream of logins through the real helper
// with every node in vault_addrs: valid OTPs and random ones interleaved.
// No random OTP is ever accepted, and once a new leader is settled no valid
// one is refused.
func TestFaultFailoverLogins(t *testing.T) {
	cl := vaulttest.StartCluster(t, 3)
	sshRole(t, cl.Client(t))
	var valid []string
	for i := 0; i < 10; i++ {
		valid = append(valid, issueOTP(t, cl.Client(t)))
	}
	cfg := helperConfig(t, cl.Addrs(), "5s")
	old := cl.Leader()
	var elected atomic.Bool
	var attempted, accepted, during, wronglyRefused, wronglyAccepted, after int
	var slowest time.Duration
	for i := 0; i < 400 && after < 20; i++ {
		if i == 4 {
			cl.Kill(old)
			go func() {
				for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
					if settled(cl, old) {
						elected.Store(true)
						return
					}
				}
			}()
		}
		isAfter := elected.Load()
		if isAfter {
			after++
		}
		otp, good := randomOTP(i), i%2 == 0
		if good {
			if len(valid) == 0 {
				if !isAfter {
					// Nothing left to send until an active node can issue more.
					time.Sleep(100 * time.Millisecond)
					continue
				}
				valid = append(valid, issueOTP(t, cl.Client(t)))
			}
			otp, valid = valid[0], valid[1:]
		}
		attempted++
		start := time.Now()
		code, out := login(t, cfg, otp)
		slowest = max(slowest, time.Since(start))
		if strings.Contains(out, otp) {
			t.Errorf("login %d: the helper's output holds the OTP", i)
		}
		switch {
		case !good && code == helperOK:
			wronglyAccepted++
		case good && code == helperOK:
			accepted++
		case good && isAfter:
			wronglyRefused++
			t.Logf("login %d after the election refused (exit %d): %s", i, code, out)
		case good:
			during++
		}
		if code != helperOK && code != helperDenied && code != helperVault {
			t.Errorf("login %d: exit %d: %s", i, code, out)
		}
	}
	if !elected.Load() {
		t.Fatal("no new leader settled within 60 s of killing the active node")
	}
	report("failover logins: %d attempted, %d accepted, %d valid refused during the election, %d wrongly refused after it, %d wrongly accepted; slowest %.1f s (deadline 5 s)",
		attempted, accepted, during, wronglyRefused, wronglyAccepted, slowest.Seconds())
	if wronglyAccepted != 0 {
		t.Errorf("%d random OTPs accepted", wronglyAccepted)
	}
	if wronglyRefused != 0 {
		t.Errorf("%d valid OTPs refused after the new leader settled", wronglyRefused)
	}
}

// The agent, pointed at a standby with every address listed, renews its
// token and re-reads a KV secret (every second) while the active node dies.
// The failover costs at most the election plus one refresh interval (and
// slack well under the 10 s request timeout it used to cost on top), and
// while it lasts the agent says so in its log and in STATUS=, once each way.
//
// A second agent without request retries (vault { retry { num_retries = -1
// } }) meets the election with failed refreshes: the template's
// error-and-retry path must bring every later change to its file too (a
// refresh left unscheduled after an error would leave the file stale for
// ever: seen once on an old branch).
func TestFaultFailoverAgent(t *testing.T) {
	const refresh = time.Second // startAgent's static_secret_render_interval
	const slack = 6 * time.Second
	cl := vaulttest.StartCluster(t, 3)
	agentSetup(t, cl.Client(t))
	sb := cl.Standby()
	if sb < 0 {
		t.Fatal("no standby")
	}
	addrs := []string{cl.Nodes[sb].Addr}
	for i, a := range cl.Addrs() {
		if i != sb {
			addrs = append(addrs, a)
		}
	}
	vault := fmt.Sprintf("address = %q\naddresses = %s", addrs[0], hclList(addrs))
	a := startAgent(t, cl.Client(t), vault)
	b := startAgent(t, cl.Client(t), vault+"\nretry {\n  num_retries = -1\n}")
	a.waitContent(t, val(1), 30*time.Second)
	b.waitContent(t, val(1), 30*time.Second)
	failedBefore := len(a.logLines("refresh failed"))
	bFailedBefore := len(b.logLines("refresh failed"))
	statusFrom := a.notify.Count()
	old := cl.Leader()
	cl.Kill(old)
	killed := time.Now()
	cl.WaitLeader(t, old, 30*time.Second)
	election := time.Since(killed)
	writeKV(t, cl, val(2))
	changeToFile := a.waitContent(t, val(2), 30*time.Second)
	b.waitContent(t, val(2), 30*time.Second)
	if changeToFile > refresh+slack {
		t.Errorf("change→file %.1f s after the election, want at most one refresh interval (%s) + %s", changeToFile.Seconds(), refresh, slack)
	}
	// The token (ttl 8 s) is renewed or replaced across the failover: a
	// second change a token lifetime later still arrives.
	time.Sleep(9 * time.Second)
	writeKV(t, cl, val(3))
	second := a.waitContent(t, val(3), 30*time.Second)
	b.waitContent(t, val(3), 30*time.Second)

	missed := len(a.logLines("refresh failed")) - failedBefore
	bFailed := len(b.logLines("refresh failed")) - bFailedBefore
	if bFailed == 0 {
		t.Errorf("the agent without retries had no failed refresh during the failover: its error path was not exercised")
	}
	// Visible while it lasted: one line and one STATUS= each way.
	down, back := a.logLines("vault unreachable: "), a.logLines("vault reachable again: ")
	if len(down) == 0 || len(back) == 0 {
		t.Errorf("log lines: %d 'vault unreachable', %d 'vault reachable again'; want both", len(down), len(back))
	}
	var downStatus, backStatus int
	for _, s := range a.statuses(statusFrom) {
		switch {
		case strings.HasPrefix(s, "vault unreachable: "):
			downStatus++
			if !strings.Contains(s, "; retrying") {
				t.Errorf("STATUS %q does not say it retries", s)
			}
		case downStatus > 0:
			backStatus++
		}
	}
	if downStatus == 0 || backStatus == 0 {
		t.Errorf("STATUS= during the failover: %d unreachable, %d after it; want both: %q", downStatus, backStatus, a.statuses(statusFrom))
	}
	unreachable := "?"
	if len(back) > 0 {
		if m := regexp.MustCompile(`after ([0-9.]+m?s)`).FindStringSubmatch(back[len(back)-1]); m != nil {
			unreachable = m[1]
		}
	}
	for _, line := range append(a.logLines("refresh failed"), append(down, back...)...) {
		t.Log(line)
	}
	report("failover agent: election %.1f s, change→file %.1f s after it (bound: refresh %s + %s), %.1f s a token life later; unreachable %s (logged %d/%d, STATUS %d/%d); renders missed %d; no-retry agent: %d failed refreshes, every change arrived",
		election.Seconds(), changeToFile.Seconds(), refresh, slack, second.Seconds(), unreachable, len(down), len(back), downStatus, backStatus, missed, bFailed)
}
