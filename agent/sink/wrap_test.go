package sink

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/latchkey/latchkey/agent/config"
	"github.com/latchkey/latchkey/internal/hclconf"
	"github.com/latchkey/latchkey/internal/vaultclient"
)

// A wrap_ttl sink wraps a token once: writing the same token again — by
// the same sink, or by the sink that replaces it on a reload with the same
// config (Inherit) — leaves the file alone and asks Vault for no new
// wrapping. A new token, a changed sink config or a file changed behind
// the agent's back is wrapped and written again.
func TestWrappedSinkWrapsATokenOnce(t *testing.T) {
	var wraps atomic.Int32
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/sys/wrapping/wrap" {
			http.NotFound(w, r)
			return
		}
		n := wraps.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"wrap_info":{"token":"hvs.wrapping-%d","ttl":300,"creation_path":"sys/wrapping/wrap"}}`, n)
	}))
	defer hs.Close()
	client, err := vaultclient.New(vaultclient.Config{Address: hs.URL})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "wrapped")
	cfg := config.Sink{Path: path, Mode: 0o600, WrapTTL: 5 * time.Minute, Range: hclconf.Range{Filename: "a.hcl"}}
	newSink := func(c config.Sink) *File {
		f, err := New(c, client, zaptest.NewLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	write := func(f *File, tok string) {
		t.Helper()
		if err := f.Write(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
	}
	first := newSink(cfg)
	write(first, "hvs.one")
	content := readFile(path)
	past := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := os.Chtimes(path, past, past); err != nil {
		t.Fatal(err)
	}
	unchanged := func(what string, wantWraps int32) {
		t.Helper()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if n := wraps.Load(); n != wantWraps || !fi.ModTime().Equal(past) || readFile(path) != content {
			t.Errorf("%s: %d wraps (want %d), mtime %s (was %s)", what, n, wantWraps, fi.ModTime(), past)
		}
	}
	write(first, "hvs.one")
	unchanged("the same sink again", 1)

	moved := cfg
	moved.Range = hclconf.Range{Filename: "b.hcl", Start: hclconf.Position{Line: 9}}
	reloaded := newSink(moved) // the same config at another position
	reloaded.Inherit(first)
	write(reloaded, "hvs.one")
	unchanged("the sink of a reload", 1)

	fresh := newSink(cfg) // a restart: nothing is known
	write(fresh, "hvs.one")
	if n := wraps.Load(); n != 2 {
		t.Errorf("a sink that knows nothing: %d wraps, want 2", n)
	}

	other := cfg
	other.Mode = 0o640
	changed := newSink(other)
	changed.Inherit(fresh)
	write(changed, "hvs.one")
	if n := wraps.Load(); n != 3 {
		t.Errorf("a changed sink config: %d wraps, want 3", n)
	}

	again := newSink(other)
	again.Inherit(changed)
	write(again, "hvs.two")
	if n := wraps.Load(); n != 4 {
		t.Errorf("a new token: %d wraps, want 4", n)
	}
	if err := os.WriteFile(path, []byte("tampered"), 0o640); err != nil {
		t.Fatal(err)
	}
	write(again, "hvs.two")
	if n := wraps.Load(); n != 5 || readFile(path) == "tampered" {
		t.Errorf("a file changed behind the agent's back: %d wraps, want 5", n)
	}
}
