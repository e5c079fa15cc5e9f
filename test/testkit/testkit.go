// Package testkit holds the small helpers every test package needs, so that
// no package keeps its own copy: failing on an error, polling for a
// condition, free loopback ports, an observed logger, file helpers, and
// the secret scan's capture of logs and secrets (package secretscan).
package testkit

import (
	"bytes"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/latchkey/latchkey/test/testkit/secretscan"
)

// Must fails the test at once when err is not nil.
func Must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// EventuallyTimeout is how long Eventually polls. It is generous on purpose:
// tests never assert on time, and CI runs on two busy cores.
const EventuallyTimeout = 30 * time.Second

// Eventually polls cond every 50 ms until it holds, and fails the test
// naming what it waited for when it still does not after EventuallyTimeout.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(EventuallyTimeout)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Must(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Observed returns a logger that writes to the test's log and keeps every
// entry at info or above for assertions.
func Observed(t testing.TB) (*zap.Logger, *observer.ObservedLogs) {
	return ObservedAt(t, zap.InfoLevel)
}

// ObservedAt is Observed with the lowest level kept. Every entry, down to
// debug, is also captured for the package's secret scan (secretscan).
func ObservedAt(t testing.TB, level zapcore.Level) (*zap.Logger, *observer.ObservedLogs) {
	obs, logs := observer.New(level)
	return zap.New(zapcore.NewTee(zaptest.NewLogger(t).Core(), obs, scanCore(t))), logs
}

// scanCore is a debug-level JSON core whose output the package's secret
// scan reads when the tests are done.
func scanCore(t testing.TB) zapcore.Core {
	buf := &Buffer{}
	secretscan.Capture(t.Name()+"'s observed logger", buf.String)
	return zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewDevelopmentEncoderConfig()), zapcore.AddSync(buf), zapcore.DebugLevel)
}

// Buffer is an io.Writer safe for concurrent use whose content can be read
// while it is written to: a process's or a logger's output.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// WriteFile writes s to p with mode 0600, failing the test on an error.
func WriteFile(t testing.TB, p, s string) {
	t.Helper()
	Must(t, os.WriteFile(p, []byte(s), 0o600))
}

// ReadFile returns p's content, or "" when it cannot be read (a file that
// does not exist yet, in a poll).
func ReadFile(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	return string(b)
}

// ScanOutput captures what cmd writes to its stdout and stderr (besides
// where they already go) for the package's secret scan: call it after
// setting them, before Start or Run.
func ScanOutput(t testing.TB, cmd *exec.Cmd) {
	buf := &Buffer{}
	secretscan.Capture(t.Name()+"'s "+filepath.Base(cmd.Path), buf.String)
	wrap := func(w io.Writer) io.Writer {
		if w == nil {
			return buf
		}
		return io.MultiWriter(w, buf)
	}
	if cmd.Stdout == cmd.Stderr {
		// One writer for both stays one (exec then uses one pipe).
		cmd.Stdout = wrap(cmd.Stdout)
		cmd.Stderr = cmd.Stdout
		return
	}
	cmd.Stdout, cmd.Stderr = wrap(cmd.Stdout), wrap(cmd.Stderr)
}

// Chown gives path to uid and gid, leaving either unchanged when it is 0
// (the unset field of a test table: no table gives a file to root).
func Chown(t testing.TB, path string, uid, gid int) {
	t.Helper()
	orUnchanged := func(id int) int {
		if id == 0 {
			return -1
		}
		return id
	}
	Must(t, os.Chown(path, orUnchanged(uid), orUnchanged(gid)))
}
