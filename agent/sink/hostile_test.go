package sink

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/latchkey/latchkey/agent/config"
)

// A FIFO planted at the sink path (mkfifo d/.f && mv -T d/.f d/token) is
// refused at once, never read (which would block), and left as it is.
func TestFIFOAtSinkRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	if err := syscall.Mkfifo(path, 0o640); err != nil {
		t.Fatal(err)
	}
	f, err := New(config.Sink{Path: path, Mode: 0o640}, nil, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- f.Write(context.Background(), "hvs.secret") }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not a regular file") || strings.Contains(err.Error(), "hvs.secret") {
			t.Fatalf("error = %v, want the FIFO refused without the token", err)
		}
	case <-time.After(30 * time.Second): // a bound against hanging, not a speed check
		t.Fatal("Write blocked on a FIFO")
	}
	if fi, err := os.Lstat(path); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("the FIFO was replaced: %v %v", fi, err)
	}
}

// Stale temporary files of killed writes are removed by the next write.
func TestSinkRemovesStaleTempFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "token")
	stale := filepath.Join(dir, ".token.tmp-123")
	if err := os.WriteFile(stale, []byte("hvs.partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	os.Chtimes(stale, old, old)
	f, err := New(config.Sink{Path: path, Mode: 0o640}, nil, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Write(context.Background(), "hvs.x"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(stale); err == nil {
		t.Error("stale temporary file kept")
	}
}
