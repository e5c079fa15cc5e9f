package command

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/latchkey/latchkey/agent/config"
	"github.com/latchkey/latchkey/test/testkit"
)

// A command that outlives its timeout is killed with everything it started.
func TestCommandTimeoutKillsGroup(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child.pid")
	err := Run(context.Background(), &config.Exec{
		Command: []string{"/bin/sh", "-c", "sleep 60 & echo $! > " + pidFile + "; wait"},
		Timeout: 300 * time.Millisecond,
	})
	if err == nil || !strings.Contains(err.Error(), "killed after its timeout") {
		t.Fatalf("error = %v", err)
	}
	var pid int
	fmt.Sscan(testkit.ReadFile(pidFile), &pid)
	if pid == 0 {
		t.Fatal("no child pid")
	}
	testkit.Eventually(t, "the child killed", func() bool { return syscall.Kill(pid, 0) != nil })
}

func TestRunErrors(t *testing.T) {
	err := Run(context.Background(), &config.Exec{Command: []string{"/bin/sh", "-c", "echo out; exit 3"}, Timeout: 10 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "out") {
		t.Fatalf("error = %v", err)
	}
	if err := Run(context.Background(), &config.Exec{Command: []string{"/nonexistent/cmd"}}); err == nil {
		t.Fatal("a missing command ran")
	}
	if err := Run(context.Background(), &config.Exec{Command: []string{"/bin/true"}}); err != nil {
		t.Fatal(err)
	}
}
