package sshtrust

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/latchkey/latchkey/internal/atomicfile"
)

// change is one file to replace.
type change struct {
	Path string
	Data []byte
	// Cert marks a host certificate (signed anew at each attempt).
	Cert bool
}

// previous is a file as it was before a change (Exists false: there was none).
type previous struct {
	Path   string
	Data   []byte
	Mode   os.FileMode
	Exists bool
}

// fileMode is the mode of every file written: sshd wants trust files and
// certificates readable, and they hold no secret.
const fileMode = 0o644

// ErrCheck wraps a check_command that refused the new files.
var ErrCheck = errors.New("check_command failed")

// apply puts changes in place, each atomically, then runs check. When a
// write or the check fails, every file is put back as it was and the error
// (for a check, wrapping ErrCheck, with the command's output) is returned.
// sshd reads host certificates only when reloaded, and the trust file per
// connection: between the rename and a failed check the new trust file is
// briefly live, which is why rollback is immediate.
func apply(ctx context.Context, changes []change, check []string) error {
	var prev []previous
	restore := func() error {
		var errs []error
		for i := len(prev) - 1; i >= 0; i-- {
			p := prev[i]
			if !p.Exists {
				if err := os.Remove(p.Path); err != nil && !os.IsNotExist(err) {
					errs = append(errs, err)
				}
				continue
			}
			if err := atomicfile.WriteFile(p.Path, p.Data, atomicfile.Owner(p.Mode)); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
	for _, c := range changes {
		p := previous{Path: c.Path}
		if fi, err := os.Stat(c.Path); err == nil {
			b, err := atomicfile.ReadRegular(c.Path)
			if err != nil {
				return fmt.Errorf("read %s before replacing it: %w", c.Path, err)
			}
			p = previous{Path: c.Path, Data: b, Mode: fi.Mode().Perm(), Exists: true}
		}
		if err := atomicfile.WriteFile(c.Path, c.Data, atomicfile.Owner(fileMode)); err != nil {
			if rerr := restore(); rerr != nil {
				return fmt.Errorf("%w (and restoring the previous files: %v)", err, rerr)
			}
			return err // "write path: …"
		}
		prev = append(prev, p)
	}
	if len(check) == 0 {
		return nil
	}
	if out, err := runCommand(ctx, check); err != nil {
		cerr := fmt.Errorf("%w: %s: %w; output: %s", ErrCheck, strings.Join(check, " "), err, out)
		if rerr := restore(); rerr != nil {
			return fmt.Errorf("%w (and restoring the previous files: %v)", cerr, rerr)
		}
		return cerr
	}
	return nil
}

// runCommand runs cmd with CommandTimeout and returns its combined output,
// trimmed and capped so that a chatty command cannot flood the log.
func runCommand(ctx context.Context, cmd []string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, CommandTimeout)
	defer cancel()
	var out bytes.Buffer
	c := exec.CommandContext(ctx, cmd[0], cmd[1:]...)
	c.Stdout, c.Stderr = &out, &out
	err := c.Run()
	s := strings.TrimSpace(out.String())
	if len(s) > 4096 {
		s = s[:4096] + "..."
	}
	return s, err
}
