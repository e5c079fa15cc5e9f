package state

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/latchkey/latchkey/internal/atomicfile"
)

// LockName is the lock file in the state directory.
const LockName = "agent.lock"

// ErrLocked is returned by Lock when another process holds the lock.
var ErrLocked = errors.New("in use by another latchkey-agent")

// Lock takes the state directory for this process until release is
// called or the process ends: an exclusive flock on <dir>/agent.lock
// (0600, created with the directory when missing), which then holds this
// process's pid. Two agents on one state directory (one started by hand
// beside the service, say) would both run template commands, adopt each
// other's as left over from a crash, and log in for the first time with
// two different AWS nonces, one of which Vault keeps: the other agent's
// saved nonce is then refused at every later login.
//
// It returns ErrLocked, with the holder's pid when it is known, when
// another process holds the lock; another error when the directory or the
// file cannot be used (a symlink or a file of another user is refused).
func (d Dir) Lock() (release func(), err error) {
	if d.Path == "" {
		return nil, errors.New("state directory is not set")
	}
	if err := d.checkDir(); err != nil {
		return nil, err
	}
	if err := atomicfile.MkdirAll(d.Path, atomicfile.Options{Mode: 0o700, UID: -1, GID: -1}); err != nil {
		return nil, fmt.Errorf("state dir %s: %w", d.Path, err)
	}
	p := filepath.Join(d.Path, LockName)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state lock %s: %w", p, err)
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("not a regular file (%s), refused", fi.Mode().Type())
	}
	if err == nil {
		err = ownedByUs(fi)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("state lock %s: %w", p, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			if pid := holder(f); pid > 0 {
				return nil, fmt.Errorf("state dir %s: %w (pid %d)", d.Path, ErrLocked, pid)
			}
			return nil, fmt.Errorf("state dir %s: %w", d.Path, ErrLocked)
		}
		return nil, fmt.Errorf("state lock %s: %w", p, err)
	}
	// The pid, for the message a second agent prints; the lock is the flock.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() { f.Close() }, nil
}

// holder reads the pid the lock's holder wrote; 0 when there is none.
func holder(f *os.File) int {
	b, err := io.ReadAll(io.LimitReader(f, 32))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}
