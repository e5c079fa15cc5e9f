// Package state keeps what the agent must remember across restarts, under
// the state directory (default /var/lib/latchkey, mode 0700), one JSON file
// per record, written atomically with mode 0600.
package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/latchkey/latchkey/internal/atomicfile"
)

// Dir is a state directory.
type Dir struct{ Path string }

var safeName = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// Load reads record name into v. It returns (false, nil) when there is no
// such record, (true, nil) when v was filled, and an error for an unreadable
// or corrupt file.
func (d Dir) Load(name string, v any) (bool, error) {
	p, err := d.path(name)
	if err != nil {
		return false, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("state %s: %w", p, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("state %s: %w", p, err)
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
	if err := atomicfile.MkdirAll(d.Path, atomicfile.Options{Mode: 0o700, UID: -1, GID: -1}); err != nil {
		return fmt.Errorf("state dir %s: %w", d.Path, err)
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(p, append(b, '\n'), atomicfile.Options{Mode: 0o600, UID: -1, GID: -1}); err != nil {
		return fmt.Errorf("state %s: %w", p, err)
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
		return fmt.Errorf("state %s: %w", p, err)
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
		if ok && e.Type().IsRegular() && strings.HasPrefix(name, prefix) && safeName.MatchString(name) {
			out = append(out, name)
		}
	}
	return out, nil
}

func (d Dir) path(name string) (string, error) {
	if d.Path == "" {
		return "", errors.New("state directory is not set")
	}
	if !safeName.MatchString(name) {
		return "", fmt.Errorf("state record name %q", name)
	}
	return filepath.Join(d.Path, name+".json"), nil
}
