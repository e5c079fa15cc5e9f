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

// Another user who can write a destination's directory plants a FIFO there
// (mkfifo d/.f && mv -T d/.f d/app.conf): the agent refuses that one
// destination, renders the others, and SIGTERM still stops it (issue 15).
func TestFIFOAtDestinationDoesNotBlock(t *testing.T) {
	dir := t.TempDir()
	rootToken := filepath.Join(dir, "root-token")
	testkit.WriteFile(t, rootToken, srv.RootToken)
	fifo := filepath.Join(dir, "app.conf")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other.conf")
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
  contents    = "A=1"
  destination = %q
}
template {
  contents    = "B=2"
  destination = %q
}
`, rootToken, filepath.Join(dir, "state"), fifo, other))
	var stderr syncBuffer
	cmd := agentCmd([]string{"-config", cfg})
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			cmd.Process.Kill()
			<-done
		}
	})
	deadline := time.Now().Add(30 * time.Second) // a bound against hanging
	for {
		b, _ := os.ReadFile(other)
		if string(b) == "B=2" && strings.Contains(stderr.String(), "not a regular file") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("other template not rendered or FIFO not refused:\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("the FIFO was replaced: %v %v", fi, err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
		_ = waitErr // the exit status after a failing template is the runner's business
	case <-time.After(30 * time.Second):
		t.Fatalf("agent did not stop on SIGTERM\n%s", stderr.String())
	}
}
