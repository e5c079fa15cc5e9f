package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/latchkey/latchkey/test/testkit"
)

// cmdTest is an agent config with one template whose command (a shell
// script) appends "start" to log, waits until release exists, and appends
// "end"; on SIGTERM it appends "term" and exits 143, or with ignoreTerm
// appends "term" and carries on. Each run appends its process group to
// dir/pgids; every group is killed when the test ends.
type cmdTest struct {
	dir, mount, cfg, log, release, state, dest string
	base                                       string // the config without the template
}

func newCmdTest(t *testing.T, mount string, ignoreTerm bool) *cmdTest {
	t.Helper()
	dir := t.TempDir()
	c := &cmdTest{dir: dir, mount: mount, log: filepath.Join(dir, "log"), release: filepath.Join(dir, "release"),
		state: filepath.Join(dir, "state"), dest: filepath.Join(dir, "app.conf")}
	c.cfg, _ = approleConfig(t, dir, mount, "")
	c.base = testkit.ReadFile(c.cfg)
	onTerm := `echo term >> "$LOG"; exit 143`
	if ignoreTerm {
		onTerm = `echo term >> "$LOG"`
	}
	script := filepath.Join(dir, "reload.sh")
	testkit.WriteFile(t, script, fmt.Sprintf(`LOG=%q
echo $$ >> %q
trap '%s' TERM
echo start >> "$LOG"
while [ ! -e %q ]; do sleep 0.05; done
echo end >> "$LOG"
`, c.log, filepath.Join(dir, "pgids"), onTerm, c.release))
	testkit.WriteFile(t, c.cfg, testkit.ReadFile(c.cfg)+fmt.Sprintf(`template {
  contents    = "listen 443;\n"
  destination = %q
  exec {
    command = ["/bin/sh", %q]
    timeout = "60s"
  }
}
`, c.dest, script))
	t.Cleanup(func() {
		for _, f := range strings.Fields(testkit.ReadFile(filepath.Join(dir, "pgids"))) {
			var pgid int
			if _, err := fmt.Sscan(f, &pgid); err == nil && pgid > 1 {
				syscall.Kill(-pgid, syscall.SIGKILL)
			}
		}
	})
	return c
}

// count is how many times the command's log holds line.
func (c *cmdTest) count(line string) int {
	return strings.Count(testkit.ReadFile(c.log), line+"\n")
}

// records lists the pending command records in the state directory.
func (c *cmdTest) records(t *testing.T) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(c.state, "template-command-*.json"))
	testkit.Must(t, err)
	return m
}

// start starts the agent (with a fresh secret id: the agent removes the
// file once read) and waits for the command's n-th start.
func (c *cmdTest) start(t *testing.T, n int) *agentProc {
	t.Helper()
	testkit.NewSecretID(t, srv.Client, c.mount, filepath.Join(c.dir, "secret-id"))
	a := startAgent(t, []string{"-config", c.cfg}, "VAULT_ADDR="+srv.Addr)
	testkit.Eventually(t, fmt.Sprintf("the command's start #%d", n), func() bool { return c.count("start") == n })
	return a
}

// Defect: a SIGHUP that changed the templates stopped the old template
// manager, which SIGKILLed the command it was running (a service reload
// cut halfway), and the new manager, rendering the same output, never ran
// it again. The command now runs to its end exactly once across the
// reload, and the agent runs on.
func TestSIGHUPDuringATemplateCommand(t *testing.T) {
	c := newCmdTest(t, "approle-cmd-hup", false)
	a := c.start(t, 1)
	if n := len(c.records(t)); n != 1 {
		t.Errorf("%d pending records while the command runs, want 1", n)
	}
	// A template is added: the reload builds a new template manager.
	added := filepath.Join(c.dir, "added.txt")
	testkit.WriteFile(t, c.cfg, testkit.ReadFile(c.cfg)+fmt.Sprintf("template {\n  contents = \"added\"\n  destination = %q\n}\n", added))
	a.signal(t, syscall.SIGHUP)
	a.logged(t, "reloaded; auth unchanged, keeping the token", 1)
	a.logged(t, "reload: a template command is still running; it goes on to its end and does not run again", 1)
	testkit.Eventually(t, "the added template", func() bool { return testkit.ReadFile(added) == "added" })
	if got := testkit.ReadFile(c.log); got != "start\n" {
		t.Fatalf("after the reload the command's log is %q, want it still running", got)
	}
	testkit.WriteFile(t, c.release, "")
	testkit.Eventually(t, "the command's end", func() bool { return c.count("end") == 1 })
	testkit.Eventually(t, "the pending record removed", func() bool { return len(c.records(t)) == 0 })
	time.Sleep(time.Second) // let a wrong second run show
	if got := testkit.ReadFile(c.log); got != "start\nend\n" {
		t.Errorf("the command's log is %q, want one run to its end", got)
	}
	// The agent runs on: a further reload works, and the stop is clean.
	a.signal(t, syscall.SIGHUP)
	a.logged(t, "reloaded; auth unchanged, keeping the token", 2)
	if code := a.stop(t); code != 0 {
		t.Errorf("exit %d", code)
	}
	if c.count("start") != 1 {
		t.Errorf("the command ran %d times, want once", c.count("start"))
	}
}

// A reload that removes the template whose command is running leaves the
// command to run to its end, or, should the agent stop first, stops it as
// it would have.
func TestSIGHUPRemovingATemplateDuringItsCommand(t *testing.T) {
	for name, stop := range map[string]bool{"runs to its end": false, "stopped with the agent": true} {
		t.Run(name, func(t *testing.T) {
			c := newCmdTest(t, "approle-cmd-remove-"+strings.Fields(name)[0], false)
			a := c.start(t, 1)
			testkit.WriteFile(t, c.cfg, c.base)
			a.signal(t, syscall.SIGHUP)
			a.logged(t, "reloaded; auth unchanged, keeping the token", 1)
			time.Sleep(500 * time.Millisecond) // let a wrong kill show
			if got := testkit.ReadFile(c.log); got != "start\n" {
				t.Fatalf("after the reload the command's log is %q, want it still running", got)
			}
			want := "start\nend\n"
			if stop {
				want = "start\nterm\n"
			} else {
				testkit.WriteFile(t, c.release, "")
				testkit.Eventually(t, "the command's end", func() bool { return c.count("end") == 1 })
				testkit.Eventually(t, "the pending record removed", func() bool { return len(c.records(t)) == 0 })
			}
			if code := a.stop(t); code != 0 {
				t.Errorf("exit %d", code)
			}
			if got := testkit.ReadFile(c.log); got != want {
				t.Errorf("the command's log is %q, want %q", got, want)
			}
		})
	}
}

// Defect: a reload that removed the template whose command was running,
// and a second reload that brought it back before the command ended,
// started the command a second time beside the first: the new template
// manager knew nothing of the one the first reload had left running, and
// took the command's pending record for one an earlier run had cut short.
// The returning manager now takes the running command over: it waits for
// it, and the command runs once.
func TestSIGHUPRemovingThenRestoringATemplateDuringItsCommand(t *testing.T) {
	c := newCmdTest(t, "approle-cmd-restore", false)
	a := c.start(t, 1)
	full := testkit.ReadFile(c.cfg)
	testkit.WriteFile(t, c.cfg, c.base)
	a.signal(t, syscall.SIGHUP)
	a.logged(t, "reloaded; auth unchanged, keeping the token", 1)
	testkit.WriteFile(t, c.cfg, full)
	a.signal(t, syscall.SIGHUP)
	a.logged(t, "reloaded; auth unchanged, keeping the token", 2)
	a.logged(t, "reload: a template command is still running; it goes on to its end and does not run again", 1)
	time.Sleep(time.Second) // let a wrong second start show
	if got := testkit.ReadFile(c.log); got != "start\n" {
		t.Fatalf("after the reloads the command's log is %q, want the first run still running alone", got)
	}
	testkit.WriteFile(t, c.release, "")
	testkit.Eventually(t, "the command's end", func() bool { return c.count("end") == 1 })
	testkit.Eventually(t, "the pending record removed", func() bool { return len(c.records(t)) == 0 })
	time.Sleep(time.Second) // let a wrong rerun show
	if code := a.stop(t); code != 0 {
		t.Errorf("exit %d", code)
	}
	if got := testkit.ReadFile(c.log); got != "start\nend\n" {
		t.Errorf("the command's log is %q, want one run to its end", got)
	}
}

// Defect: SIGTERM (systemctl stop or restart) SIGKILLed a running command,
// and after the restart the destination was current, so the command never
// completed. It now gets SIGTERM, the agent exits 0 keeping a pending
// record, and the next start runs the command once and removes the record.
func TestSIGTERMDuringATemplateCommand(t *testing.T) {
	c := newCmdTest(t, "approle-cmd-term", false)
	a := c.start(t, 1)
	if code := a.stop(t); code != 0 {
		t.Errorf("exit %d after SIGTERM, want 0", code)
	}
	if got := testkit.ReadFile(c.log); got != "start\nterm\n" {
		t.Errorf("the command's log is %q, want it to have seen SIGTERM", got)
	}
	for _, s := range []string{"stopping: the template command still running gets SIGTERM",
		"template command stopped with the agent before its end; it runs again at the next start"} {
		if !strings.Contains(a.stderr.String(), s) {
			t.Errorf("the log lacks %q", s)
		}
	}
	recs := c.records(t)
	if len(recs) != 1 {
		t.Fatalf("%d pending records after the stop, want 1", len(recs))
	}
	if fi, err := os.Stat(recs[0]); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("record %s: %v, mode %v", recs[0], err, fi.Mode())
	}
	if fi, err := os.Stat(c.state); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("state dir: %v, mode %v", err, fi.Mode())
	}
	if !strings.Contains(testkit.ReadFile(recs[0]), c.dest) {
		t.Errorf("the record does not name the destination: %s", testkit.ReadFile(recs[0]))
	}

	// The next start: the destination is current, the command runs once.
	b := c.start(t, 2)
	b.logged(t, "template command did not run to its end (interrupted by a stop, a crash or a reload); running it now", 1)
	testkit.WriteFile(t, c.release, "")
	testkit.Eventually(t, "the command's end", func() bool { return c.count("end") == 1 })
	testkit.Eventually(t, "the pending record removed", func() bool { return len(c.records(t)) == 0 })
	if code := b.stop(t); code != 0 {
		t.Errorf("exit %d", code)
	}
	if got := testkit.ReadFile(c.log); got != "start\nterm\nstart\nend\n" {
		t.Errorf("the command's log is %q", got)
	}
	// A third start has nothing pending: the command does not run.
	d := c.start(t, 2)
	d.logged(t, "token written to sink", 1)
	time.Sleep(time.Second)
	if code := d.stop(t); code != 0 || c.count("start") != 2 {
		t.Errorf("exit %d, %d runs, want 0 and 2", code, c.count("start"))
	}
}

// powerLoss ends a, mid-command, as a power loss would: the agent by
// kill -9 and the command's process group with it (which outlives a
// kill -9 of the agent alone). It returns the one pending record left.
func (c *cmdTest) powerLoss(t *testing.T, a *agentProc) []string {
	t.Helper()
	testkit.Must(t, a.cmd.Process.Kill())
	<-a.done
	a.done <- nil
	var pgid int
	fmt.Sscan(testkit.ReadFile(filepath.Join(c.dir, "pgids")), &pgid)
	testkit.Must(t, syscall.Kill(-pgid, syscall.SIGKILL))
	recs := c.records(t)
	if len(recs) != 1 {
		t.Fatalf("%d pending records after kill -9, want 1", len(recs))
	}
	return recs
}

// An agent killed mid-command (kill -9, OOM, power loss) leaves the
// pending record: the next start runs the command again.
func TestAgentKilledDuringATemplateCommand(t *testing.T) {
	c := newCmdTest(t, "approle-cmd-kill", false)
	c.powerLoss(t, c.start(t, 1))
	b := c.start(t, 2)
	testkit.WriteFile(t, c.release, "")
	testkit.Eventually(t, "the command's end", func() bool { return c.count("end") == 1 })
	testkit.Eventually(t, "the pending record removed", func() bool { return len(c.records(t)) == 0 })
	if code := b.stop(t); code != 0 {
		t.Errorf("exit %d", code)
	}
}

// Defect: a pending record that could not be read at the next start (an
// I/O error, a wrong owner) was removed and its command never run again,
// as though it had been corrupt. It now still runs the command once.
func TestUnreadablePendingRecordStillRunsTheCommand(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown the record") // CI runs as root
	}
	c := newCmdTest(t, "approle-cmd-unreadable", false)
	recs := c.powerLoss(t, c.start(t, 1))
	testkit.Must(t, os.Chown(recs[0], 65534, 65534)) // state.Load refuses another user's record
	b := c.start(t, 2)
	b.logged(t, "pending template command record unreadable; the command runs again", 1)
	testkit.WriteFile(t, c.release, "")
	testkit.Eventually(t, "the command's end", func() bool { return c.count("end") == 1 })
	testkit.Eventually(t, "the pending record removed", func() bool { return len(c.records(t)) == 0 })
	if code := b.stop(t); code != 0 {
		t.Errorf("exit %d", code)
	}
}

// Defect: outside systemd (which kills the rest of the unit), a command
// outlives a kill -9 of the agent, and the next start ran it again at
// once, beside the first (two service reloads, or two migrations, at the
// same time). The record now names the command's process: the next start
// waits for it to end, then runs the command once more (how the first run
// ended cannot be known), never two at a time.
func TestAgentKilledWhileItsCommandRunsOn(t *testing.T) {
	c := newCmdTest(t, "approle-cmd-orphan", false)
	a := c.start(t, 1)
	testkit.Must(t, a.cmd.Process.Kill())
	<-a.done
	a.done <- nil
	testkit.NewSecretID(t, srv.Client, c.mount, filepath.Join(c.dir, "secret-id"))
	b := startAgent(t, []string{"-config", c.cfg}, "VAULT_ADDR="+srv.Addr)
	b.logged(t, "still running; it is waited for, then run again", 1)
	b.logged(t, "token written to sink", 1)
	time.Sleep(500 * time.Millisecond)
	if n := c.count("start"); n != 1 {
		t.Fatalf("the command started %d times while the first run went on, want once", n)
	}
	testkit.WriteFile(t, c.release, "")
	testkit.Eventually(t, "the second run's end", func() bool { return c.count("end") == 2 })
	if got := testkit.ReadFile(c.log); got != "start\nend\nstart\nend\n" {
		t.Errorf("the command's log %q: two runs at once", got)
	}
	b.logged(t, "left running by the agent's previous run has ended; it runs again", 1)
	testkit.Eventually(t, "the pending record removed", func() bool { return len(c.records(t)) == 0 })
	if code := b.stop(t); code != 0 {
		t.Errorf("exit %d", code)
	}
}

// A command that ignores SIGTERM is SIGKILLed after the grace period: the
// stop is bounded, and the agent still exits 0.
func TestStopKillsACommandIgnoringSIGTERM(t *testing.T) {
	c := newCmdTest(t, "approle-cmd-ignore", true)
	a := c.start(t, 1)
	if code := a.stop(t); code != 0 {
		t.Errorf("exit %d after SIGTERM, want 0", code)
	}
	if got := testkit.ReadFile(c.log); got != "start\nterm\n" {
		t.Errorf("the command's log is %q, want SIGTERM seen and no end", got)
	}
	if !strings.Contains(a.stderr.String(), "SIGTERM, then SIGKILL after a grace period of 5s") {
		t.Error("the log does not say the command was killed after the grace period")
	}
	var pgid int
	fmt.Sscan(testkit.ReadFile(filepath.Join(c.dir, "pgids")), &pgid)
	testkit.Eventually(t, "the command's process group gone", func() bool { return syscall.Kill(-pgid, 0) != nil })
	if n := len(c.records(t)); n != 1 {
		t.Errorf("%d pending records after the stop, want 1", n)
	}
}
