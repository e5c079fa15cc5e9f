package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/latchkey/latchkey/test/testkit"
)

// -config DIR reads the directory's *.hcl and *.json files only: editor
// and package-manager leftovers beside them are not read, nor are
// dotfiles — emacs's lock (a dangling symlink .#agent.hcl, there while the
// file is being edited) refused the start and every reload with exit 3. A
// dangling symlink that is a config file's name is a config error naming
// it, not a crash.
func TestConfigDirSkipsEditorLeftovers(t *testing.T) {
	dir := t.TempDir()
	rootTokenConfig(t, dir, "")
	for _, name := range []string{".agent.hcl.swp", "agent.hcl~", "#agent.hcl#", "agent.hcl.dpkg-dist", "agent.hcl.dpkg-old", "agent.hcl.rpmnew", "agent.hcl.rpmsave", ".hidden.hcl", ".hidden.json"} {
		testkit.WriteFile(t, filepath.Join(dir, name), "garbage {\n")
	}
	lock := filepath.Join(dir, ".#agent.hcl")
	testkit.Must(t, os.Symlink("root@host.4242:1700000000", lock))

	var stdout, stderr bytes.Buffer
	cmd := agentCmd([]string{"validate", "-config", dir})
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if code := exitCode(t, cmd); code != 0 || stdout.String() != filepath.Join(dir, "agent.hcl")+": OK (token_file auth, 0 sink(s), 0 template(s))\n" {
		t.Fatalf("validate: exit %d, stdout %q, stderr %q; want 0 and agent.hcl alone read", code, stdout.String(), stderr.String())
	}

	// The lock comes and goes while the agent runs (an edit, then a
	// reload).
	testkit.Must(t, os.Remove(lock))
	a := startAgent(t, []string{"-config", dir, "-log-format", "json"}, "VAULT_ADDR="+srv.Addr)
	a.logged(t, `"logged in"`, 1)
	testkit.Must(t, os.Symlink("root@host.4242:1700000000", lock))
	a.signal(t, syscall.SIGHUP)
	a.logged(t, "reloaded;", 1)
	if strings.Contains(a.stderr.String(), "reload refused") {
		t.Errorf("reload refused with an emacs lock in the config directory:\n%s", a.stderr.String())
	}
	if code := a.stop(t); code != 0 {
		t.Errorf("exit %d", code)
	}

	dangling := filepath.Join(dir, "zz-extra.hcl")
	testkit.Must(t, os.Symlink(filepath.Join(dir, "nothing"), dangling))
	stdout.Reset()
	stderr.Reset()
	cmd = agentCmd([]string{"validate", "-config", dir})
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if code := exitCode(t, cmd); code != 3 || !strings.Contains(stderr.String(), "read config "+dangling) {
		t.Errorf("dangling %s: exit %d, stderr %q; want 3 naming it", dangling, code, stderr.String())
	}
}
