package command

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
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

// Stop ends a command as a stopping service should: SIGTERM to the whole
// process group, SIGKILL after the grace period (or at the timeout, if
// sooner) for one that ignores it; a command that already ended is left as
// it ended.
func TestStop(t *testing.T) {
	tests := []struct {
		name    string
		script  string // run by /bin/sh with $1 the marker file
		timeout time.Duration
		grace   time.Duration
		// stop waits for "start" in the marker first.
		wantErr    string // substring; "" means nil
		wantMarker string // lines the marker holds at the end
	}{
		{
			name:       "exits on SIGTERM",
			script:     `trap 'echo term >> "$1"; exit 143' TERM; echo start >> "$1"; while :; do sleep 0.05; done`,
			timeout:    time.Minute,
			grace:      time.Minute,
			wantErr:    "stopped by the agent before its end (SIGTERM)",
			wantMarker: "start\nterm\n",
		},
		{
			name:       "exit 0 after SIGTERM still did not run to its end",
			script:     `trap 'echo term >> "$1"; exit 0' TERM; echo start >> "$1"; while :; do sleep 0.05; done`,
			timeout:    time.Minute,
			grace:      time.Minute,
			wantErr:    "stopped by the agent before its end (SIGTERM)",
			wantMarker: "start\nterm\n",
		},
		{
			name:       "ignores SIGTERM: SIGKILL after the grace period",
			script:     `trap 'echo term >> "$1"' TERM; echo start >> "$1"; while :; do sleep 0.05; done`,
			timeout:    time.Minute,
			grace:      300 * time.Millisecond,
			wantErr:    "SIGTERM, then SIGKILL after a grace period of 300ms",
			wantMarker: "start\nterm\n",
		},
		{
			name:       "the timeout bounds the grace period",
			script:     `trap 'echo term >> "$1"' TERM; echo start >> "$1"; while :; do sleep 0.05; done`,
			timeout:    2 * time.Second,
			grace:      time.Hour,
			wantErr:    "SIGKILL after a grace period of",
			wantMarker: "start\nterm\n",
		},
		{
			name:       "already ended",
			script:     `echo start >> "$1"; echo end >> "$1"`,
			timeout:    time.Minute,
			grace:      time.Minute,
			wantMarker: "start\nend\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			marker, children := filepath.Join(dir, "marker"), filepath.Join(dir, "children")
			// A background child of the shell shows that the group is signalled.
			script := "sleep 3600 >/dev/null 2>&1 & echo $! > " + children + "; " + tc.script
			p, err := Start(&config.Exec{Command: []string{"/bin/sh", "-c", script, "sh", marker}, Timeout: tc.timeout})
			testkit.Must(t, err)
			t.Cleanup(func() { p.Stop(0) })
			testkit.Eventually(t, "the command started", func() bool { return strings.HasPrefix(testkit.ReadFile(marker), "start\n") })
			if tc.wantErr == "" {
				<-p.Done()
			}
			done := make(chan struct{})
			go func() { p.Stop(tc.grace); close(done) }()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("Stop did not return")
			}
			err = p.Err()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("error = %v, want nil", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("error = %v, want it to say %q", err, tc.wantErr)
			case tc.wantErr != "" && !errors.Is(err, ErrStopped):
				t.Errorf("error %v does not wrap ErrStopped", err)
			}
			if got := testkit.ReadFile(marker); got != tc.wantMarker {
				t.Errorf("marker = %q, want %q", got, tc.wantMarker)
			}
			var pid int
			fmt.Sscan(testkit.ReadFile(children), &pid)
			if pid == 0 {
				t.Fatal("no child pid")
			}
			if tc.wantErr != "" {
				testkit.Eventually(t, "the group's child ended", func() bool { return syscall.Kill(pid, 0) != nil })
			} else {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		})
	}
}

// Run stops its command when ctx ends: SIGTERM first, so that a command
// given time ends cleanly.
func TestRunStopsOnContextEnd(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "marker")
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- Run(ctx, &config.Exec{
			Command: []string{"/bin/sh", "-c", `trap 'echo term >> "$1"; exit 1' TERM; echo start >> "$1"; while :; do sleep 0.05; done`, "sh", marker},
			Timeout: time.Minute,
		})
	}()
	testkit.Eventually(t, "the command started", func() bool { return testkit.ReadFile(marker) == "start\n" })
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrStopped) {
			t.Errorf("error = %v, want ErrStopped", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if got := testkit.ReadFile(marker); got != "start\nterm\n" {
		t.Errorf("marker = %q: no SIGTERM seen", got)
	}
}

// Adopt follows a command it did not start (here a process of the test's
// own, in a group of its own, as Start makes them): its end is seen through
// /proc and reported as ErrAdopted (how it ended is not known); Stop and
// the timeout, counted from its start, signal its group; a process gone, or
// a pid whose identity changed, is not adopted.
func TestAdopt(t *testing.T) {
	old := adoptPoll
	adoptPoll = 10 * time.Millisecond
	t.Cleanup(func() { adoptPoll = old })
	start := func(t *testing.T, script string) (pid int, id string) {
		cmd := exec.Command("/bin/sh", "-c", script)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		testkit.Must(t, cmd.Start())
		t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
		// Reaped as init reaps an orphan; a zombie counts as gone.
		go cmd.Wait()
		id = Identity(cmd.Process.Pid)
		if id == "" {
			t.Fatal("no identity for a running process")
		}
		return cmd.Process.Pid, id
	}
	tests := map[string]struct {
		script  string
		timeout time.Duration
		stop    bool
		wantErr error  // errors.Is
		want    string // substring
	}{
		"ends by itself": {script: "sleep 0.2", timeout: time.Minute, wantErr: ErrAdopted},
		"stopped":        {script: "sleep 60", timeout: time.Minute, stop: true, wantErr: ErrStopped, want: "(SIGTERM)"},
		"timeout":        {script: "sleep 60", timeout: 300 * time.Millisecond, want: "killed after its timeout of 300ms"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			pid, id := start(t, tc.script)
			p := Adopt([]string{"/bin/sh"}, pid, id, time.Now(), tc.timeout)
			if p == nil {
				t.Fatal("a running command not adopted")
			}
			if tc.stop {
				p.Stop(5 * time.Second)
			}
			select {
			case <-p.Done():
			case <-time.After(20 * time.Second):
				t.Fatal("the adopted command's end not seen")
			}
			err := p.Err()
			if (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) || !strings.Contains(fmt.Sprint(err), tc.want) {
				t.Errorf("Err = %v, want %v / %q", err, tc.wantErr, tc.want)
			}
			if Identity(pid) != "" {
				t.Errorf("the process is still running after Done")
			}
		})
	}
	pid, id := start(t, "sleep 60")
	if Adopt(nil, pid, id+"0", time.Now(), time.Minute) != nil {
		t.Error("a pid whose start time differs (reused) was adopted")
	}
	if Adopt(nil, 0, "", time.Now(), time.Minute) != nil || Adopt(nil, 1, Identity(1), time.Now(), time.Minute) != nil {
		t.Error("a record without a process, or pid 1, was adopted")
	}
}
