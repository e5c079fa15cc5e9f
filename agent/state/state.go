// Package state keeps what the agent must remember across restarts, under
// the state directory (default /var/lib/latchkey, mode 0700), one JSON file
// per record, written atomically with mode 0600.
package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"go.uber.org/zap"

	"github.com/latchkey/latchkey/internal/atomicfile"
)

// Dir is a state directory. It must be this process's user's: a directory
// or record owned by another user is refused; a looser mode is tightened
// (0700, 0600) and, with Logger, logged.
type Dir struct {
	Path string
	// Logger, when set, hears about modes tightened.
	Logger *zap.Logger
}

// ErrCorrupt is wrapped by Load's error when the record was read but is no
// record (not JSON, or too large): what it held is lost either way. Any
// other error (the file could not be opened or read) may pass: the record
// may still be good.
var ErrCorrupt = errors.New("corrupt")

// maxRecord bounds a state record: they are a few hundred bytes.
const maxRecord = 1 << 20

// checkDir refuses a state directory that is not a directory (a symlink
// included) or not owned by this process's user, and tightens its mode to
// 0700. A missing directory is fine (Save creates it).
func (d Dir) checkDir() error {
	fi, err := os.Lstat(d.Path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("state dir %s: %w", d.Path, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("state dir %s: not a directory (%s), refused", d.Path, fi.Mode().Type())
	}
	if err := ownedByUs(fi); err != nil {
		return fmt.Errorf("state dir %s: %w", d.Path, err)
	}
	if fi.Mode().Perm() != 0o700 {
		if err := os.Chmod(d.Path, 0o700); err != nil {
			return fmt.Errorf("state dir %s: %w", d.Path, err)
		}
		d.logTightened(d.Path, fi.Mode().Perm(), 0o700)
	}
	return nil
}

// ownedByUs refuses fi when this process's user does not own it.
func ownedByUs(fi os.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("owned by uid %d, not by this agent's uid %d: refused", st.Uid, os.Geteuid())
	}
	return nil
}

func (d Dir) logTightened(p string, was, now os.FileMode) {
	if d.Logger != nil {
		d.Logger.Warn("state mode tightened", zap.String("path", p),
			zap.String("was", fmt.Sprintf("%#o", was)), zap.String("now", fmt.Sprintf("%#o", now)))
	}
}

// safeName reports whether name is one or more ASCII letters, digits, ".",
// "_" and "-": a record's file name, never a path.
func safeName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Load reads record name into v. It returns (false, nil) when there is no
// such record, (true, nil) when v was filled, and an error for an unreadable
// or corrupt file.
func (d Dir) Load(name string, v any) (bool, error) {
	p, err := d.path(name)
	if err != nil {
		return false, err
	}
	if err := d.checkDir(); err != nil {
		return false, err
	}
	// Never through a symlink, never blocking on a FIFO.
	f, fi, err := atomicfile.OpenExisting(p)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("state %s: %w", p, err)
	}
	defer f.Close()
	if err := ownedByUs(fi); err != nil {
		return false, fmt.Errorf("state %s: %w", p, err)
	}
	if fi.Mode().Perm() != 0o600 {
		if err := f.Chmod(0o600); err != nil {
			return false, fmt.Errorf("state %s: %w", p, err)
		}
		d.logTightened(p, fi.Mode().Perm(), 0o600)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxRecord+1))
	if err != nil {
		return false, fmt.Errorf("state %s: %w", p, err)
	}
	if len(b) > maxRecord {
		return false, fmt.Errorf("state %s: %w: larger than %d bytes, refused", p, ErrCorrupt, maxRecord)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("state %s: %w: %w", p, ErrCorrupt, err)
	}
	return true, nil
}

// Save writes record name atomically (0600), creating the directory (0700)
// if needed.
func (d Dir) Save(name string, v any) error {
	p, err := d.path(name)
	if err != nil {
		return err
	}
	if err := d.checkDir(); err != nil {
		return err
	}
	if err := atomicfile.MkdirAll(d.Path, atomicfile.Options{Mode: 0o700, UID: -1, GID: -1}); err != nil {
		return fmt.Errorf("state dir %s: %w", d.Path, err)
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(p, append(b, '\n'), atomicfile.Options{Mode: 0o600, UID: -1, GID: -1}); err != nil {
		return fmt.Errorf("state: %w", err) // "state: write path: …"
	}
	return nil
}

// Remove deletes record name; a record that is not there is no error.
func (d Dir) Remove(name string) error {
	p, err := d.path(name)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("state: %w", err) // "state: write path: …"
	}
	return nil
}

// Names returns the names of the records whose name starts with prefix,
// sorted; none when the directory does not exist yet.
func (d Dir) Names(prefix string) ([]string, error) {
	if d.Path == "" {
		return nil, errors.New("state directory is not set")
	}
	entries, err := os.ReadDir(d.Path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state dir %s: %w", d.Path, err)
	}
	var out []string
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if ok && e.Type().IsRegular() && strings.HasPrefix(name, prefix) && safeName(name) {
			out = append(out, name)
		}
	}
	return out, nil
}

func (d Dir) path(name string) (string, error) {
	if d.Path == "" {
		return "", errors.New("state directory is not set")
	}
	if !safeName(name) {
		return "", fmt.Errorf("state record name %q", name)
	}
	return filepath.Join(d.Path, name+".json"), nil
}
