package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/agent/state"
	"github.com/latchkey/latchkey/test/testkit"
)

// Defect: a second agent on the same state directory (one started by
// hand beside the service) ran beside the first: both ran template
// commands, each took the other's running ones for leftovers of a crash,
// and two first logins saved two different AWS nonces. The second now
// exits 6 at once, naming the first's pid, and changes nothing, as does a
// render that would write; validate and render -dry-run still run; once
// the first stopped, the second starts.
func TestSecondAgentOnAStateDirRefused(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	cfg := rootTokenConfig(t, dir, fmt.Sprintf("template {\n  contents = \"x\"\n  destination = %q\n  command = \"echo run >> %s\"\n}\n", out, filepath.Join(dir, "runs")))
	notify := testkit.ListenNotify(t)
	first := startAgent(t, []string{"-config", cfg}, "VAULT_ADDR="+srv.Addr, "NOTIFY_SOCKET="+notify.Path)
	notify.WaitFor(t, "READY=1", 0)

	var stderr bytes.Buffer
	second := agentCmd([]string{"-config", cfg})
	second.Stderr = &stderr
	start := time.Now()
	if code := exitCode(t, second); code != exitLocked {
		t.Fatalf("second agent: exit %d, want %d\n%s", code, exitLocked, stderr.String())
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the second agent took %v to give up", d)
	}
	want := fmt.Sprintf("in use by another latchkey-agent (pid %d)", first.cmd.Process.Pid)
	if !strings.Contains(stderr.String(), want) || !strings.Contains(stderr.String(), "state_dir") {
		t.Errorf("second agent's log lacks %q and the way out:\n%s", want, stderr.String())
	}
	if strings.Contains(stderr.String(), "logged in") {
		t.Errorf("the second agent logged in:\n%s", stderr.String())
	}
	if n := countLines(filepath.Join(dir, "runs")); n != 1 {
		t.Errorf("the command ran %d times, want 1", n)
	}
	fi, err := os.Stat(filepath.Join(dir, "state", state.LockName))
	testkit.Must(t, err)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("lock file mode %v, want 0600", fi.Mode().Perm())
	}
	// Side-effect-free subcommands are not locked out; a render that
	// writes (and runs the command) is.
	if code := exitCode(t, agentCmd([]string{"validate", "-config", cfg})); code != exitOK {
		t.Errorf("validate beside a running agent: exit %d", code)
	}
	if code := exitCode(t, agentCmd([]string{"render", "-config", cfg, "-template", out, "-dry-run"})); code != exitOK {
		t.Errorf("render -dry-run beside a running agent: exit %d", code)
	}
	stderr.Reset()
	render := agentCmd([]string{"render", "-config", cfg, "-template", out})
	render.Stderr = &stderr
	if code := exitCode(t, render); code != exitLocked || !strings.Contains(stderr.String(), want) || !strings.Contains(stderr.String(), "-dry-run") {
		t.Errorf("render beside a running agent: exit %d, want %d naming the pid and -dry-run:\n%s", code, exitLocked, stderr.String())
	}
	if n := countLines(filepath.Join(dir, "runs")); n != 1 {
		t.Errorf("the command ran %d times, want 1", n)
	}

	if code := first.stop(t); code != 0 {
		t.Fatalf("first agent: exit %d", code)
	}
	from := notify.Count()
	next := startAgent(t, []string{"-config", cfg}, "VAULT_ADDR="+srv.Addr, "NOTIFY_SOCKET="+notify.Path)
	notify.WaitFor(t, "READY=1", from)
	if code := next.stop(t); code != 0 {
		t.Errorf("the agent after the first stopped: exit %d", code)
	}
}
