package packaging_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v2"

	"github.com/latchkey/latchkey/pam"
	"github.com/latchkey/latchkey/test/systemdtest"
	"github.com/latchkey/latchkey/test/testbin"
	"github.com/latchkey/latchkey/test/testkit"
	"github.com/latchkey/latchkey/test/vaulttest"
)

// packaging/packer/cloud-init.md's user data, as cloud-init would apply it
// at first boot, under a real systemd (test/systemdtest) with the shipped
// unit enabled and already starting, its Vault (and the metadata service)
// unreachable, as on an instance whose network path is not open yet: both
// configs are written (the agent's too: else it logs in to the image's
// Vault) and load, and each runcmd line returns, the restart included:
// the unit is ready only after its first login (Type=notify,
// TimeoutStartSec=infinity), so a blocking `systemctl restart` held
// cloud-init's final stage for ever. The agent is then restarted and
// still starting.
func TestCloudInitUserData(t *testing.T) {
	root, err := vaulttest.RepoRoot()
	testkit.Must(t, err)
	doc := testkit.ReadFile(filepath.Join(root, "packaging/packer/cloud-init.md"))
	m := regexp.MustCompile("(?s)```yaml\n(#cloud-config\n.*?)```").FindStringSubmatch(doc)
	if m == nil {
		t.Fatal("cloud-init.md has no #cloud-config block")
	}
	var ud struct {
		WriteFiles []struct{ Path, Permissions, Content string } `yaml:"write_files"`
		Runcmd     [][]string                                    `yaml:"runcmd"`
	}
	testkit.Must(t, yaml.UnmarshalStrict([]byte(m[1]), &ud))
	written := map[string]string{}
	for _, f := range ud.WriteFiles {
		written[f.Path] = f.Permissions
	}
	for p, mode := range map[string]string{"/etc/latchkey-ssh-helper.d/config.hcl": "0644", "/etc/latchkey/agent.hcl": "0640"} {
		if written[p] != mode {
			t.Errorf("the user data writes %s with permissions %q, want %q", p, written[p], mode)
		}
	}

	bin := t.TempDir()
	_, err = testbin.Build(bin, "./cmd/latchkey-agent", "./cmd/latchkey-ssh-helper")
	testkit.Must(t, err)
	mc := systemdtest.Boot(t,
		systemdtest.Bind{Src: bin, Dst: "/opt/latchkey"},
		systemdtest.Bind{Src: filepath.Join(root, "systemd/latchkey-agent.service"), Dst: "/etc/systemd/system/latchkey-agent.service"},
		systemdtest.Bind{Src: srv.CACert, Dst: "/etc/latchkey/vault-ca.pem"},
	)
	// The image: the shipped unit (but for the binary's path: /usr is the
	// host's), its config, enabled and, as at boot, starting.
	mc.WriteFile(t, "/etc/systemd/system/latchkey-agent.service.d/test.conf",
		"[Service]\nExecStart=\nExecStart=/opt/latchkey/latchkey-agent -config /etc/latchkey/agent.hcl\n", 0o644)
	mc.WriteFile(t, "/etc/latchkey/agent.hcl", testkit.ReadFile(filepath.Join(root, "packaging/agent/agent.hcl")), 0o640)
	mc.MustRun(t, "systemctl", "daemon-reload")
	mc.MustRun(t, "systemctl", "enable", "latchkey-agent")
	mc.MustRun(t, "systemctl", "start", "--no-block", "latchkey-agent")
	prop := func(p string) string {
		out, _ := mc.Run("systemctl", "show", "-P", p, "latchkey-agent")
		return strings.TrimSpace(out)
	}
	testkit.Eventually(t, "the agent starting", func() bool { return prop("ActiveState") == "activating" && prop("MainPID") != "0" })
	before := prop("InvocationID")

	for _, f := range ud.WriteFiles {
		mode, err := strconv.ParseUint(f.Permissions, 8, 32)
		testkit.Must(t, err)
		mc.WriteFile(t, f.Path, f.Content, os.FileMode(mode))
		if f.Path == "/etc/latchkey-ssh-helper.d/config.hcl" {
			local := filepath.Join(t.TempDir(), "config.hcl")
			// The CA the image holds is the test Vault's, here at its own path.
			testkit.Must(t, os.WriteFile(local, []byte(strings.ReplaceAll(f.Content, "/etc/latchkey/vault-ca.pem", srv.CACert)), 0o644))
			if _, err := pam.LoadConfig(local); err != nil {
				t.Errorf("the helper's config of the user data: %v", err)
			}
		}
	}
	for _, cmd := range ud.Runcmd {
		// cloud-init runs each line as it is, going on after a failure
		// (doctor fails here: Vault is unreachable); the binaries are in
		// /opt/latchkey in the container.
		start := time.Now()
		out, err := mc.RunTimeout(30*time.Second, append([]string{"env", "PATH=/opt/latchkey:/usr/sbin:/usr/bin:/sbin:/bin"}, cmd...)...)
		if strings.Contains(errString(err), "still running") {
			t.Fatalf("runcmd %v did not return in %s (cloud-init's final stage would hang):\n%s", cmd, time.Since(start).Round(time.Second), out)
		}
		if cmd[0] == "latchkey-agent" && err != nil {
			t.Errorf("runcmd %v: %v\n%s", cmd, err, out)
		}
	}
	testkit.Eventually(t, "the agent restarted on the new config", func() bool {
		return prop("InvocationID") != before && prop("ActiveState") == "activating"
	})
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
