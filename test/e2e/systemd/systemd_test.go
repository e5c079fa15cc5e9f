// Package systemd_test runs the shipped unit under a real systemd (a
// container booted by test/systemdtest): Type=notify readiness after the
// first render, RuntimeDirectory kept across restarts and stops, reload,
// the exposure figure of the loaded unit, a check_command (sshd -t) run
// inside the unit's system-call filter, and the helper's audit records in
// a real journald. Skipped when not root.
package systemd_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/latchkey/latchkey/test/systemdtest"
	"github.com/latchkey/latchkey/test/testbin"
	"github.com/latchkey/latchkey/test/testkit"
	"github.com/latchkey/latchkey/test/testkit/secretscan"
	"github.com/latchkey/latchkey/test/vaulttest"
)

var srv *vaulttest.Server

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "test/e2e/systemd: SKIPPED: booting systemd-nspawn needs root; CI runs it as root")
		os.Exit(0)
	}
	vaulttest.Main(m, vaulttest.Spec{Into: &srv, Options: vaulttest.Options{TLS: true}})
}

func TestUnitUnderSystemd(t *testing.T) {
	root, err := vaulttest.RepoRoot()
	testkit.Must(t, err)
	bin := t.TempDir()
	bins, err := testbin.Build(bin, "./cmd/latchkey-agent", "./cmd/latchkey-ssh-helper")
	testkit.Must(t, err)

	// Vault: an approle whose token reads one KV secret.
	c := srv.Client
	testkit.Must(t, c.Sys().EnableAuthWithOptions("approle", &api.EnableAuthOptions{Type: "approle"}))
	t.Cleanup(func() { c.Sys().DisableAuth("approle") })
	testkit.Must(t, c.Sys().PutPolicy("app", `path "secret/data/app" { capabilities = ["read"] }`))
	_, err = c.Logical().Write("auth/approle/role/web", map[string]any{"token_policies": "app", "token_ttl": "1h"})
	testkit.Must(t, err)
	rid, err := c.Logical().Read("auth/approle/role/web/role-id")
	testkit.Must(t, err)
	sid, err := c.Logical().Write("auth/approle/role/web/secret-id", nil)
	testkit.Must(t, err)
	_, err = c.Logical().Write("secret/data/app", map[string]any{"data": map[string]any{"password": "s3cr3t-" + strconv.Itoa(os.Getpid())}})
	testkit.Must(t, err)

	m := systemdtest.Boot(t,
		systemdtest.Bind{Src: bins[0], Dst: "/opt/latchkey/latchkey-agent"},
		systemdtest.Bind{Src: bins[1], Dst: "/opt/latchkey/latchkey-ssh-helper"},
		systemdtest.Bind{Src: filepath.Join(root, "systemd/latchkey-agent.service"), Dst: "/etc/systemd/system/latchkey-agent.service"},
		systemdtest.Bind{Src: srv.CACert, Dst: "/etc/latchkey/vault-ca.pem"},
	)
	// The shipped unit as it is, but for the binary's path (/usr is the
	// host's, read-only).
	m.WriteFile(t, "/etc/systemd/system/latchkey-agent.service.d/test.conf",
		"[Service]\nExecStart=\nExecStart=/opt/latchkey/latchkey-agent -config /etc/latchkey/agent.hcl\n", 0o644)
	m.WriteFile(t, "/etc/latchkey/role-id", rid.Data["role_id"].(string), 0o600)
	m.WriteFile(t, "/etc/latchkey/secret-id", sid.Data["secret_id"].(string), 0o600)
	m.WriteFile(t, "/etc/latchkey/agent.hcl", fmt.Sprintf(`vault {
  address = %q
  ca_cert = "/etc/latchkey/vault-ca.pem"
}
auto_auth {
  method {
    type = "approle"
    config = {
      role_id_file_path = "/etc/latchkey/role-id"
      secret_id_file_path = "/etc/latchkey/secret-id"
      remove_secret_id_file_after_reading = false
    }
  }
  sink {
    type = "file"
    config = {
      path = "/run/latchkey/token"
      mode = 0600
    }
  }
}
template {
  contents    = "{{ with secret \"secret/data/app\" }}{{ .Data.data.password }}{{ end }}"
  destination = "/etc/app/password"
  perms       = 0600
}
template {
  contents    = "x"
  destination = "/etc/app/marker"
  exec {
    command = ["nice", "-n", "5", "touch", "/etc/app/nice-ran"]
  }
}
ssh {
  trusted_user_ca_keys = "/etc/ssh/trusted-user-ca-keys.pem"
  pinned_user_ca_keys  = "/etc/latchkey/pinned-user-ca.pub"
  check_command        = ["sshd", "-t"]
}
`, srv.Addr), 0o640)
	m.MustRun(t, "mkdir", "-p", "/etc/app")
	// The README's ssh stanza: check_command is `sshd -t`, which runs under
	// the unit's sandbox (it calls setgroups, in @privileged) and must pass
	// there, or every round is rolled back and READY=1 never comes. Its
	// sshd_config names the trust file, so the check reads the new one.
	m.WriteFile(t, "/etc/ssh/sshd_config", "HostKey /etc/ssh/ssh_host_ed25519_key\nTrustedUserCAKeys /etc/ssh/trusted-user-ca-keys.pem\nUsePAM no\n", 0o644)
	m.MustRun(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", "/etc/ssh/ssh_host_ed25519_key")
	m.MustRun(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "pinned", "-f", "/root/pinned-user-ca")
	m.MustRun(t, "cp", "/root/pinned-user-ca.pub", "/etc/latchkey/pinned-user-ca.pub")
	// sshd -t wants its privilege separation user and directory (the
	// container's /etc is empty: openssh-server's postinst never ran there).
	m.MustRun(t, "useradd", "--system", "--no-create-home", "--home-dir", "/run/sshd", "--shell", "/usr/sbin/nologin", "sshd")
	m.MustRun(t, "mkdir", "-p", "/run/sshd")
	m.MustRun(t, "sshd", "-t") // outside the unit: the check itself passes
	m.MustRun(t, "systemctl", "daemon-reload")

	// Type=notify: `systemctl start` returns once READY=1 came, which the
	// agent sends only after the first login and render.
	// timeout(1) inside the container: a start that never gets READY=1 fails
	// here instead of leaving systemctl running (Run's own limit kills
	// nsenter only, whose child keeps the output open).
	if out, err := m.Run("timeout", "50", "systemctl", "start", "latchkey-agent"); err != nil {
		j, _ := m.Run("journalctl", "-u", "latchkey-agent", "--no-pager", "-o", "verbose")
		t.Fatalf("systemctl start: %v\n%s\njournal:\n%s", err, out, j)
	}
	if got := m.MustRun(t, "cat", "/etc/app/password"); !strings.HasPrefix(got, "s3cr3t-") {
		t.Errorf("template not rendered when start returned: %q", got)
	}
	token := m.MustRun(t, "cat", "/run/latchkey/token")
	if token == "" {
		t.Fatal("no token in the sink when start returned")
	}
	pinned := strings.Fields(m.MustRun(t, "cat", "/etc/latchkey/pinned-user-ca.pub"))
	if got := m.MustRun(t, "cat", "/etc/ssh/trusted-user-ca-keys.pem"); len(pinned) < 2 || !strings.Contains(got, pinned[1]) {
		t.Errorf("the trust file when start returned lacks the pinned key:\n%s", got)
	}
	if j, _ := m.Run("journalctl", "-u", "latchkey-agent", "--no-pager", "-o", "verbose"); strings.Contains(j, "check_command failed") {
		t.Errorf("check_command (sshd -t) failed under the unit:\n%s", j)
	}
	// doctor sees the running service's lock on the state directory as its own.
	if out, _ := m.Run("/opt/latchkey/latchkey-agent", "doctor", "-config", "/etc/latchkey/agent.hcl"); !strings.Contains(out,
		"OK   state lock /var/lib/latchkey/agent.lock: held by latchkey-agent.service (pid "+strings.TrimSpace(m.MustRun(t, "systemctl", "show", "-p", "MainPID", "--value", "latchkey-agent"))+")") {
		t.Errorf("doctor on the running service's state directory:\n%s", out)
	}
	// A filtered call fails (EPERM) rather than killing the command: nice's
	// setpriority is in @resources, and nice then runs its command anyway.
	testkit.Eventually(t, "the template's command under nice ran", func() bool {
		_, err := m.Run("test", "-e", "/etc/app/nice-ran")
		return err == nil
	})

	// The sandbox of the loaded unit, as systemd measures it.
	out := m.MustRun(t, "systemd-analyze", "security", "--no-pager", "latchkey-agent.service")
	mm := regexp.MustCompile(`Overall exposure level for latchkey-agent.service: ([0-9.]+)`).FindStringSubmatch(out)
	if mm == nil {
		t.Fatalf("no exposure figure:\n%s", out)
	}
	t.Logf("loaded unit: exposure %s", mm[1])
	if f, _ := strconv.ParseFloat(mm[1], 64); f > 2.0 {
		t.Errorf("exposure of the loaded unit %s, want at most 2.0", mm[1])
	}

	// reload is a SIGHUP: same process, still active.
	pid := m.MustRun(t, "systemctl", "show", "-p", "MainPID", "--value", "latchkey-agent")
	m.MustRun(t, "systemctl", "reload", "latchkey-agent")
	testkit.Eventually(t, "the agent logs the reload", func() bool {
		j, _ := m.Run("journalctl", "-u", "latchkey-agent", "--no-pager", "-o", "cat")
		return strings.Contains(j, "reloading the configuration")
	})
	if got := m.MustRun(t, "systemctl", "show", "-p", "MainPID", "--value", "latchkey-agent"); got != pid {
		t.Errorf("reload changed the main pid from %s to %s", pid, got)
	}

	// RuntimeDirectoryPreserve=yes: the sink survives a restart and a stop.
	m.MustRun(t, "systemctl", "restart", "latchkey-agent")
	if _, err := m.Run("test", "-s", "/run/latchkey/token"); err != nil {
		t.Errorf("the token sink is gone after a restart")
	}
	m.MustRun(t, "systemctl", "stop", "latchkey-agent")
	if _, err := m.Run("test", "-s", "/run/latchkey/token"); err != nil {
		t.Errorf("the token sink is gone after a stop (RuntimeDirectoryPreserve)")
	}

	// A stop during a template's command (KillMode=mixed): systemd signals
	// the agent alone, which stops the command and records it as cut
	// short; the next start runs it again to its end.
	conf := m.MustRun(t, "cat", "/etc/latchkey/agent.hcl")
	m.WriteFile(t, "/etc/latchkey/agent.hcl", conf+`template {
  contents    = "slow"
  destination = "/etc/app/slow"
  exec {
    command = ["sh", "-c", "echo start >> /etc/app/slow-runs; sleep $(cat /etc/app/slow-sleep); echo end >> /etc/app/slow-runs"]
    timeout = "2m"
  }
}
`, 0o640)
	m.WriteFile(t, "/etc/app/slow-sleep", "60\n", 0o644)
	m.MustRun(t, "systemctl", "start", "--no-block", "latchkey-agent")
	testkit.Eventually(t, "the slow command started", func() bool {
		out, _ := m.Run("cat", "/etc/app/slow-runs")
		return out == "start\n"
	})
	if out, err := m.Run("timeout", "30", "systemctl", "stop", "latchkey-agent"); err != nil {
		t.Fatalf("systemctl stop during a command: %v\n%s", err, out)
	}
	if got := m.MustRun(t, "systemctl", "show", "-p", "Result", "--value", "latchkey-agent"); strings.TrimSpace(got) != "success" {
		t.Errorf("stop during a command: Result=%s, want success", got)
	}
	if out := m.MustRun(t, "sh", "-c", "ls /var/lib/latchkey"); !strings.Contains(out, "template-command-") {
		t.Errorf("no pending command record after the stop; state dir holds %q", out)
	}
	j, _ := m.Run("journalctl", "-u", "latchkey-agent", "--no-pager", "-o", "cat")
	if !strings.Contains(j, "it runs again at the next start") {
		t.Errorf("the stop did not record the command as cut short:\n%s", j)
	}
	m.WriteFile(t, "/etc/app/slow-sleep", "0\n", 0o644)
	m.MustRun(t, "systemctl", "start", "--no-block", "latchkey-agent")
	testkit.Eventually(t, "the cut-short command ran again to its end", func() bool {
		out, _ := m.Run("cat", "/etc/app/slow-runs")
		return out == "start\nstart\nend\n"
	})
	testkit.Eventually(t, "the record removed", func() bool {
		out, _ := m.Run("sh", "-c", "ls /var/lib/latchkey")
		return !strings.Contains(out, "template-command-")
	})
	m.MustRun(t, "systemctl", "stop", "latchkey-agent")
	m.WriteFile(t, "/etc/latchkey/agent.hcl", conf, 0o640)

	// A template outside the unit's ReadWritePaths= (/opt is read-only under
	// ProtectSystem=strict). Run by hand, as an image builder runs it, doctor
	// fails it and names the drop-in, although the directory is writable
	// outside the unit; the agent under the unit says what the read-only file
	// system is; with the drop-in doctor passes it and the agent writes it.
	m.MustRun(t, "mkdir", "-p", "/opt/app")
	m.WriteFile(t, "/etc/latchkey/agent.hcl", conf+"template {\n  contents    = \"opt\"\n  destination = \"/opt/app/conf\"\n}\n", 0o640)
	doctor := func() (string, error) {
		return m.Run("/opt/latchkey/latchkey-agent", "doctor", "-config", "/etc/latchkey/agent.hcl")
	}
	out, err = doctor()
	if err == nil || !strings.Contains(out, "FAIL template /opt/app/conf: /opt/app is read-only under latchkey-agent.service (ProtectSystem=strict)") ||
		!strings.Contains(out, "add ReadWritePaths=/opt/app in a drop-in (systemctl edit latchkey-agent)") {
		t.Errorf("doctor on a template outside ReadWritePaths=: %v\n%s", err, out)
	}
	if !strings.Contains(out, "OK   template /etc/app/password") && !strings.Contains(out, "OK template /etc/app/password") {
		t.Errorf("doctor fails a template the unit may write:\n%s", out)
	}
	m.MustRun(t, "systemctl", "start", "--no-block", "latchkey-agent")
	sandboxed := "write /opt/app/conf: create a temporary file in /opt/app: read-only file system (under systemd: a directory outside the unit's ReadWritePaths= is read-only with ProtectSystem=strict)"
	for i := 0; ; i++ {
		j, _ := m.Run("journalctl", "-u", "latchkey-agent", "--no-pager", "-o", "verbose")
		if strings.Contains(j, sandboxed) {
			break
		}
		if i == 100 {
			t.Fatalf("the journal lacks %q:\n%s", sandboxed, j)
		}
		time.Sleep(100 * time.Millisecond)
	}
	m.MustRun(t, "systemctl", "stop", "latchkey-agent")
	m.WriteFile(t, "/etc/systemd/system/latchkey-agent.service.d/opt.conf", "[Service]\nReadWritePaths=/opt/app\n", 0o644)
	m.MustRun(t, "systemctl", "daemon-reload")
	if out, err := doctor(); strings.Contains(out, "FAIL template /opt/app/conf") || !strings.Contains(out, "/opt/app") {
		t.Errorf("doctor with ReadWritePaths=/opt/app: %v\n%s", err, out)
	}
	if out, err := m.Run("timeout", "50", "systemctl", "start", "latchkey-agent"); err != nil {
		t.Fatalf("start with ReadWritePaths=/opt/app: %v\n%s", err, out)
	}
	if got := m.MustRun(t, "cat", "/opt/app/conf"); got != "opt" {
		t.Errorf("/opt/app/conf = %q", got)
	}
	m.MustRun(t, "systemctl", "stop", "latchkey-agent")
	m.MustRun(t, "rm", "/etc/systemd/system/latchkey-agent.service.d/opt.conf")
	m.WriteFile(t, "/etc/latchkey/agent.hcl", conf, 0o640)

	// A hardening drop-in's ReadOnlyPaths= inside the shipped
	// ReadWritePaths=/etc: doctor fails the template under it, as the agent
	// under the unit finds the directory read-only.
	m.WriteFile(t, "/etc/systemd/system/latchkey-agent.service.d/ro.conf", "[Service]\nReadOnlyPaths=/etc/app\n", 0o644)
	m.MustRun(t, "systemctl", "daemon-reload")
	if out, err := doctor(); err == nil || !strings.Contains(out, "FAIL template /etc/app/password: /etc/app is read-only under latchkey-agent.service (ReadOnlyPaths=/etc/app)") {
		t.Errorf("doctor with ReadOnlyPaths=/etc/app: %v\n%s", err, out)
	}
	// Gone, the file must be written at the start (an unchanged one is not).
	m.MustRun(t, "rm", "/etc/app/password")
	m.MustRun(t, "systemctl", "start", "--no-block", "latchkey-agent")
	for i := 0; ; i++ {
		j, _ := m.Run("journalctl", "-u", "latchkey-agent", "--no-pager", "-o", "verbose")
		if strings.Contains(j, "create a temporary file in /etc/app: read-only file system") {
			break
		}
		if i == 100 {
			t.Fatalf("the journal lacks /etc/app read-only:\n%s", j)
		}
		time.Sleep(100 * time.Millisecond)
	}
	m.MustRun(t, "systemctl", "stop", "latchkey-agent")
	m.MustRun(t, "rm", "/etc/systemd/system/latchkey-agent.service.d/ro.conf")
	m.MustRun(t, "systemctl", "daemon-reload")

	// The watchdog restarts a wedged agent (SIGSTOP: no WATCHDOG=1 any
	// more); a short WatchdogSec keeps the test quick.
	m.WriteFile(t, "/etc/systemd/system/latchkey-agent.service.d/watchdog.conf", "[Service]\nWatchdogSec=2s\nRestartSec=1s\n", 0o644)
	m.MustRun(t, "systemctl", "daemon-reload")
	m.MustRun(t, "systemctl", "start", "latchkey-agent")
	wedged := strings.TrimSpace(m.MustRun(t, "systemctl", "show", "-p", "MainPID", "--value", "latchkey-agent"))
	m.MustRun(t, "kill", "-STOP", wedged)
	testkit.Eventually(t, "the watchdog restarts the agent", func() bool {
		pid, _ := m.Run("systemctl", "show", "-p", "MainPID", "--value", "latchkey-agent")
		state, _ := m.Run("systemctl", "is-active", "latchkey-agent")
		pid = strings.TrimSpace(pid)
		return pid != wedged && pid != "0" && strings.TrimSpace(state) == "active"
	})
	if j, _ := m.Run("journalctl", "-u", "latchkey-agent", "--no-pager"); !strings.Contains(j, "Watchdog timeout") {
		t.Errorf("no watchdog timeout in the journal:\n%s", j)
	}
	m.MustRun(t, "systemctl", "stop", "latchkey-agent")

	// An agent started by hand beside the service holds the state
	// directory: doctor names it, the service exits 6 (not in
	// RestartPreventExitStatus=) and systemd restarts it until the other has
	// stopped, when it starts. The shipped RestartSec=5s: with the
	// watchdog drop-in's 1s the default start limit (5 in 10s) ends the
	// retries.
	m.MustRun(t, "rm", "/etc/systemd/system/latchkey-agent.service.d/watchdog.conf")
	m.MustRun(t, "systemctl", "daemon-reload")
	byHand := strings.TrimSpace(m.MustRun(t, "sh", "-c", "/opt/latchkey/latchkey-agent -config /etc/latchkey/agent.hcl >/root/by-hand.log 2>&1 & echo $!"))
	held := "FAIL state lock /var/lib/latchkey/agent.lock: held by pid " + byHand + " (latchkey-agent), not by latchkey-agent.service: the service exits 6"
	testkit.Eventually(t, "doctor names the agent started by hand", func() bool {
		out, _ := m.Run("/opt/latchkey/latchkey-agent", "doctor", "-config", "/etc/latchkey/agent.hcl")
		return strings.Contains(out, held)
	})
	restarts := func() int {
		n, _ := m.Run("systemctl", "show", "-p", "NRestarts", "--value", "latchkey-agent")
		i, _ := strconv.Atoi(strings.TrimSpace(n))
		return i
	}
	before := restarts()
	m.MustRun(t, "systemctl", "start", "--no-block", "latchkey-agent")
	testkit.Eventually(t, "the service exits 6 and is restarted", func() bool {
		j, _ := m.Run("journalctl", "-u", "latchkey-agent", "--no-pager", "-o", "cat")
		return restarts() >= before+2 && strings.Contains(j, "status=6/") && strings.Contains(j, "(pid "+byHand+")")
	})
	m.MustRun(t, "kill", byHand)
	testkit.Eventually(t, "the service runs once the other agent stopped", func() bool {
		state, _ := m.Run("systemctl", "is-active", "latchkey-agent")
		main, _ := m.Run("systemctl", "show", "-p", "MainPID", "--value", "latchkey-agent")
		return strings.TrimSpace(state) == "active" && strings.TrimSpace(main) != byHand
	})
	m.MustRun(t, "systemctl", "stop", "latchkey-agent")

	// The helper's audit record in a real journald.
	m.WriteFile(t, "/etc/latchkey-ssh-helper.d/config.hcl", fmt.Sprintf(
		"vault_addr = %q\nca_cert = \"/etc/latchkey/vault-ca.pem\"\nallowed_roles = \"web\"\naudit = \"auto\"\n", srv.Addr), 0o644)
	// Refused (an OTP Vault never issued); the record is what is checked.
	_, _ = m.Run("env", "PAM_USER=alice", "PAM_TYPE=auth", "PAM_SERVICE=sshd", "PAM_RHOST=192.0.2.7", "sh", "-c",
		"echo 11111111-2222-3333-4444-555555555555 | /opt/latchkey/latchkey-ssh-helper -config /etc/latchkey-ssh-helper.d/config.hcl")
	testkit.Eventually(t, "the audit record in journald", func() bool {
		j, _ := m.Run("journalctl", "-t", "latchkey-ssh-helper", "--no-pager", "-o", "verbose")
		return strings.Contains(j, "refused otp login for alice from 192.0.2.7 via sshd") &&
			strings.Contains(j, "LATCHKEY_RESULT=failure") && strings.Contains(j, "PAM_USER=alice")
	})
	// The whole journal of the container (the agent's start, reload and the
	// helper's record) holds no secret the kit saw: the password, tokens.
	j, _ = m.Run("journalctl", "--no-pager", "-o", "verbose")
	secretscan.Scan(t, "the container's journal", j)
	if _, err := m.Run("test", "-e", "/var/log/latchkey-ssh-helper.log"); err == nil {
		t.Errorf("the fallback file was written although journald took the record")
	}
}
