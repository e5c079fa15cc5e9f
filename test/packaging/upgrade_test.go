package packaging_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/test/systemdtest"
	"github.com/latchkey/latchkey/test/testkit"
	"github.com/latchkey/latchkey/test/vaulttest"
)

// The agent's post-install script on an upgrade (dpkg: configure OLD-VERSION;
// rpm: 2), deb's and rpm's, run under a real systemd (a container booted by
// test/systemdtest) with the shipped unit: a running agent is restarted, one
// still starting is too, and the script returns at once even though the
// unit (Type=notify, TimeoutStartSec=infinity) never becomes ready, as with
// Vault unreachable, where a blocking restart hung dpkg or rpm for ever; a
// stopped and disabled agent stays stopped and disabled; dpkg's policy-rc.d
// saying 101 (a container build) is obeyed. The next steps are printed
// only for the agent nobody enabled. The agent is /bin/sleep: only the
// unit's states matter here.
func TestAgentPostinstallUpgradeRestarts(t *testing.T) {
	root, err := vaulttest.RepoRoot()
	testkit.Must(t, err)
	m := systemdtest.Boot(t,
		systemdtest.Bind{Src: filepath.Join(root, "packaging/scripts"), Dst: "/opt/latchkey-scripts"},
		systemdtest.Bind{Src: filepath.Join(root, "systemd/latchkey-agent.service"), Dst: "/etc/systemd/system/latchkey-agent.service"},
	)
	m.WriteFile(t, "/etc/latchkey/agent.hcl", "# ConditionPathExists\n", 0o640)
	// This machine's (a Docker image's) policy-rc.d says 101; the container
	// shares its /usr. The deb script runs with one saying 0 unless the case
	// is about 101.
	m.WriteFile(t, "/etc/latchkey-test/policy-ok", "#!/bin/sh\nexit 0\n", 0o755)
	prop := func(p string) string {
		out, _ := m.Run("systemctl", "show", "-P", p, "latchkey-agent.service")
		return strings.TrimSpace(out)
	}
	for _, format := range []struct{ name, args string }{{"deb", "configure 1.0.0"}, {"rpm", "2"}} {
		for _, tc := range []struct {
			name string
			// typ overrides the unit's Type= ("" keeps notify: never ready).
			typ           string
			start, enable bool
			policy101     bool
			wantRestart   bool
		}{
			{name: "running", typ: "simple", start: true, enable: true, wantRestart: true},
			{name: "starting-vault-unreachable", start: true, enable: true, wantRestart: true},
			{name: "stopped-disabled"},
			{name: "running-policy-rc.d-101", typ: "simple", start: true, enable: true, policy101: true},
		} {
			if tc.policy101 && format.name != "deb" {
				continue
			}
			t.Run(format.name+"/"+tc.name, func(t *testing.T) {
				m.MustRun(t, "systemctl", "stop", "latchkey-agent.service")
				m.MustRun(t, "systemctl", "disable", "latchkey-agent.service")
				dropIn := "[Service]\nExecStart=\nExecStart=/bin/sleep infinity\n"
				if tc.typ != "" {
					dropIn += "Type=" + tc.typ + "\n"
				}
				m.WriteFile(t, "/etc/systemd/system/latchkey-agent.service.d/test.conf", dropIn, 0o644)
				m.MustRun(t, "systemctl", "daemon-reload")
				if tc.enable {
					m.MustRun(t, "systemctl", "enable", "latchkey-agent.service")
				}
				if tc.start {
					m.MustRun(t, "systemctl", "start", "--no-block", "latchkey-agent.service")
					want := "active"
					if tc.typ == "" {
						want = "activating"
					}
					for i := 0; prop("ActiveState") != want; i++ {
						if i == 100 {
							t.Fatalf("the agent is %s, want %s", prop("ActiveState"), want)
						}
						time.Sleep(100 * time.Millisecond)
					}
				}
				before := prop("InvocationID")
				script := "sh /opt/latchkey-scripts/" + format.name + "/agent-postinstall.sh " + format.args
				if format.name == "deb" && !tc.policy101 {
					script = "mount --bind /etc/latchkey-test/policy-ok /usr/sbin/policy-rc.d && " + script
				}
				start := time.Now()
				out, err := m.RunTimeout(30*time.Second, "unshare", "--mount", "--propagation", "private", "sh", "-ec", script)
				if err != nil {
					t.Fatalf("postinst (upgrade) after %s: %v\n%s", time.Since(start).Round(time.Second), err, out)
				}
				// The next steps, only while the service is not enabled.
				if tc.enable && out != "" {
					t.Errorf("an upgrade of an enabled agent prints %q", out)
				}
				if !tc.enable && !strings.Contains(out, "latchkey-agent installed. Next steps:") {
					t.Errorf("an upgrade of an agent nobody enabled prints no next steps: %q", out)
				}
				if tc.wantRestart {
					for i := 0; prop("InvocationID") == before; i++ {
						if i == 100 {
							t.Fatalf("the agent (%s) was not restarted", prop("ActiveState"))
						}
						time.Sleep(100 * time.Millisecond)
					}
				} else {
					time.Sleep(time.Second)
					if got := prop("InvocationID"); got != before {
						t.Errorf("the agent was restarted (%s)", prop("ActiveState"))
					}
				}
				wantState, wantEnabled := []string{"inactive"}, "disabled"
				if tc.start {
					wantState = []string{"active", "activating"}
				}
				if tc.enable {
					wantEnabled = "enabled"
				}
				if s := prop("ActiveState"); !slices.Contains(wantState, s) {
					t.Errorf("after the upgrade the agent is %s, want %s", s, wantState)
				}
				if out, _ := m.Run("systemctl", "is-enabled", "latchkey-agent.service"); strings.TrimSpace(out) != wantEnabled {
					t.Errorf("after the upgrade the agent is %q, want %s", strings.TrimSpace(out), wantEnabled)
				}
			})
		}
	}
}
