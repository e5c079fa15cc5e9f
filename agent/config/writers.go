package config

import (
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/latchkey/latchkey/internal/writers"
)

// readTrusted reads a config file and refuses it when someone other than
// root (or the user the agent runs as, for tests and image builds) could
// have written it: whoever can rewrite the agent's config chooses the
// commands it runs (template command, exec), the files it writes and the
// Vault it trusts, as the agent's user, normally root. See ReadTrusted.
func readTrusted(path string) ([]byte, error) {
	return ReadTrusted(path, "config", "choose the commands the agent runs", "read config")
}

// ReadTrusted reads the file at path, which decides what the agent (root)
// does, and refuses it when someone other than root or the agent's own user
// could have written it. The file itself is checked through the descriptor
// it is read from (opened non-blocking: a FIFO is refused, never waited
// on), then each directory above the file it resolves to (as sshd's
// StrictModes does, and as latchkey-ssh-helper checks its config): a
// directory such a user may write lets them put another file in its place.
// Writable means owned by that user, or writable by others, or by a group
// other than root's (or the agent's); a sticky directory (/tmp) lets nobody
// replace a file they do not own. The error names what the file is (what),
// the file or directory, what its writer could do (could) and the fix,
// never the content; a read error is prefixed with readErr.
func ReadTrusted(path, what, could, readErr string) ([]byte, error) {
	// Non-blocking: a FIFO in the file's place is refused below, not
	// waited on.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", readErr, path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", readErr, path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s %s: not a regular file (%s)", readErr, path, fi.Mode().Type())
	}
	if why := writers.Foreign(fi); why != "" {
		return nil, fmt.Errorf("%s %s %s, who could then %s; refused (%s)", what, path, why, could, writers.Fix(fi, path))
	}
	dir, why, fix, err := writers.Dirs(path)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%s %s: %w", readErr, path, err)
	case dir != "":
		return nil, fmt.Errorf("%s %s: its directory %s %s, who could then put another %s in its place; refused (%s)", what, path, dir, why, what, fix)
	}
	src, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", readErr, path, err)
	}
	return src, nil
}
