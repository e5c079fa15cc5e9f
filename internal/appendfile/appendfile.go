// Package appendfile opens log and audit files for appending with a mode
// that does not depend on the umask.
package appendfile

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// Open opens path for appending (O_APPEND, so that concurrent writers'
// lines stay whole), never following a symlink at path (O_NOFOLLOW) and
// closed on exec. A file it creates gets exactly perm, whatever the umask
// (fchmod after an O_EXCL create); an existing file keeps its mode, which
// an administrator may have tightened. It opens with O_NONBLOCK, so that a
// FIFO nobody reads fails at once (ENXIO) instead of blocking, and refuses
// anything but a regular file (FIFO, device, socket).
func Open(path string, perm os.FileMode) (*os.File, error) {
	f, err := open(path, perm)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("open %s: not a regular file (%s), refused", path, fi.Mode().Type())
	}
	// Writes to a regular file do not block; clear O_NONBLOCK anyway so
	// that the file behaves as an ordinary one.
	if err := syscall.SetNonblock(int(f.Fd()), false); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func open(path string, perm os.FileMode) (*os.File, error) {
	const flags = os.O_WRONLY | os.O_APPEND | syscall.O_NOFOLLOW | syscall.O_CLOEXEC | syscall.O_NONBLOCK
	// A file removed between the two opens, or created between them, is
	// retried; three rounds are plenty outside of an attack.
	for range 3 {
		f, err := os.OpenFile(path, flags|os.O_CREATE|os.O_EXCL, perm)
		if err == nil {
			if err := f.Chmod(perm); err != nil {
				f.Close()
				os.Remove(path)
				return nil, err
			}
			return f, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return nil, err
		}
		f, err = os.OpenFile(path, flags, 0)
		if err == nil {
			return f, nil
		}
		if errors.Is(err, syscall.ELOOP) {
			return nil, fmt.Errorf("open %s: is a symlink, refused: %w", path, err)
		}
		if errors.Is(err, syscall.ENXIO) {
			return nil, fmt.Errorf("open %s: a FIFO (or device) nobody reads, refused: %w", path, err)
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("open %s: created and removed again while opening", path)
}
