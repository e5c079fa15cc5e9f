package pam

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// Bounds of the files the helper reads. A config or a CA bundle larger than
// these is not one an administrator wrote; reading it would spend the
// login's deadline.
const (
	maxConfigSize = 1 << 20 // config file
	maxCASize     = 4 << 20 // ca_cert, each file of ca_path, the system bundle
	maxTokenSize  = 64 << 10
)

// readRegular reads the regular file at path, at most max bytes. It opens
// with O_NONBLOCK so that a FIFO (or a device) planted there cannot hang the
// login, and refuses anything but a regular file, or one larger than max.
// Errors name the path, never the content.
func readRegular(path string, max int64) ([]byte, error) {
	b, _, err := readRegularInfo(path, max)
	return b, err
}

// readRegularInfo is readRegular that also returns the file's FileInfo,
// from the descriptor the content was read through (so that what it says
// of owner and mode is about these bytes, not a file renamed over them).
func readRegularInfo(path string, max int64) ([]byte, os.FileInfo, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	return readOpen(f, path, max)
}

// readOpen reads the open file f (opened from path) as readRegularInfo
// does.
func readOpen(f *os.File, path string, max int64) ([]byte, os.FileInfo, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if fi.IsDir() {
		return nil, nil, fmt.Errorf("read %s: %w", path, syscall.EISDIR)
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s is not a regular file (%s), refused", path, fi.Mode().Type())
	}
	if fi.Size() > max {
		return nil, nil, fmt.Errorf("%s is larger than %d bytes, refused", path, max)
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(b)) > max {
		return nil, nil, fmt.Errorf("%s is larger than %d bytes, refused", path, max)
	}
	return b, fi, nil
}

// readRegularResolved is readRegularInfo that also returns the absolute
// path the file resolved to (from /proc/self/fd, else EvalSymlinks).
func readRegularResolved(path string, max int64) ([]byte, os.FileInfo, string, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, "", err
	}
	defer f.Close()
	b, fi, err := readOpen(f, path, max)
	if err != nil {
		return nil, nil, "", err
	}
	real, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(f.Fd())))
	if err != nil || !filepath.IsAbs(real) {
		if real, err = filepath.EvalSymlinks(path); err == nil {
			real, err = filepath.Abs(real)
		}
		if err != nil {
			return nil, nil, "", err
		}
	}
	return b, fi, real, nil
}

// ReadTokenFile reads token_file as a login does: a regular file only,
// opened non-blocking (a FIFO there is refused, never waited on), at most
// 64 KiB. For doctor; a login also checks its writers (readToken).
func ReadTokenFile(path string) ([]byte, error) {
	return readRegular(path, maxTokenSize)
}
