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
// an administrator may have tightened.
func Open(path string, perm os.FileMode) (*os.File, error) {
	const flags = os.O_WRONLY | os.O_APPEND | syscall.O_NOFOLLOW | syscall.O_CLOEXEC
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
		if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("open %s: created and removed again while opening", path)
}
