package testkit

import (
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// NotifySocket listens like systemd does (a unix datagram socket to name
// in NOTIFY_SOCKET) and collects every state sent, one per line.
type NotifySocket struct {
	Path string

	mu   sync.Mutex
	msgs []string
}

// ListenNotify starts a NotifySocket, closed when the test ends.
func ListenNotify(t testing.TB) *NotifySocket {
	t.Helper()
	n := &NotifySocket{Path: filepath.Join(t.TempDir(), "notify")}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: n.Path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			k, err := conn.Read(buf)
			if err != nil {
				return
			}
			n.mu.Lock()
			n.msgs = append(n.msgs, strings.Split(strings.TrimSpace(string(buf[:k])), "\n")...)
			n.mu.Unlock()
		}
	}()
	return n
}

// Messages returns a copy of what was received so far.
func (n *NotifySocket) Messages() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.msgs...)
}

// Count returns how many states were received.
func (n *NotifySocket) Count() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.msgs)
}

// WaitFor returns the index of the first state from index from that starts
// with prefix, waiting up to 60 s; it fails the test after.
func (n *NotifySocket) WaitFor(t testing.TB, prefix string, from int) int {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		msgs := n.Messages()
		for i := from; i < len(msgs); i++ {
			if strings.HasPrefix(msgs[i], prefix) {
				return i
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q after message %d; got %q", prefix, from, msgs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
