// Package command runs a template's command after its destination changed.
package command

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"syscall"

	"github.com/latchkey/latchkey/agent/config"
)

// Run runs a template's command after its destination changed, in a
// process group of its own so that a timeout kills everything it started.
// The error (non-zero exit, timeout) carries the tail of its output.
func Run(ctx context.Context, e *config.Exec) error {
	timeout := e.Timeout
	if timeout <= 0 {
		timeout = config.DefaultCommandTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.Command(e.Command[0], e.Command[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("command %q: %w", e.Command, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("command %q: %w: %s", e.Command, err, tail(out.Bytes()))
		}
		return nil
	case <-ctx.Done():
		// Kill the whole group: a shell's children too.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("command %q: killed after its timeout of %s", e.Command, timeout)
		}
		return ctx.Err()
	}
}

func tail(b []byte) string {
	const n = 512
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(bytes.TrimSpace(b))
}
