package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/latchkey/latchkey/test/testkit"
)

// log_file under logrotate: in create mode the file is renamed and the
// agent told with SIGHUP (postrotate `systemctl reload`), which opens the
// path anew; with copytruncate the next line lands at the start of the
// emptied file (O_APPEND), not after a hole of NUL bytes; a path the
// reopen refuses (a symlink) is logged and the lines go on to the file
// open before; a reload that changes the log_file path warns that it
// takes a restart.
func TestSIGHUPReopensLogFile(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "agent.log")
	cfg := rootTokenConfig(t, dir, fmt.Sprintf("log_file = %q\n", logPath))
	a := startAgent(t, []string{"-config", cfg, "-log-format", "json"}, "VAULT_ADDR="+srv.Addr)
	a.logged(t, "latchkey-agent starting", 1)
	testkit.Eventually(t, "the start in log_file", func() bool {
		return strings.Contains(testkit.ReadFile(logPath), "latchkey-agent starting")
	})

	// create: rename, SIGHUP.
	rotated := logPath + ".1"
	testkit.Must(t, os.Rename(logPath, rotated))
	a.signal(t, syscall.SIGHUP)
	a.logged(t, "reloaded;", 1)
	testkit.Eventually(t, "the reload in the new log_file", func() bool {
		return strings.Contains(testkit.ReadFile(logPath), "reloaded;")
	})
	old, cur := testkit.ReadFile(rotated), testkit.ReadFile(logPath)
	if !strings.Contains(old, "latchkey-agent starting") || strings.Contains(old, "SIGHUP: reloading") {
		t.Errorf("rotated file %s should hold the lines before the SIGHUP only:\n%s", rotated, old)
	}
	if !strings.Contains(cur, "SIGHUP: reloading the configuration") || strings.Contains(cur, "latchkey-agent starting") {
		t.Errorf("new %s should hold the lines from the SIGHUP on:\n%s", logPath, cur)
	}
	fi, err := os.Stat(logPath)
	testkit.Must(t, err)
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("new log file mode %#o, want 0640", fi.Mode().Perm())
	}

	// copytruncate: the file is emptied in place; no reopen needed.
	testkit.Must(t, os.Truncate(logPath, 0))
	a.signal(t, syscall.SIGHUP)
	a.logged(t, "reloaded;", 2)
	testkit.Eventually(t, "the second reload in log_file", func() bool {
		return strings.Contains(testkit.ReadFile(logPath), "reloaded;")
	})
	if b := []byte(testkit.ReadFile(logPath)); bytes.IndexByte(b, 0) >= 0 || !bytes.HasPrefix(b, []byte(`{`)) {
		t.Errorf("after copytruncate %s does not start with a line (a hole of NUL bytes?): %q", logPath, b[:min(len(b), 40)])
	}

	// A symlink where the new file should be is refused: logged, and the
	// lines go on to the file open before.
	rotated2 := logPath + ".2"
	testkit.Must(t, os.Rename(logPath, rotated2))
	testkit.Must(t, os.Symlink(filepath.Join(dir, "elsewhere"), logPath))
	a.signal(t, syscall.SIGHUP)
	a.logged(t, "log_file not reopened", 1)
	a.logged(t, "reloaded;", 3)
	testkit.Eventually(t, "the third reload in the file open before", func() bool {
		return strings.Count(testkit.ReadFile(rotated2), "reloaded;") == 2
	})
	if _, err := os.Lstat(filepath.Join(dir, "elsewhere")); err == nil {
		t.Errorf("the symlinked log_file was followed")
	}

	// A changed log_file path is not applied by a reload: it says so.
	testkit.WriteFile(t, cfg, strings.Replace(testkit.ReadFile(cfg), logPath, filepath.Join(dir, "other.log"), 1))
	a.signal(t, syscall.SIGHUP)
	a.logged(t, "a changed log_file takes a restart", 1)
	if code := a.stop(t); code != 0 {
		t.Errorf("exit %d", code)
	}
}
