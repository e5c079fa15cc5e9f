package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/latchkey/latchkey/test/testkit"
	"github.com/latchkey/latchkey/test/vaulttest"
)

// Defect: the agent, which runs as root, read any config file: one
// world-writable (0666), owned by another user, writable by a group other
// than root's, or in a directory such a user may write, so that user could
// add a template whose command runs as root (or point the agent at a Vault
// of their own); and a FIFO given as the config blocked validate and the
// start for ever. latchkey-ssh-helper refused such files already. Now such a
// config is refused (exit 3) before anything is read from it or Vault is
// asked, at start, in validate and on SIGHUP (the running configuration is
// kept), naming the file or directory and the fix.
func TestConfigWriters(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "root-token")
	testkit.WriteFile(t, tokenFile, srv.RootToken)
	proxy := vaulttest.NewCountingProxy(t, srv.Addr)
	const nobody = 65534 // a uid and gid that are not the test's
	root := os.Geteuid() == 0
	body := func(dir string) string {
		return fmt.Sprintf(`exit_after_auth = true
auto_auth {
  method "token_file" {
    config = {
      token_file_path = %q
    }
  }
}
latchkey {
  state_dir = %q
}
template {
  contents = "x"
  destination = %q
  command = "echo ran >> %s"
}
`, tokenFile, filepath.Join(dir, "state"), filepath.Join(dir, "out"), filepath.Join(dir, "ran"))
	}
	tests := map[string]struct {
		mode      os.FileMode // the file's
		dirMode   os.FileMode // its directory's (0: 0700)
		owner     int         // the file's uid and gid (0: the test's)
		group     int
		dirOwner  int  // its directory's uid and gid (0: the test's)
		link      bool // -config names a symlink, in a private directory, to the file
		configDir bool // -config names the directory
		fifo      bool // the config is a FIFO
		needRoot  bool
		want      string // "" for a config that runs
	}{
		"0600":                        {mode: 0o600},
		"0644":                        {mode: 0o644},
		"group-writable, own group":   {mode: 0o664},
		"in a sticky world dir":       {mode: 0o600, dirMode: 0o777 | os.ModeSticky},
		"world-writable":              {mode: 0o666, want: "is writable by every user (mode 0666)"},
		"world-writable, by its dir":  {mode: 0o666, configDir: true, want: "is writable by every user (mode 0666)"},
		"writable by another group":   {mode: 0o660, group: nobody, needRoot: true, want: "is writable by group 65534"},
		"owned by another user":       {mode: 0o600, owner: nobody, needRoot: true, want: "is owned by uid 65534"},
		"in a world-writable dir":     {mode: 0o600, dirMode: 0o777, want: "is writable by every user (mode 0777), who could then put another config in its place"},
		"symlink to a world-writable": {mode: 0o666, link: true, want: "is writable by every user (mode 0666)"},
		"symlink into a world dir":    {mode: 0o600, dirMode: 0o777, link: true, want: "put another config in its place"},
		"dir owned by another user":   {mode: 0o600, dirOwner: nobody, needRoot: true, want: "its directory"},
		"a FIFO":                      {mode: 0o600, fifo: true, want: "not a regular file"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if tc.needRoot && !root {
				t.Skip("needs root to give a file away")
			}
			work := t.TempDir()
			dir := filepath.Join(t.TempDir(), "d")
			testkit.Must(t, os.Mkdir(dir, 0o700))
			cfg := filepath.Join(dir, "agent.hcl")
			if tc.fifo {
				testkit.Must(t, syscall.Mkfifo(cfg, 0o600))
			} else {
				testkit.WriteFile(t, cfg, body(work))
			}
			testkit.Must(t, os.Chmod(cfg, tc.mode))
			testkit.Chown(t, cfg, tc.owner, tc.group)
			testkit.Chown(t, dir, tc.dirOwner, tc.dirOwner)
			if tc.dirMode != 0 {
				testkit.Must(t, os.Chmod(dir, tc.dirMode))
			}
			arg := cfg
			switch {
			case tc.link:
				arg = filepath.Join(t.TempDir(), "link.hcl")
				testkit.Must(t, os.Symlink(cfg, arg))
			case tc.configDir:
				arg = dir
			}
			before := proxy.Total()
			for _, args := range [][]string{{"validate", "-config", arg}, {"-config", arg}} {
				cmd := agentCmdEnv(args, "VAULT_ADDR="+proxy.URL)
				var stderr syncBuffer
				cmd.Stderr = &stderr
				code := exitCodeWithin(t, cmd, 30*time.Second)
				out := stderr.String()
				switch {
				case tc.want == "" && code != exitOK:
					t.Errorf("%v: exit %d, want 0\n%s", args, code, out)
				case tc.want != "" && (code != exitConfig || !strings.Contains(out, tc.want) || !strings.Contains(out, "refused (ch") && !tc.fifo):
					t.Errorf("%v: exit %d, want %d naming %q and the fix\n%s", args, code, exitConfig, tc.want, out)
				}
			}
			if tc.want == "" {
				if countLines(filepath.Join(work, "ran")) != 1 {
					t.Errorf("a trusted config did not run its template command")
				}
				return
			}
			if n := proxy.Total() - before; n != 0 {
				t.Errorf("Vault was asked %d times for a refused config", n)
			}
			for _, p := range []string{"out", "ran"} {
				if _, err := os.Stat(filepath.Join(work, p)); !os.IsNotExist(err) {
					t.Errorf("%s written from a refused config (%v)", p, err)
				}
			}
		})
	}

	// A running agent whose config becomes world-writable refuses the
	// reload and keeps its configuration.
	dir := t.TempDir()
	cfg := filepath.Join(dir, "agent.hcl")
	testkit.WriteFile(t, cfg, strings.Replace(body(dir), "exit_after_auth = true\n", "", 1))
	a := startAgent(t, []string{"-config", cfg}, "VAULT_ADDR="+srv.Addr)
	testkit.Eventually(t, "the first render", func() bool { return countLines(filepath.Join(dir, "ran")) == 1 })
	testkit.Must(t, os.Chmod(cfg, 0o666))
	a.signal(t, syscall.SIGHUP)
	a.logged(t, "reload refused; the running configuration is unchanged", 1)
	a.logged(t, "is writable by every user (mode 0666)", 1)
	if code := a.stop(t); code != 0 {
		t.Errorf("exit %d", code)
	}
}

// Defect: a template source someone other than root could write was read
// as any other (and a FIFO there blocked validate and the start for ever):
// whoever writes it chooses what the agent renders, as root, into a file
// others may read: {{ file "/etc/shadow" }}, any secret the agent's token
// may read. Now such a source is refused as a config file is: a config
// error at start and in validate, and an edit of a running one after it
// became writable by others is not loaded (the previous template and file
// stay) until it is trusted again.
func TestTemplateSourceWriters(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "root-token")
	testkit.WriteFile(t, tokenFile, srv.RootToken)
	config := func(src, dest string) string {
		return fmt.Sprintf(`auto_auth {
  method "token_file" {
    config = {
      token_file_path = %q
    }
  }
}
template {
  source = %q
  destination = %q
}
`, tokenFile, src, dest)
	}
	tests := map[string]struct {
		mode    os.FileMode // the source's
		dirMode os.FileMode // its directory's (0: 0700)
		fifo    bool
		want    string // "" for a source that renders
	}{
		"0644":                    {mode: 0o644},
		"world-writable":          {mode: 0o666, want: "template source %s is writable by every user (mode 0666)"},
		"in a world-writable dir": {mode: 0o644, dirMode: 0o777, want: "template source %s: its directory"},
		"a FIFO":                  {mode: 0o600, fifo: true, want: "read template %s: not a regular file"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "d")
			testkit.Must(t, os.Mkdir(dir, 0o700))
			src := filepath.Join(dir, "app.tmpl")
			if tc.fifo {
				testkit.Must(t, syscall.Mkfifo(src, 0o600))
			} else {
				testkit.WriteFile(t, src, "rendered\n")
			}
			testkit.Must(t, os.Chmod(src, tc.mode))
			if tc.dirMode != 0 {
				testkit.Must(t, os.Chmod(dir, tc.dirMode))
			}
			work := t.TempDir()
			dest := filepath.Join(work, "out")
			cfg := filepath.Join(work, "agent.hcl")
			testkit.WriteFile(t, cfg, "exit_after_auth = true\n"+config(src, dest))
			for _, args := range [][]string{{"validate", "-config", cfg}, {"-config", cfg}} {
				cmd := agentCmd(args)
				var stderr syncBuffer
				cmd.Stderr = &stderr
				code := exitCodeWithin(t, cmd, 30*time.Second)
				out := stderr.String()
				switch {
				case tc.want == "" && code != exitOK:
					t.Errorf("%v: exit %d, want 0\n%s", args, code, out)
				case tc.want != "" && (code != exitConfig || !strings.Contains(out, fmt.Sprintf(tc.want, src))):
					t.Errorf("%v: exit %d, want %d naming %q\n%s", args, code, exitConfig, fmt.Sprintf(tc.want, src), out)
				}
			}
			if got := testkit.ReadFile(dest); (tc.want == "") != (got == "rendered\n") {
				t.Errorf("destination holds %q", got)
			}
		})
	}

	// A running agent: an edit made while the source is writable by every
	// user is not loaded; once it is trusted again, the next edit is.
	dir := t.TempDir()
	src, dest := filepath.Join(dir, "app.tmpl"), filepath.Join(dir, "out")
	testkit.WriteFile(t, src, "v1\n")
	cfg := filepath.Join(dir, "agent.hcl")
	testkit.WriteFile(t, cfg, config(src, dest))
	a := startAgent(t, []string{"-config", cfg}, "VAULT_ADDR="+srv.Addr)
	testkit.Eventually(t, "the first render", func() bool { return testkit.ReadFile(dest) == "v1\n" })
	testkit.Must(t, os.Chmod(src, 0o666))
	testkit.Must(t, os.WriteFile(src, []byte("planted\n"), 0o666))
	a.logged(t, "template source changed but does not load; keeping the previous one", 1)
	a.logged(t, "is writable by every user (mode 0666)", 1)
	if got := testkit.ReadFile(dest); got != "v1\n" {
		t.Errorf("the destination holds %q after an untrusted edit, want v1", got)
	}
	testkit.Must(t, os.Chmod(src, 0o644))
	testkit.Must(t, os.WriteFile(src, []byte("v2\n"), 0o644))
	testkit.Eventually(t, "the trusted edit rendered", func() bool { return testkit.ReadFile(dest) == "v2\n" })
	if code := a.stop(t); code != 0 {
		t.Errorf("exit %d", code)
	}
}
