// Package testkit holds the small helpers every test package needs, so that
// no package keeps its own copy: failing on an error, polling for a
// condition, free loopback ports, an observed logger and file helpers.
package testkit

import (
	"net"
	"os"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"
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

// ObservedAt is Observed with the lowest level kept.
func ObservedAt(t testing.TB, level zapcore.Level) (*zap.Logger, *observer.ObservedLogs) {
	obs, logs := observer.New(level)
	return zap.New(zapcore.NewTee(zaptest.NewLogger(t).Core(), obs)), logs
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
