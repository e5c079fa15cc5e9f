package state

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/latchkey/latchkey/test/testkit"
)

// A nonce record left readable by others (0644) is tightened to 0600 when
// it is read, and the fix is logged.
func TestLooseRecordTightened(t *testing.T) {
	log, logs := testkit.Observed(t)
	d := Dir{Path: t.TempDir(), Logger: log}
	if err := os.Chmod(d.Path, 0o700); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(d.Path, "nonce.json")
	if err := os.WriteFile(p, []byte(`{"nonce":"n1"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(p, 0o644)
	var r rec
	if found, err := d.Load("nonce", &r); !found || err != nil || r.Nonce != "n1" {
		t.Fatalf("Load = %+v, %v, %v", r, found, err)
	}
	checkMode(t, p, 0o600)
	if logs.FilterMessage("state mode tightened").Len() != 1 {
		t.Errorf("the fix was not logged: %v", logs.All())
	}
}

// State not owned by the agent's user is refused, not chmodded and used.
func TestForeignStateRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make files owned by another user")
	}
	t.Run("directory", func(t *testing.T) {
		d := Dir{Path: filepath.Join(t.TempDir(), "state")}
		if err := os.Mkdir(d.Path, 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d.Path, 12345, 12345); err != nil {
			t.Fatal(err)
		}
		var r rec
		if _, err := d.Load("nonce", &r); err == nil || !strings.Contains(err.Error(), "owned by uid 12345") {
			t.Errorf("Load: error = %v", err)
		}
		if err := d.Save("nonce", rec{Nonce: "n"}); err == nil || !strings.Contains(err.Error(), "owned by uid 12345") {
			t.Errorf("Save: error = %v", err)
		}
		if _, err := os.Lstat(filepath.Join(d.Path, "nonce.json")); err == nil {
			t.Error("a record was written into another user's directory")
		}
	})
	t.Run("record", func(t *testing.T) {
		d := Dir{Path: t.TempDir()}
		os.Chmod(d.Path, 0o700)
		p := filepath.Join(d.Path, "nonce.json")
		if err := os.WriteFile(p, []byte(`{"nonce":"theirs"}`), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, 12345, 12345); err != nil {
			t.Fatal(err)
		}
		var r rec
		if _, err := d.Load("nonce", &r); err == nil || !strings.Contains(err.Error(), "owned by uid 12345") || r.Nonce != "" {
			t.Errorf("Load = %+v, error = %v", r, err)
		}
	})
}

// A record that is a symlink or a FIFO is refused without blocking.
func TestRecordNotRegularRefused(t *testing.T) {
	d := Dir{Path: t.TempDir()}
	os.Chmod(d.Path, 0o700)
	if err := syscall.Mkfifo(filepath.Join(d.Path, "fifo.json"), 0o600); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "other.json")
	testkit.WriteFile(t, target, `{"nonce":"x"}`)
	if err := os.Symlink(target, filepath.Join(d.Path, "link.json")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"fifo", "link"} {
		var r rec
		if _, err := d.Load(name, &r); err == nil {
			t.Errorf("%s: loaded %+v", name, r)
		}
	}
}
