package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/latchkey/latchkey/test/testkit"
)

// Defect: with its stderr's reader gone (journald restarted without
// keeping the stream, a log pipe whose reader died), the agent's next log
// line raised SIGPIPE and Go's default ended it (killed by signal 13, here
// at the "reloading" line of a SIGHUP). It now runs on, reloads, renders
// and exits 0 on SIGTERM; the commands it starts still get SIGPIPE's
// default (not ignored: a pipeline in a command must end as it does
// elsewhere).
func TestBrokenStderrPipe(t *testing.T) {
	dir := t.TempDir()
	cfg, sink := approleConfig(t, dir, "approle-pipe", "")
	sigIgn := filepath.Join(dir, "sigign")
	testkit.WriteFile(t, cfg, testkit.ReadFile(cfg)+fmt.Sprintf(`template {
  contents    = "x"
  destination = %q
  exec {
    command = ["/bin/sh", "-c", "grep SigIgn /proc/self/status > %s"]
  }
}
`, filepath.Join(dir, "out"), sigIgn))
	r, w, err := os.Pipe()
	testkit.Must(t, err)
	cmd := agentCmdEnv([]string{"-config", cfg, "-log-level", "info"}, "VAULT_ADDR="+srv.Addr)
	cmd.Stdout, cmd.Stderr = w, w
	testkit.Must(t, cmd.Start())
	w.Close()
	// exited closes once the agent ended; waitErr is how.
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-exited })
	testkit.Eventually(t, "the token in the sink", func() bool { return testkit.ReadFile(sink) != "" })
	testkit.Eventually(t, "the command ran", func() bool { return testkit.ReadFile(sigIgn) != "" })
	r.Close() // the reader goes away
	testkit.Must(t, cmd.Process.Signal(syscall.SIGHUP))
	time.Sleep(time.Second)
	select {
	case <-exited:
		t.Fatalf("the agent ended after a log line to a broken pipe: %v", waitErr)
	default:
	}
	testkit.Must(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-exited:
		if waitErr != nil {
			t.Errorf("exit after SIGTERM: %v", waitErr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the agent did not stop")
	}
	// SigIgn: a hex mask of ignored signals; SIGPIPE is bit 13.
	f := strings.Fields(testkit.ReadFile(sigIgn))
	if len(f) != 2 {
		t.Fatalf("SigIgn line %q", f)
	}
	mask, err := strconv.ParseUint(f[1], 16, 64)
	testkit.Must(t, err)
	if mask&(1<<(syscall.SIGPIPE-1)) != 0 {
		t.Errorf("the template command starts with SIGPIPE ignored (SigIgn %s)", f[1])
	}
}
