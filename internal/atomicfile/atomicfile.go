// Package atomicfile writes files so that readers see either the old content
// or the new one, never a mix, and never a file whose mode came from the
// umask. Sinks, templates, state files and SSH trust files all use it.
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
)

// Options says how the written file must end up.
type Options struct {
	// Mode is applied with fchmod, so the umask never changes it.
	// The zero value means 0600: a file that may hold a secret stays private
	// unless the caller asks otherwise.
	Mode os.FileMode
	// UID and GID set the owner with fchown; -1 leaves that id as the
	// process's own. Use Owner() to fill both with -1.
	UID, GID int
	// InPlaceFallback rewrites the existing file in place when rename(2)
	// cannot replace it (EBUSY on a bind-mounted file, EXDEV): the inode is
	// kept, so a bind mount still shows the new content. Without it such a
	// destination is an error and the old file is kept.
	InPlaceFallback bool
	// Dirs, when set, defers the fsync of the directory after the rename:
	// the directory is added to Dirs instead, and the file is durable only
	// once the caller's Dirs.Sync has returned without an error for it.
	// Writes of many files into one directory then cost one directory
	// fsync, not one each.
	Dirs *Dirs
}

// Owner returns Options with the given mode and no owner change.
func Owner(mode os.FileMode) Options { return Options{Mode: mode, UID: -1, GID: -1} }

func (o Options) mode() os.FileMode {
	if o.Mode == 0 {
		return 0o600
	}
	return o.Mode
}

// WriteFile replaces path with data. See Write.
func WriteFile(path string, data []byte, opts Options) error {
	return Write(path, opts, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// Write replaces path with what fill writes: to a temporary file in the same
// directory, which is chmod-ed, chown-ed, fsynced, renamed over path, and
// then the directory is fsynced so the rename survives a crash (or, with
// opts.Dirs, left for the caller's Dirs.Sync).
//
// It returns nil when path holds the new content with the asked mode and
// owner. On any error (fill failing midway included) path is untouched and
// the temporary file is removed.
//
// The temporary file is flock-ed from its creation until after the rename:
// a process killed midway (SIGKILL, OOM) leaves it unlocked, which is how
// RemoveStale tells such a leftover from a write in flight.
func Write(path string, opts Options, fill func(io.Writer) error) (err error) {
	// One cleaned path for the temporary file, the rename and the fsync:
	// "a/../b/out" names the same directory for all three.
	path = filepath.Clean(path)
	dir := filepath.Dir(path)
	unlock := opts.Dirs.lockEntries()
	tmp, err := os.CreateTemp(dir, tempPrefix(path)+"*")
	unlock()
	if err != nil {
		// Not the random name CreateTemp tried: the directory it was in.
		if pe, ok := err.(*fs.PathError); ok {
			err = fmt.Errorf("create a temporary file in %s: %w%s", dir, pe.Err, sandboxHint(pe.Err))
		}
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmpName := tmp.Name()
	closed := false
	defer func() {
		if err != nil {
			os.Remove(tmpName)
		}
		if !closed {
			tmp.Close()
		}
	}()
	// Best effort: where flock is not supported (some network file
	// systems) RemoveStale cannot lock the file either and leaves it alone.
	_ = lockFile(tmp)
	if err := fill(tmp); err != nil {
		return fmt.Errorf("write %s: %w", path, ofTemp(err, tmpName))
	}
	if err := setAttrs(tmp, opts); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: fsync: %w", path, bare(err, tmpName))
	}
	// Renamed while still open, so still locked: RemoveStale never takes a
	// complete temporary file for a leftover just before its rename.
	unlock = opts.Dirs.lockEntries()
	err = os.Rename(tmpName, path)
	unlock()
	if err != nil {
		if !opts.InPlaceFallback || !(errors.Is(err, syscall.EBUSY) || errors.Is(err, syscall.EXDEV)) {
			return fmt.Errorf("write %s: %w", path, err)
		}
		if err := copyInPlace(tmpName, path, opts); err != nil {
			return fmt.Errorf("write %s in place: %w", path, err)
		}
		os.Remove(tmpName)
		return nil
	}
	// The content is fsynced and in place: a failing close changes nothing.
	closed = true
	_ = tmp.Close()
	if opts.Dirs != nil {
		opts.Dirs.add(dir)
		return nil
	}
	if err := SyncDir(dir); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// lockFile takes an exclusive flock on f, a file only this process has
// open yet; it is released when f is closed or the process dies.
func lockFile(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = syscall.Flock(int(fd), syscall.LOCK_EX|syscall.LOCK_NB) }); err != nil {
		return err
	}
	return ferr
}

// sandboxHint is said after a read-only file system under systemd (its
// INVOCATION_ID is set), where it is most often the unit's sandbox, not a
// mount: ProtectSystem=strict leaves only ReadWritePaths= writable.
func sandboxHint(err error) string {
	if errors.Is(err, syscall.EROFS) && os.Getenv("INVOCATION_ID") != "" {
		return " (under systemd: a directory outside the unit's ReadWritePaths= is read-only with ProtectSystem=strict)"
	}
	return ""
}

// ofTemp drops the temporary file's name from err when err is the
// *fs.PathError of an operation on it (tmp): the caller's message already
// names the destination, and "write x: write .x.tmp-123: no space left on
// device" names the same write twice, the second time by a name nobody
// knows. Its operation is kept unless it is the write itself ("sync: …").
// Any other error (one naming another file, or wrapped) is returned as is.
func ofTemp(err error, tmp string) error {
	pe, ok := err.(*fs.PathError)
	if !ok || pe.Path != tmp {
		return err
	}
	if pe.Op == "write" {
		return pe.Err
	}
	return fmt.Errorf("%s: %w", pe.Op, pe.Err)
}

// bare returns the cause of err when err is the *fs.PathError of an
// operation on the file named name, whose operation the caller's message
// names; any other error as is.
func bare(err error, name string) error {
	if pe, ok := err.(*fs.PathError); ok && pe.Path == name {
		return pe.Err
	}
	return err
}

// setAttrs sets the mode and the owner of f, a file whose name the caller's
// message gives (the errors do not repeat it).
func setAttrs(f *os.File, opts Options) error {
	if err := f.Chmod(opts.mode()); err != nil {
		return fmt.Errorf("chmod %04o: %w", opts.mode(), bare(err, f.Name()))
	}
	if opts.UID != -1 || opts.GID != -1 {
		if err := f.Chown(opts.UID, opts.GID); err != nil {
			return fmt.Errorf("chown %d:%d: %w", opts.UID, opts.GID, bare(err, f.Name()))
		}
	}
	return nil
}

// copyInPlace overwrites dst's content with src's without replacing dst's
// inode. A crash midway can leave dst partly written; it is only used when
// an atomic rename is impossible.
func copyInPlace(src, dst string, opts Options) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	// Never through a symlink or into a FIFO or device swapped in since.
	out, err := os.OpenFile(dst, os.O_WRONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer out.Close()
	if fi, err := out.Stat(); err != nil {
		return err
	} else if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is a %s: %w", dst, typeName(fi.Mode()), ErrNotRegular)
	}
	// Mode and owner first: the new content is never readable under the
	// old, possibly looser, ones — nor left so when they cannot be set.
	if err := setAttrs(out, opts); err != nil {
		return err
	}
	if err := out.Truncate(0); err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		return err
	}
	return out.Sync()
}

// SyncDir fsyncs a directory so that entries created or renamed in it are
// durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	return nil
}

// Dirs collects the directories of writes whose directory fsync was
// deferred (Options.Dirs). An fsync of a directory makes durable every
// rename into it that completed before the fsync began, so one Sync after
// a batch of writes has returned covers all of them. It is safe for
// concurrent use by the writes of a batch.
type Dirs struct {
	mu   sync.Mutex
	dirs []string
	// entries serialises the batch's creates and renames: they take the
	// directory's lock in the kernel anyway, where concurrent writers spin
	// on it (CPU burnt for nothing); here they wait parked. The fsyncs,
	// the slow part, still overlap.
	entries sync.Mutex
}

// lockEntries takes d's entries lock and returns its unlock; on a nil d
// (no batch) it does nothing.
func (d *Dirs) lockEntries() (unlock func()) {
	if d == nil {
		return func() {}
	}
	d.entries.Lock()
	return d.entries.Unlock
}

func (d *Dirs) add(dir string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !slices.Contains(d.dirs, dir) {
		d.dirs = append(d.dirs, dir)
	}
}

// Sync fsyncs each collected directory once, forgets them, and returns
// the directories whose fsync failed with their errors (nil when none
// did). Call it only after every write of the batch has returned.
func (d *Dirs) Sync() map[string]error {
	d.mu.Lock()
	dirs := d.dirs
	d.dirs = nil
	d.mu.Unlock()
	var failed map[string]error
	for _, dir := range dirs {
		if err := SyncDir(dir); err != nil {
			if failed == nil {
				failed = map[string]error{}
			}
			failed[dir] = err
		}
	}
	return failed
}

// MkdirAll creates dir (and parents) and then sets dir's own mode and owner
// explicitly, whatever the umask: for state directories such as
// /var/lib/latchkey. A zero Mode means 0700.
func MkdirAll(dir string, opts Options) error {
	mode := opts.Mode
	if mode == 0 {
		mode = 0o700
	}
	if err := os.MkdirAll(dir, mode); err != nil {
		return fmt.Errorf("create dir %s: %w", dir, err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		return fmt.Errorf("chmod dir %s: %w", dir, err)
	}
	if opts.UID != -1 || opts.GID != -1 {
		if err := os.Chown(dir, opts.UID, opts.GID); err != nil {
			return fmt.Errorf("chown dir %s: %w", dir, err)
		}
	}
	return nil
}
