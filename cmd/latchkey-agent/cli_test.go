package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	"golang.org/x/sys/unix"

	"github.com/latchkey/latchkey/test/testbin"
	"github.com/latchkey/latchkey/test/testkit"
	"github.com/latchkey/latchkey/test/testkit/secretscan"
	"github.com/latchkey/latchkey/test/vaulttest"
)

var (
	srv *vaulttest.Server
	bin string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "latchkey-agent-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bins, err := testbin.Build(dir, "./cmd/latchkey-agent")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	bin = bins[0]
	srv, err = vaulttest.Start(vaulttest.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	srv.Stop()
	os.RemoveAll(dir)
	os.Exit(secretscan.Finish(code, os.Stderr))
}

// approleConfig sets up an approle mount and returns an agent config (no
// vault stanza: the address comes from VAULT_ADDR) writing sink.
func approleConfig(t *testing.T, dir, mount, extra string) (cfgPath, sink string) {
	t.Helper()
	roleID, secretID := testkit.AppRole(t, srv.Client, mount, dir, map[string]any{"token_ttl": "1h"})
	sink = filepath.Join(dir, "token")
	cfgPath = filepath.Join(dir, "agent.hcl")
	testkit.WriteFile(t, cfgPath, fmt.Sprintf(`%s
latchkey {
  state_dir = %q
}
auto_auth {
  method "approle" {
    mount_path = "auth/%s"
    config = {
      role_id_file_path   = %q
      secret_id_file_path = %q
    }
  }
  sink "file" {
    config = {
      path = %q
    }
  }
}
`, extra, filepath.Join(dir, "state"), mount, roleID, secretID, sink))
	return cfgPath, sink
}

// rootTokenConfig writes the test Vault's root token to dir/root-token
// and returns dir/agent.hcl: auto_auth by that token file, state_dir in
// dir, then extra (templates, an ssh stanza). No vault stanza: the address
// comes from VAULT_ADDR.
func rootTokenConfig(t *testing.T, dir, extra string) string {
	t.Helper()
	rootToken := filepath.Join(dir, "root-token")
	testkit.WriteFile(t, rootToken, srv.RootToken)
	cfg := filepath.Join(dir, "agent.hcl")
	testkit.WriteFile(t, cfg, fmt.Sprintf(`auto_auth {
  method "token_file" {
    config = {
      token_file_path = %q
    }
  }
}
latchkey {
  state_dir = %q
}
`, rootToken, filepath.Join(dir, "state"))+extra)
	return cfg
}

func agentCmd(args []string, env ...string) *exec.Cmd {
	return agentCmdEnv(args, append([]string{"VAULT_ADDR=" + srv.Addr}, env...)...)
}

// agentCmdEnv is agentCmd with env only (no VAULT_ADDR unless given).
func agentCmdEnv(args []string, env ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	cmd.Env = append([]string{"PATH=/usr/bin:/bin"}, env...)
	// Should the test binary die (a timeout), the agent dies with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// exitCode runs cmd and returns its exit code.
func exitCode(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	testkit.ScanOutput(t, cmd)
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0
}

func TestSystemdNotifyWatchdogReloadAndStop(t *testing.T) {
	dir := t.TempDir()
	cfg, sink := approleConfig(t, dir, "approle-notify", fmt.Sprintf("pid_file = %q", filepath.Join(dir, "pid")))
	n := testkit.ListenNotify(t)
	var stderr bytes.Buffer
	cmd := agentCmd([]string{"-config", cfg, "-log-format", "json"}, "NOTIFY_SOCKET="+n.Path, "WATCHDOG_USEC=500000")
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("agent stderr:\n%s", stderr.String())
		}
	})

	ready := n.WaitFor(t, "READY=1", 0)
	status := n.WaitFor(t, `STATUS=authenticated with approle at auth/approle-notify as role "web", token renews in 40m0s`, 0)
	if status > ready {
		t.Errorf("STATUS after READY")
	}
	n.WaitFor(t, "WATCHDOG=1", 0)
	token, err := os.ReadFile(sink)
	if err != nil || len(token) == 0 {
		t.Fatalf("sink: %v", err)
	}
	if pid, _ := os.ReadFile(filepath.Join(dir, "pid")); strings.TrimSpace(string(pid)) != fmt.Sprint(cmd.Process.Pid) {
		t.Errorf("pid file = %q", pid)
	}

	// A burst of SIGHUPs (the kernel may merge them) and one more after
	// it: every reload completes, the agent survives, the token is kept.
	from := n.Count()
	for i := 0; i < 5; i++ {
		if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	r1 := n.WaitFor(t, "RELOADING=1", from)
	n.WaitFor(t, "MONOTONIC_USEC=", r1)
	n.WaitFor(t, "READY=1", r1)
	time.Sleep(200 * time.Millisecond) // let a merged burst finish reloading
	from = n.Count()
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	r2 := n.WaitFor(t, "RELOADING=1", from)
	n.WaitFor(t, "READY=1", r2)
	if again, _ := os.ReadFile(sink); !bytes.Equal(again, token) {
		t.Error("reload with the same auth config replaced the token")
	}

	from = n.Count()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		done <- err
		if err != nil {
			t.Fatalf("exit: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("agent did not stop on SIGTERM")
	}
	n.WaitFor(t, "STOPPING=1", from)
	if _, err := os.Stat(filepath.Join(dir, "pid")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pid file left: %v", err)
	}
}

func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	good, sink := approleConfig(t, dir, "approle-codes", "")
	once := filepath.Join(dir, "once.hcl")
	b, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	testkit.WriteFile(t, once, "exit_after_auth = true\n"+string(b))
	bad := filepath.Join(dir, "bad.hcl")
	testkit.WriteFile(t, bad, "auto_auth {\n  method \"approle\" {}\n}\ncache {\n}\n")
	failing := filepath.Join(dir, "failing.hcl")
	testkit.WriteFile(t, failing, fmt.Sprintf("auto_auth {\n  method \"approle\" {\n    mount_path = \"auth/approle-codes\"\n    exit_on_err = true\n    config = { role_id_file_path = %q }\n  }\n}\n", filepath.Join(dir, "missing")))

	tests := map[string]struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		"version":                     {[]string{"version"}, exitOK, "latchkey-agent ", ""},
		"validate ok":                 {[]string{"validate", "-config", good}, exitOK, good + ": OK (approle auth, 1 sink(s), 0 template(s))", ""},
		"validate bad":                {[]string{"validate", "-config", bad}, exitConfig, "", bad + ":4:1: "},
		"validate absent":             {[]string{"validate", "-config", failing + "x"}, exitConfig, "", failing + "x"},
		"no config":                   {[]string{}, exitUsage, "", "-config is required"},
		"bad flag":                    {[]string{"-nope"}, exitUsage, "", "flag provided but not defined: -nope"},
		"exit_on_err":                 {[]string{"-config", failing}, exitAuth, "", "login failed and exit_on_err is set"},
		"exit after auth":             {[]string{"-config", once}, exitOK, "", ""},
		"method config":               {[]string{"validate", "-config", filepath.Join(dir, "m.hcl")}, exitConfig, "", `m.hcl:2:3: method "approle": config key "role_id_file_path" is required`},
		"validate unknown method key": {[]string{"validate", "-config", filepath.Join(dir, "mk.hcl")}, exitConfig, "", filepath.Join(dir, "mk.hcl") + `:5:7: method "approle": unknown config key "bogus"`},
		"validate wrong-typed key":    {[]string{"validate", "-config", filepath.Join(dir, "mt.hcl")}, exitConfig, "", filepath.Join(dir, "mt.hcl") + `:5:7: method "approle": config key "role_id_file_path": want a string`},
		"validate missing key":        {[]string{"validate", "-config", filepath.Join(dir, "mm.hcl")}, exitConfig, "", filepath.Join(dir, "mm.hcl") + `:4:5: method "approle": config key "role_id_file_path" is required`},
		"validate JSON method key":    {[]string{"validate", "-config", filepath.Join(dir, "mk.json")}, exitConfig, "", filepath.Join(dir, "mk.json") + `:5:7: method "approle": unknown config key "bogus"`},
		"validate owner":              {[]string{"validate", "-config", filepath.Join(dir, "o.hcl")}, exitConfig, "", `owner "no-such-user-latchkey": user: unknown user`},
		"template retries exhausted":  {[]string{"-config", filepath.Join(dir, "t.hcl")}, exitRuntime, "", "templates failed"},
		"validate template syntax":    {[]string{"validate", "-config", filepath.Join(dir, "ts.hcl")}, exitConfig, "", "parse template"},
		"validate template over the config": {[]string{"validate", "-config", filepath.Join(dir, "self.hcl")}, exitConfig, "",
			"template " + filepath.Join(dir, "self.hcl") + " is a config file of the agent's own: writing it would replace the config"},
		"start with a template over the sink": {[]string{"-config", filepath.Join(dir, "sinktmpl.hcl")}, exitConfig, "",
			"template " + sink + " is also the sink at "},
		// Defect: the error named the destination as the template
		// ("template: /etc/app/app.env:4: ..."); it names the source's line.
		"validate template source syntax": {[]string{"validate", "-config", filepath.Join(dir, "tss.hcl")}, exitConfig, "", "template: " + filepath.Join(dir, "tss.tmpl") + ":4: "},
		// exit_after_auth without exit_on_retry_failure: a template that
		// never renders still ends the one-shot run with the template code.
		"exit after auth, template keeps failing": {[]string{"-config", filepath.Join(dir, "ea.hcl")}, exitRuntime, "", "templates failed"},
	}
	testkit.WriteFile(t, filepath.Join(dir, "m.hcl"), "auto_auth {\n  method \"approle\" {\n  }\n}\n")
	// Errors about a method's config keys, raised after parsing, name the
	// key's own line and column (the config block's when it is missing).
	methodCfg := func(entries string) string {
		return "auto_auth {\n  method \"approle\" {\n    mount_path = \"auth/x\"\n    config = {\n" + entries + "    }\n  }\n}\n"
	}
	testkit.WriteFile(t, filepath.Join(dir, "mk.hcl"), methodCfg("      bogus = 1\n      role_id_file_path = \"/r\"\n"))
	testkit.WriteFile(t, filepath.Join(dir, "mt.hcl"), methodCfg("      role_id_file_path = [\"/r\"]\n"))
	testkit.WriteFile(t, filepath.Join(dir, "mm.hcl"), methodCfg("      secret_id_file_path = \"/s\"\n"))
	testkit.WriteFile(t, filepath.Join(dir, "mk.json"), "{\n  \"auto_auth\": {\n    \"method\": {\n    \"config\": {\n      \"bogus\": 1,\n      \"role_id_file_path\": \"/r\"\n    },\n    \"type\": \"approle\"\n    }\n  }\n}\n")
	testkit.WriteFile(t, filepath.Join(dir, "o.hcl"), strings.Replace(string(b), "\n      path = ", "\n      owner = \"no-such-user-latchkey\"\n      path = ", 1))
	// A template whose secret does not exist, one retry, exit_on_retry_failure.
	// It logs in with its own token file: the approle configs above share
	// one secret id file, which a login removes.
	rootToken := filepath.Join(dir, "root-token")
	testkit.WriteFile(t, rootToken, srv.RootToken)
	testkit.WriteFile(t, filepath.Join(dir, "t.hcl"), fmt.Sprintf("auto_auth {\n  method \"token_file\" {\n    config = {\n      token_file_path = %q\n    }\n  }\n}\nlatchkey {\n  state_dir = %q\n}\nvault {\n  retry {\n    num_retries = 1\n  }\n}\ntemplate_config {\n  exit_on_retry_failure = true\n}\ntemplate {\n  contents = \"{{ with secret \\\"secret/no-such-secret\\\" }}{{ end }}\"\n  destination = %q\n}\n", rootToken, filepath.Join(dir, "t-state"), filepath.Join(dir, "t.out")))
	testkit.WriteFile(t, filepath.Join(dir, "ea.hcl"), fmt.Sprintf("exit_after_auth = true\nauto_auth {\n  method \"token_file\" {\n    config = {\n      token_file_path = %q\n    }\n  }\n}\nlatchkey {\n  state_dir = %q\n}\nvault {\n  retry {\n    num_retries = 1\n  }\n}\ntemplate {\n  contents = \"{{ with secret \\\"secret/no-such-secret\\\" }}{{ end }}\"\n  destination = %q\n}\n", rootToken, filepath.Join(dir, "ea-state"), filepath.Join(dir, "ea.out")))
	testkit.WriteFile(t, filepath.Join(dir, "self.hcl"), string(b)+fmt.Sprintf("template {\n  contents = \"x\"\n  destination = %q\n}\n", filepath.Join(dir, "self.hcl")))
	testkit.WriteFile(t, filepath.Join(dir, "sinktmpl.hcl"), string(b)+fmt.Sprintf("template {\n  contents = \"x\"\n  destination = %q\n}\n", sink))
	testkit.WriteFile(t, filepath.Join(dir, "ts.hcl"), string(b)+fmt.Sprintf("template {\n  contents = \"{{ with secret }}\"\n  destination = %q\n}\n", filepath.Join(dir, "ts.out")))
	testkit.WriteFile(t, filepath.Join(dir, "tss.tmpl"), "a\nb\nc\n{{ if")
	testkit.WriteFile(t, filepath.Join(dir, "tss.hcl"), string(b)+fmt.Sprintf("template {\n  source = %q\n  destination = %q\n}\n", filepath.Join(dir, "tss.tmpl"), filepath.Join(dir, "tss.out")))
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cmd := agentCmd(tc.args)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.code || !strings.Contains(stdout.String(), tc.stdout) || !strings.Contains(stderr.String(), tc.stderr) {
				t.Fatalf("exit %d (want %d)\nstdout: %s\nstderr: %s", code, tc.code, stdout.String(), stderr.String())
			}
		})
	}
	if b, err := os.ReadFile(sink); err != nil || len(b) == 0 {
		t.Errorf("exit_after_auth wrote no sink: %v", err)
	}
	for _, out := range []string{"t.out", "ea.out"} {
		if _, err := os.Stat(filepath.Join(dir, out)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a template that never rendered left %s: %v", out, err)
		}
	}
}

// `render` logs in, renders one template and prints it, secrets masked
// unless -show-secrets; -dry-run writes nothing.
func TestRenderSubcommand(t *testing.T) {
	dir := t.TempDir()
	srv.MountT(t, "render-kv", &api.MountInput{Type: "kv", Options: map[string]string{"version": "2"}})
	if _, err := srv.Client.Logical().Write("render-kv/data/app", map[string]any{"data": map[string]any{"password": "hunter2"}}); err != nil {
		t.Fatal(err)
	}
	good, _ := approleConfig(t, dir, "approle-render", "")
	b, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(dir, "app.env")
	cfg := filepath.Join(dir, "render.hcl")
	testkit.WriteFile(t, cfg, string(b)+fmt.Sprintf("template {\n  contents = \"PW={{ with secret \\\"render-kv/app\\\" }}{{ .Data.data.password }}{{ end }}\"\n  destination = %q\n}\n", dest))
	// The role's default policy cannot read the secret: give it one that can.
	if err := srv.Client.Sys().PutPolicy("render", `path "render-kv/data/*" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Client.Logical().Write("auth/approle-render/role/web", map[string]any{"token_ttl": "1h", "token_policies": "render"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
		// wrote is what the destination holds afterwards ("" absent).
		wrote string
	}{
		{[]string{"render", "-config", cfg, "-template", dest, "-dry-run"}, "PW=<redacted>", ""},
		{[]string{"render", "-config", cfg, "-template", "1", "-dry-run", "-show-secrets"}, "PW=hunter2", ""},
		// Without -dry-run: written as the agent would, still printed masked.
		{[]string{"render", "-config", cfg, "-template", dest}, "PW=<redacted>", "PW=hunter2"},
	} {
		// Each run logs in with a fresh secret id (the file is removed after reading).
		sid, err := srv.Client.Logical().Write("auth/approle-render/role/web/secret-id", nil)
		if err != nil {
			t.Fatal(err)
		}
		testkit.WriteFile(t, filepath.Join(dir, "secret-id"), sid.Data["secret_id"].(string))
		cmd := agentCmd(tc.args)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("%v: %v\n%s", tc.args, err, stderr.String())
		}
		if stdout.String() != tc.want {
			t.Errorf("%v printed %q, want %q", tc.args, stdout.String(), tc.want)
		}
		if strings.Contains(stderr.String(), "hunter2") {
			t.Errorf("the secret reached the log: %s", stderr.String())
		}
		got, err := os.ReadFile(dest)
		switch {
		case tc.wrote == "" && err == nil:
			t.Errorf("%v wrote the destination", tc.args)
		case tc.wrote != "" && string(got) != tc.wrote:
			t.Errorf("%v: destination holds %q (%v), want %q", tc.args, got, err, tc.wrote)
		}
	}
	if fi, err := os.Stat(dest); err != nil {
		t.Error(err)
	} else if fi.Mode().Perm() != 0o644 {
		t.Errorf("destination mode %v, want 0644 (Vault Agent's default)", fi.Mode().Perm())
	}
}

// READY=1 waits until every template has rendered once: here one whose
// secret appears only after the agent started.
func TestReadyWaitsForRealTemplates(t *testing.T) {
	dir := t.TempDir()
	srv.MountT(t, "ready-kv", &api.MountInput{Type: "kv", Options: map[string]string{"version": "2"}})
	rootToken := filepath.Join(dir, "root-token")
	testkit.WriteFile(t, rootToken, srv.RootToken)
	dest := filepath.Join(dir, "app.env")
	cfg := filepath.Join(dir, "agent.hcl")
	testkit.WriteFile(t, cfg, fmt.Sprintf(`auto_auth {
  method "token_file" {
    config = {
      token_file_path = %q
    }
  }
}
latchkey {
  state_dir = %q
}
template {
  contents    = "K={{ with secret \"ready-kv/app\" }}{{ .Data.data.k }}{{ end }}"
  destination = %q
}
`, rootToken, filepath.Join(dir, "state"), dest))
	n := testkit.ListenNotify(t)
	cmd := agentCmd([]string{"-config", cfg}, "NOTIFY_SOCKET="+n.Path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	n.WaitFor(t, "STATUS=authenticated", 0)
	time.Sleep(500 * time.Millisecond) // the template keeps failing meanwhile
	for _, m := range n.Messages() {
		if m == "READY=1" {
			t.Fatalf("READY=1 before the template rendered; stderr:\n%s", stderr.String())
		}
	}
	if _, err := srv.Client.Logical().Write("ready-kv/data/app", map[string]any{"data": map[string]any{"k": "v"}}); err != nil {
		t.Fatal(err)
	}
	n.WaitFor(t, "READY=1", 0)
	if b, _ := os.ReadFile(dest); string(b) != "K=v" {
		t.Errorf("READY=1 with %s = %q", dest, b)
	}
}

// SIGHUP applies a changed log_level, as Vault Agent's reload does.
func TestReloadAppliesLogLevel(t *testing.T) {
	dir := t.TempDir()
	cfg, _ := approleConfig(t, dir, "approle-loglevel", `log_level = "error"`)
	n := testkit.ListenNotify(t)
	var stderr syncBuffer
	cmd := agentCmd([]string{"-config", cfg, "-log-format", "json"}, "NOTIFY_SOCKET="+n.Path)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	n.WaitFor(t, "READY=1", 0)
	if strings.Contains(stderr.String(), `"level":"info"`) {
		t.Fatalf("info lines at log_level error:\n%s", stderr.String())
	}
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	testkit.WriteFile(t, cfg, strings.Replace(string(b), `log_level = "error"`, `log_level = "debug"`, 1))
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	ready := n.WaitFor(t, "RELOADING=1", 0)
	n.WaitFor(t, "READY=1", ready)
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(stderr.String(), "reload: log level changed") {
		if time.Now().After(deadline) {
			t.Fatalf("no log level change after SIGHUP:\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer safe for a process writing while the test reads.
type syncBuffer = testkit.Buffer

// SIGINT stops the agent as SIGTERM does: exit 0 after STOPPING=1.
func TestStopSignals(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			dir := t.TempDir()
			cfg, _ := approleConfig(t, dir, "approle-stop-"+strings.ToLower(unix.SignalName(sig)), "")
			n := testkit.ListenNotify(t)
			var stderr syncBuffer
			cmd := agentCmd([]string{"-config", cfg}, "NOTIFY_SOCKET="+n.Path)
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// done is closed (not sent on) when the agent exited, so that
			// both the test and the cleanup may wait on it.
			done := make(chan struct{})
			var waitErr error
			go func() { waitErr = cmd.Wait(); close(done) }()
			// Whatever fails first (no READY=1, no exit), the agent does
			// not outlive the test.
			t.Cleanup(func() {
				select {
				case <-done:
				default:
					cmd.Process.Kill()
					<-done
				}
			})
			n.WaitFor(t, "READY=1", 0)
			from := n.Count()
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			select {
			case <-done:
				if waitErr != nil {
					t.Fatalf("exit after %s: %v\n%s", sig, waitErr, stderr.String())
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("agent did not stop on %s", sig) // the cleanup kills it
			}
			n.WaitFor(t, "STOPPING=1", from)
		})
	}
}

// Several -config flags are read in order; a value set in more than one
// file is the last one's (here vault { address }), as README says.
func TestSeveralConfigFlagsLaterWins(t *testing.T) {
	dir := t.TempDir()
	base, sink := approleConfig(t, dir, "approle-configs", "exit_after_auth = true")
	b, err := os.ReadFile(base)
	if err != nil {
		t.Fatal(err)
	}
	// Stop at a failed login; keep the secret id for the next run.
	text := strings.Replace(string(b), "    config = {\n", "    exit_on_err = true\n    config = {\n      remove_secret_id_file_after_reading = false\n", 1)
	testkit.WriteFile(t, base, text)
	dead := filepath.Join(dir, "dead.hcl")
	testkit.WriteFile(t, dead, "vault {\n  address = \"http://127.0.0.1:1\"\n}\n")
	live := filepath.Join(dir, "live.hcl")
	testkit.WriteFile(t, live, fmt.Sprintf("vault {\n  address = %q\n}\n", srv.Addr))
	tests := []struct {
		name   string
		files  []string
		code   int
		stderr string
	}{
		{"live last", []string{base, dead, live}, exitOK, ""},
		{"dead last", []string{base, live, dead}, exitAuth, "127.0.0.1:1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(sink)
			var args []string
			for _, f := range tc.files {
				args = append(args, "-config", f)
			}
			// No VAULT_ADDR: the address comes from the files.
			cmd := agentCmdEnv(args, "VAULT_MAX_RETRIES=0")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if code := exitCode(t, cmd); code != tc.code || !strings.Contains(stderr.String(), tc.stderr) {
				t.Fatalf("exit %d (want %d)\n%s", code, tc.code, stderr.String())
			}
			if _, err := os.Stat(sink); (err == nil) != (tc.code == exitOK) {
				t.Errorf("sink after exit %d: %v", tc.code, err)
			}
		})
	}
}

// validate reads and checks everything, contacting neither Vault nor the
// metadata service: both are listeners that count connections.
func TestValidateContactsNothing(t *testing.T) {
	listen := func() (string, func() int) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		return "http://" + ln.Addr().String(), func() int {
			// A connection made is queued by now (connect returned
			// before the process exited): drain the queue.
			n := 0
			ln.(*net.TCPListener).SetDeadline(time.Now().Add(time.Second))
			for {
				c, err := ln.Accept()
				if err != nil {
					return n
				}
				c.Close()
				n++
			}
		}
	}
	vault, vaultConns := listen()
	imds, imdsConns := listen()
	dir := t.TempDir()
	stateDir := filepath.Join(dir, "state")
	cfg := filepath.Join(dir, "agent.hcl")
	testkit.WriteFile(t, cfg, fmt.Sprintf(`auto_auth {
  method "aws" {
    config = {
      type              = "ec2"
      role              = "web"
      metadata_endpoint = %q
    }
  }
  sink "file" {
    config = {
      path = %q
    }
  }
}
latchkey {
  state_dir = %q
}
template {
  contents    = "{{ with secret \"secret/data/app\" }}{{ .Data.data.k }}{{ end }}"
  destination = %q
}
`, imds, filepath.Join(dir, "token"), stateDir, filepath.Join(dir, "out")))
	cmd := agentCmdEnv([]string{"validate", "-config", cfg}, "VAULT_ADDR="+vault, "AWS_EC2_METADATA_SERVICE_ENDPOINT="+imds)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if code := exitCode(t, cmd); code != exitOK || !strings.Contains(stdout.String(), "OK (aws auth, 1 sink(s), 1 template(s))") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout.String(), stderr.String())
	}
	if n := vaultConns(); n != 0 {
		t.Errorf("validate connected to Vault %d time(s)", n)
	}
	if n := imdsConns(); n != 0 {
		t.Errorf("validate connected to the metadata service %d time(s)", n)
	}
	for _, p := range []string{stateDir, filepath.Join(dir, "token"), filepath.Join(dir, "out")} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("validate created %s: %v", p, err)
		}
	}
}
