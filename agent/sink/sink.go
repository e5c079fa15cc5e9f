// Package sink writes the agent's token to files (`sink "file"`), only when
// the token changed, atomically, with the mode and owner the config names.
package sink

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"reflect"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/latchkey/latchkey/agent/auth"
	"github.com/latchkey/latchkey/agent/config"
	"github.com/latchkey/latchkey/internal/atomicfile"
	"github.com/latchkey/latchkey/internal/hclconf"
	"github.com/latchkey/latchkey/internal/owner"
	"github.com/latchkey/latchkey/internal/vaultclient"
)

// File is one file sink.
type File struct {
	Config config.Sink
	// Client reaches Vault for wrap_ttl (the token is set per call).
	Client *vaultclient.Client
	Logger *zap.Logger
	// MinBackoff and MaxBackoff bound retries of a failed write.
	MinBackoff, MaxBackoff time.Duration
	// Attempts, when above 0, is how many failed writes in a row Run makes
	// before its first successful one until it gives up and returns the
	// last error (exit_after_auth: a one-shot run must end, and not
	// successfully); 0 retries for as long as ctx lasts.
	Attempts int

	uid, gid int

	mu sync.Mutex
	// wrapped is what a wrap_ttl sink last wrote, nil before its first
	// write (see wrapping).
	wrapped *wrapping
}

// wrapping records that a wrap_ttl sink's file holds a wrapping of one
// token. A wrapped file cannot be compared with the token (each wrap
// makes a new wrapping token), and wrapping again is no no-op: every wrap
// is another live single-use copy of the token. So the sink remembers
// what it wrote, and a write of the same token is skipped while the file
// still holds exactly that. Hashes, not the token and the wrapping token:
// nothing secret is kept beyond what the holder already holds.
//
// The record lives in memory and is handed across reloads (Inherit). A
// restart starts without one; it also logs in anew, so its token is a new
// one, which is wrapped and written once, as a new token must be (the
// wrapping written before the restart stays valid until its wrap_ttl).
type wrapping struct {
	token, content [sha256.Size]byte
}

// New resolves the sink's owner and group (names or numbers) now, so that a
// typo is a config error rather than a retry loop.
func New(c config.Sink, client *vaultclient.Client, log *zap.Logger) (*File, error) {
	f := &File{Config: c, Client: client, Logger: log, MinBackoff: config.DefaultSinkMinBackoff, MaxBackoff: config.DefaultSinkMaxBackoff, uid: -1, gid: -1}
	var err error
	if c.Owner != "" {
		if f.uid, err = owner.UID(c.Owner); err == nil {
			err = config.CheckID(int64(f.uid))
		}
		if err != nil {
			return nil, fmt.Errorf("%s: sink %s: owner %q: %w", hclconf.Pos(c.KeyRange("owner")), c.Path, c.Owner, err)
		}
	}
	if c.Group != "" {
		if f.gid, err = owner.GID(c.Group); err == nil {
			err = config.CheckID(int64(f.gid))
		}
		if err != nil {
			return nil, fmt.Errorf("%s: sink %s: group %q: %w", hclconf.Pos(c.KeyRange("group")), c.Path, c.Group, err)
		}
	}
	return f, nil
}

// Write writes token to the sink once: wrapped first when wrap_ttl is set.
// A file that already holds token (wrap_ttl: the wrapping of token this
// sink, or the one it inherited from, wrote) is left alone. The error names the file, never the token. A sink path that holds a
// FIFO, device, socket or directory is an error (never read, never
// replaced); a symlink is replaced by the rename, never followed.
// Temporary files left by an interrupted earlier write are removed first.
func (f *File) Write(ctx context.Context, token string) error {
	content := token
	_, _ = atomicfile.RemoveStale(f.Config.Path, atomicfile.StaleGrace)
	if fi, err := os.Lstat(f.Config.Path); err == nil && !fi.Mode().IsRegular() && fi.Mode()&os.ModeSymlink == 0 {
		return fmt.Errorf("sink %s: %w, refused", f.Config.Path, atomicfile.ErrNotRegular)
	}
	if f.current(token) {
		return nil
	}
	if f.Config.WrapTTL > 0 {
		w, err := f.wrap(ctx, token)
		if err != nil {
			return fmt.Errorf("sink %s: wrap token: %w", f.Config.Path, err)
		}
		content = w
	}
	err := atomicfile.WriteFile(f.Config.Path, []byte(content), atomicfile.Options{Mode: f.mode(), UID: f.uid, GID: f.gid})
	if err != nil {
		if f.Config.WrapTTL > 0 {
			// The file may hold anything now: the next write wraps again.
			f.setWrapped(nil)
		}
		// atomicfile's error names the file: "sink: write /run/x: …".
		return fmt.Errorf("sink: %w", err)
	}
	if f.Config.WrapTTL > 0 {
		f.setWrapped(&wrapping{token: sha256.Sum256([]byte(token)), content: sha256.Sum256([]byte(content))})
	}
	return nil
}

// Inherit takes over what prev, the sink of the same path in the
// configuration a reload replaces, knows it wrote, when prev's config is
// the same (positions aside): without it a wrap_ttl sink would wrap the
// kept token again at every SIGHUP and rewrite its file, leaving one more
// live wrapping token each time. A sink of another config knows nothing.
func (f *File) Inherit(prev *File) {
	if prev == nil || prev == f || !sameConfig(f.Config, prev.Config) {
		return
	}
	prev.mu.Lock()
	w := prev.wrapped
	prev.mu.Unlock()
	f.setWrapped(w)
}

// sameConfig reports whether b configures the sink as a does.
func sameConfig(a, b config.Sink) bool {
	a.Range, a.Keys = hclconf.Range{}, nil
	b.Range, b.Keys = hclconf.Range{}, nil
	return reflect.DeepEqual(a, b)
}

func (f *File) setWrapped(w *wrapping) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.wrapped = w
}

// current reports whether the file already holds token (wrap_ttl: the
// wrapping of token this sink wrote, see wrapping) with the wanted mode
// and owner (after a reload or restart), so it is not rewritten.
func (f *File) current(token string) bool {
	want := []byte(token)
	if f.Config.WrapTTL > 0 {
		f.mu.Lock()
		w := f.wrapped
		f.mu.Unlock()
		if w == nil || w.token != sha256.Sum256(want) {
			return false
		}
		return f.holds(func(b []byte) bool { return sha256.Sum256(b) == w.content }, maxWrapInfo)
	}
	return f.holds(func(b []byte) bool { return string(b) == token }, int64(len(want)))
}

// keepMode reports mode = 0000, which Vault Agent documents as "leave the
// file's mode alone". Written as the mode itself (atomicfile takes 0 for
// its default, 0600), it gave the token another mode than the file had,
// and a restart rewrote a file that already held the token.
func (f *File) keepMode() bool { return f.Config.Mode.Perm() == 0 }

// mode is the mode to write the file with: the configured one; with
// mode = 0000 the existing file's, else (no file, or one nobody may read)
// the default 0640.
func (f *File) mode() os.FileMode {
	if !f.keepMode() {
		return f.Config.Mode.Perm()
	}
	if fi, err := os.Lstat(f.Config.Path); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm() != 0 {
		return fi.Mode().Perm()
	}
	return config.DefaultSinkMode
}

// maxWrapInfo bounds what is read of a wrap_ttl sink's file: the wrap
// info JSON is a few hundred bytes.
const maxWrapInfo = 64 << 10

// holds reports whether the file's content, read up to limit bytes (and
// one more, to see a longer file), is what match wants, with the wanted
// mode and owner.
func (f *File) holds(match func([]byte) bool, limit int64) bool {
	// Never through a symlink, never blocking on a FIFO swapped in.
	file, fi, err := atomicfile.OpenExisting(f.Config.Path)
	if err != nil {
		return false
	}
	defer file.Close()
	if f.keepMode() {
		if fi.Mode().Perm() == 0 {
			return false // a mode of 0000 is put right (see mode)
		}
	} else if fi.Mode().Perm() != f.Config.Mode.Perm() {
		return false
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if (f.uid >= 0 && int(st.Uid) != f.uid) || (f.gid >= 0 && int(st.Gid) != f.gid) {
			return false
		}
	}
	b, err := io.ReadAll(io.LimitReader(file, limit+1))
	return err == nil && int64(len(b)) <= limit && match(b)
}

// wrap response-wraps token and returns the wrap info as JSON, the form
// Vault Agent writes (its "token" field is the wrapping token).
func (f *File) wrap(ctx context.Context, token string) (string, error) {
	c, err := auth.Clone(f.Client, token, "")
	if err != nil {
		return "", err
	}
	c.SetWrapTTL(f.Config.WrapTTL.String())
	s, err := c.Write(ctx, "sys/wrapping/wrap", map[string]any{"token": token})
	if err != nil {
		return "", err
	}
	if s == nil || s.WrapInfo == nil {
		return "", fmt.Errorf("vault returned no wrap info")
	}
	b, err := json.Marshal(s.WrapInfo)
	return string(b), err
}

// Run writes each new token of h until ctx ends (nil). A failed write is
// logged and retried with backoff; a newer token replaces the one being
// retried. ready is called once, after the first successful write. With
// Attempts set, Run returns the error of the last write once that many
// failed in a row before the first success.
func (f *File) Run(ctx context.Context, h *auth.Holder, ready func()) error {
	var written uint64
	failed := 0
	b := &auth.Backoff{Min: f.MinBackoff, Max: f.MaxBackoff}
	for {
		changed := h.Changed()
		tok, gen := h.Get()
		if tok != "" && gen != written {
			// A reload or restart finds the token already there; it is
			// then left alone, and the log must not say it was written.
			already := f.current(tok)
			if err := f.Write(ctx, tok); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				failed++
				if f.Attempts > 0 && ready != nil && failed >= f.Attempts {
					f.Logger.Error("sink write failed; giving up", zap.String("path", f.Config.Path), zap.Error(err), zap.Int("attempts", failed))
					return fmt.Errorf("sink %s not written after %d attempts: %w", f.Config.Path, failed, err)
				}
				wait := b.Next()
				f.Logger.Error("sink write failed", zap.String("path", f.Config.Path), zap.Error(err), zap.Duration("retry_in", wait))
				select {
				case <-ctx.Done():
					return nil
				case <-changed:
				case <-time.After(wait):
				}
				continue
			}
			failed = 0
			b.Reset()
			written = gen
			if already {
				f.Logger.Debug("sink already holds the token; not rewritten", zap.String("path", f.Config.Path))
			} else {
				f.Logger.Info("token written to sink", zap.String("path", f.Config.Path))
			}
			if ready != nil {
				ready()
				ready = nil
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
	}
}
