package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrNotRegular marks a path that holds something other than a regular file
// (a FIFO, a device, a socket, a directory): never read or written through.
var ErrNotRegular = errors.New("not a regular file")

// ErrSymlink marks a path that is a symbolic link where a file was expected.
var ErrSymlink = errors.New("is a symlink")

// OpenExisting opens the regular file at path for reading, without
// following a symlink at path and without blocking on a FIFO swapped in
// (O_NOFOLLOW|O_NONBLOCK, then fstat). It returns the file and its fstat;
// an error wrapping fs.ErrNotExist when nothing is there; wrapping
// ErrSymlink for a symlink; wrapping ErrNotRegular for any other type, which
// it does not open (opening a device can have effects).
func OpenExisting(path string) (*os.File, os.FileInfo, error) {
	lfi, err := os.Lstat(path)
	if err != nil {
		return nil, nil, err
	}
	if lfi.Mode()&fs.ModeSymlink != 0 {
		return nil, lfi, fmt.Errorf("%s: %w", path, ErrSymlink)
	}
	if !lfi.Mode().IsRegular() {
		return nil, lfi, fmt.Errorf("%s is a %s: %w", path, typeName(lfi.Mode()), ErrNotRegular)
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if errors.Is(err, syscall.ELOOP) {
		return nil, nil, fmt.Errorf("%s: %w", path, ErrSymlink)
	}
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fi, fmt.Errorf("%s is a %s: %w", path, typeName(fi.Mode()), ErrNotRegular)
	}
	return f, fi, nil
}

func typeName(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&fs.ModeNamedPipe != 0:
		return "FIFO"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeSymlink != 0:
		return "symlink"
	}
	return "non-regular file"
}

// tempPrefix is the name prefix of Write's temporary files for path.
func tempPrefix(path string) string {
	return "." + filepath.Base(path) + ".tmp-"
}

// StaleGrace is the age below which RemoveStale leaves an unlocked
// temporary file alone: far longer than the instant between Write's create
// and its lock, short enough that the next write after a crash cleans up.
const StaleGrace = 2 * time.Second

// RemoveStale removes the temporary files that Write left next to path
// when the process was killed mid-write: regular files named like Write's
// temporaries for path, owned by this process's user, that no process
// holds locked (Write keeps its temporary file flock-ed until the rename,
// and a dead process holds no lock) and last modified more than olderThan
// ago (a grace for the instant between a write's create and its lock).
// It returns the names removed; a directory it cannot read is an error.
func RemoveStale(path string, olderThan time.Duration) ([]string, error) {
	path = filepath.Clean(path)
	dir := filepath.Dir(path)
	es, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	prefix := tempPrefix(path)
	var removed []string
	for _, e := range es {
		if !strings.HasPrefix(e.Name(), prefix) || !e.Type().IsRegular() {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if removeUnlocked(p, olderThan) {
			removed = append(removed, p)
		}
	}
	return removed, nil
}

// removeUnlocked removes p when it is a regular file of this user, older
// than olderThan, and nobody holds a lock on it; it reports whether it did.
func removeUnlocked(p string, olderThan time.Duration) bool {
	f, fi, err := OpenExisting(p)
	if err != nil {
		return false
	}
	defer f.Close()
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || int(st.Uid) != os.Geteuid() || time.Since(fi.ModTime()) < olderThan {
		return false
	}
	if lockFile(f) != nil {
		return false // a write in flight holds it
	}
	// Still the same file under that name (not renamed away meanwhile)?
	lfi, err := os.Lstat(p)
	if err != nil || !os.SameFile(fi, lfi) {
		return false
	}
	return os.Remove(p) == nil
}

// Sweeper does RemoveStale for many files, reading each directory once:
// calling RemoveStale before every write of n files in one directory reads
// the directory n times, O(n²). It lists a directory's temporaries at its
// first sweep; only a killed process leaves a stale one (a failed write
// removes its own), so those listed then are all this process will find.
// One not removed (locked by a write in flight, too young) is tried again
// at the next sweep of its file. It is safe for concurrent use.
type Sweeper struct {
	OlderThan time.Duration

	mu   sync.Mutex
	dirs map[string][]string // temporaries listed and not removed yet
}

// Sweep removes the stale temporaries of path (see RemoveStale) and
// returns their names; a directory it cannot read is an error.
func (s *Sweeper) Sweep(path string) ([]string, error) {
	path = filepath.Clean(path)
	dir := filepath.Dir(path)
	s.mu.Lock()
	defer s.mu.Unlock()
	names, listed := s.dirs[dir]
	if !listed {
		es, err := os.ReadDir(dir)
		if err != nil {
			return nil, err
		}
		for _, e := range es {
			if strings.HasPrefix(e.Name(), ".") && strings.Contains(e.Name(), ".tmp-") && e.Type().IsRegular() {
				names = append(names, e.Name())
			}
		}
		if s.dirs == nil {
			s.dirs = map[string][]string{}
		}
	}
	prefix := tempPrefix(path)
	var removed, left []string
	for _, n := range names {
		if !strings.HasPrefix(n, prefix) {
			left = append(left, n)
			continue
		}
		p := filepath.Join(dir, n)
		if removeUnlocked(p, s.OlderThan) {
			removed = append(removed, p)
		} else if _, err := os.Lstat(p); err == nil {
			left = append(left, n)
		}
	}
	s.dirs[dir] = left
	return removed, nil
}

// MkdirParents creates dir and its missing parents with perm, checking each
// component from the root: a symlink is followed only when root or this
// process's user owns it (one planted by another user could point the
// write anywhere), and each component must end up a directory. The
// directories it makes get perm whatever the umask; existing ones are
// left as they are.
func MkdirParents(dir string, perm os.FileMode) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	cur := string(filepath.Separator)
	for _, comp := range strings.Split(abs, string(filepath.Separator)) {
		if comp == "" {
			continue
		}
		cur = filepath.Join(cur, comp)
		fi, err := os.Lstat(cur)
		if errors.Is(err, fs.ErrNotExist) {
			if err := os.Mkdir(cur, perm); err == nil {
				// perm whatever the umask: the unit's UMask=0077 made
				// every new directory 0700, so a template's user (user =
				// "app") could not reach its own file.
				if err := chmodDir(cur, perm); err != nil {
					return fmt.Errorf("create dir %s: %w", cur, err)
				}
			} else if !errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("create dir %s: %w", cur, err)
			}
			fi, err = os.Lstat(cur)
		}
		if err != nil {
			return fmt.Errorf("create dir %s: %w", cur, err)
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			uid := -1
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				uid = int(st.Uid)
			}
			if uid != 0 && uid != os.Geteuid() {
				return fmt.Errorf("create dir %s: a symlink owned by uid %d, not followed", cur, uid)
			}
			if fi, err = os.Stat(cur); err != nil {
				return fmt.Errorf("create dir %s: %w", cur, err)
			}
		}
		if !fi.IsDir() {
			return fmt.Errorf("create dir %s: is a %s, not a directory", cur, typeName(fi.Mode()))
		}
	}
	return nil
}

// chmodDir sets the mode of the directory just made at p, through a
// descriptor that is not a symlink swapped in since.
func chmodDir(p string, perm os.FileMode) error {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Chmod(perm)
}

// ReadRegular reads the regular file at path, following symlinks, and
// refuses anything else with an error wrapping ErrNotRegular: a FIFO would
// block the reader (a login, a render, the agent's stop) for ever, a device
// such as /dev/zero would be read without end, and opening one can have
// effects. The type is checked before the open (which is non-blocking)
// and again through the descriptor, in case something was swapped in.
func ReadRegular(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is a %s: %w", path, typeName(fi.Mode()), ErrNotRegular)
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is a %s: %w", path, typeName(fi.Mode()), ErrNotRegular)
	}
	return io.ReadAll(f)
}
