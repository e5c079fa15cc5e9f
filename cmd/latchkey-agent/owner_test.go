package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/latchkey/latchkey/test/testkit"
)

// Defect: a template's user or group that did not resolve was reported
// without its file, line and key ("template /etc/app/app.env: user
// "app": unknown user app"), also when a reload was refused for it; and an
// owner id no file can have was accepted and handed to chown, which takes
// it modulo 2^32: gid = 99999999999 gave the rendered secret to group
// 1215752191, uid = -5 to uid 4294967291, and uid = 4294967295 ((uid_t)-1)
// silently left the owner as it was. Each is now a config error at the
// key's file:line:col, for templates and sinks alike, and nothing is
// written. So is a mode with setuid, setgid or sticky bits, which were
// dropped without a word.
func TestOwnerErrorsNameTheKey(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "root-token")
	testkit.WriteFile(t, tokenFile, srv.RootToken)
	dest := filepath.Join(dir, "out", "app.env")
	sink := filepath.Join(dir, "token")
	// Line 1-8: auth; the sink's config and the template follow, one key a
	// line, so that the line of the key under test is known.
	config := func(sinkKey, tmplKey string) string {
		return fmt.Sprintf(`auto_auth {
  method "token_file" {
    config = {
      token_file_path = %q
    }
  }
  sink "file" {
    config = {
      %s
      path = %q
    }
  }
}
latchkey {
  state_dir = %q
}
template {
  contents = "x"
  destination = %q
  %s
}
`, tokenFile, sinkKey, sink, filepath.Join(dir, "state"), dest, tmplKey)
	}
	const sinkLine, tmplLine = 9, 20
	tests := map[string]struct {
		sinkKey, tmplKey string
		line, col        int
		want             string
	}{
		"unknown template user":      {tmplKey: `user = "no-such-user-latchkey"`, line: tmplLine, col: 3, want: `user "no-such-user-latchkey": user: unknown user`},
		"unknown template group":     {tmplKey: `group = "no-such-group-latchkey"`, line: tmplLine, col: 3, want: `group "no-such-group-latchkey": group: unknown group`},
		"negative uid":               {tmplKey: `uid = -5`, line: tmplLine, col: 9, want: `invalid value for "uid": -5 is not a valid id`},
		"uid of (uid_t)-1":           {tmplKey: `uid = 4294967295`, line: tmplLine, col: 9, want: `invalid value for "uid": 4294967295 is not a valid id`},
		"gid beyond 32 bits":         {tmplKey: `gid = 99999999999`, line: tmplLine, col: 9, want: `invalid value for "gid": 99999999999 is not a valid id`},
		"user number beyond 32 bits": {tmplKey: `user = "4294967296"`, line: tmplLine, col: 3, want: `user: 4294967296 is not a valid id`},
		"sink owner beyond 32 bits":  {sinkKey: `owner = "99999999999"`, line: sinkLine, col: 7, want: `owner "99999999999": 99999999999 is not a valid id`},
		"sink group beyond 32 bits":  {sinkKey: `group = 4294967295`, line: sinkLine, col: 7, want: `group "4294967295": 4294967295 is not a valid id`},
		// Vault Agent drops set-id and sticky bits without a word.
		"setuid template perms": {tmplKey: `perms = "4750"`, line: tmplLine, col: 11,
			want: `invalid value for "perms": want a file mode from 0000 to 0777, not 4750: setuid, setgid and sticky bits are not set on written files`},
		"sticky sink mode": {sinkKey: `mode = 01640`, line: sinkLine, col: 14,
			want: `invalid value for "mode": want a file mode from 0000 to 0777, not 1640: setuid, setgid and sticky bits are not set on written files`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := filepath.Join(t.TempDir(), "agent.hcl")
			testkit.WriteFile(t, cfg, config(tc.sinkKey, tc.tmplKey))
			pos := fmt.Sprintf("%s:%d:%d: ", cfg, tc.line, tc.col)
			for _, args := range [][]string{{"validate", "-config", cfg}, {"-config", cfg}} {
				cmd := agentCmd(args)
				var stderr syncBuffer
				cmd.Stderr = &stderr
				if code := exitCodeWithin(t, cmd, 30*time.Second); code != exitConfig {
					t.Errorf("%v: exit %d, want %d (config error)\n%s", args, code, exitConfig, stderr.String())
				}
				// The run logs JSON, which escapes the quotes.
				if out := strings.ReplaceAll(stderr.String(), `\"`, `"`); !strings.Contains(out, pos) || !strings.Contains(out, tc.want) {
					t.Errorf("%v: error does not name %q with %q:\n%s", args, pos, tc.want, out)
				}
			}
			for _, p := range []string{dest, sink} {
				if _, err := os.Stat(p); !os.IsNotExist(err) {
					t.Errorf("%s written by a refused config (%v)", p, err)
				}
			}
		})
	}

	// A reload to an unknown template user is refused with the same
	// position; the running configuration goes on.
	cfg := filepath.Join(dir, "agent.hcl")
	testkit.WriteFile(t, cfg, config("", ""))
	a := startAgent(t, []string{"-config", cfg}, "VAULT_ADDR="+srv.Addr)
	testkit.Eventually(t, "the first render", func() bool { return testkit.ReadFile(dest) == "x" })
	testkit.WriteFile(t, cfg, config("", `user = "no-such-user-latchkey"`))
	a.signal(t, syscall.SIGHUP)
	a.logged(t, "reload refused; the running configuration is unchanged", 1)
	if pos := fmt.Sprintf("%s:%d:3: template %s: user", cfg, tmplLine, dest); !strings.Contains(a.stderr.String(), pos) {
		t.Errorf("the refused reload's error does not name %q", pos)
	}
	if code := a.stop(t); code != 0 {
		t.Errorf("exit %d", code)
	}
}

// exitCodeWithin is exitCode for a command that should exit by itself: one
// still running after limit is killed and fails the test.
func exitCodeWithin(t *testing.T, cmd *exec.Cmd, limit time.Duration) int {
	t.Helper()
	testkit.ScanOutput(t, cmd)
	testkit.Must(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(limit):
		cmd.Process.Kill()
		<-done
		t.Errorf("%v still running after %v, want it to exit by itself", cmd.Args, limit)
		return -1
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	testkit.Must(t, err)
	return 0
}
