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
)

// Defect: with exit_after_auth (an image build, a cloud-init unit before
// sshd) a sink that could not be written was retried for ever: the one-shot
// run never ended, while a template failing the same way ends it after its
// retries. Now such a sink gets as many attempts as a template (1 +
// vault { retry { num_retries } }), then the agent exits 1 naming the sink
// and the reason; a sink that can be written still ends the run with 0.
func TestExitAfterAuthUnwritableSinkEnds(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "root-token")
	testkit.WriteFile(t, tokenFile, srv.RootToken)
	tests := map[string]struct {
		sinkPath func(t *testing.T, dir string) string
		needRoot bool
		code     int
		want     string
	}{
		"writable": {
			sinkPath: func(t *testing.T, dir string) string { return filepath.Join(dir, "token") },
			code:     exitOK,
			want:     "exit_after_auth: logged in and wrote every sink; exiting",
		},
		"parent is a file": {
			sinkPath: func(t *testing.T, dir string) string {
				testkit.WriteFile(t, filepath.Join(dir, "file"), "not a directory")
				return filepath.Join(dir, "file", "token")
			},
			code: exitError,
			want: "not written after 2 attempts",
		},
		"read-only file system": {
			sinkPath: func(t *testing.T, dir string) string {
				ro := filepath.Join(dir, "ro")
				testkit.Must(t, os.Mkdir(ro, 0o755))
				testkit.Must(t, syscall.Mount(ro, ro, "", syscall.MS_BIND, ""))
				t.Cleanup(func() { syscall.Unmount(ro, syscall.MNT_DETACH) })
				testkit.Must(t, syscall.Mount("", ro, "", syscall.MS_BIND|syscall.MS_REMOUNT|syscall.MS_RDONLY, ""))
				return filepath.Join(ro, "token")
			},
			needRoot: true,
			code:     exitError,
			want:     "read-only file system",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if tc.needRoot && os.Geteuid() != 0 {
				t.Skip("needs root to mount a read-only directory")
			}
			dir := t.TempDir()
			sink := tc.sinkPath(t, dir)
			cfg := filepath.Join(dir, "agent.hcl")
			testkit.WriteFile(t, cfg, fmt.Sprintf(`exit_after_auth = true
vault {
  retry {
    num_retries = 1
  }
}
auto_auth {
  method "token_file" {
    config = {
      token_file_path = %q
    }
  }
  sink "file" {
    config = {
      path = %q
    }
  }
}
latchkey {
  state_dir = %q
}
`, tokenFile, sink, filepath.Join(dir, "state")))
			cmd := agentCmd([]string{"-config", cfg})
			var stderr syncBuffer
			cmd.Stderr = &stderr
			code := exitCodeWithin(t, cmd, time.Minute)
			out := strings.ReplaceAll(stderr.String(), `\"`, `"`)
			if code != tc.code || !strings.Contains(out, tc.want) {
				t.Fatalf("exit %d, want %d with %q\n%s", code, tc.code, tc.want, out)
			}
			if tc.code != exitOK && !strings.Contains(out, "sink "+sink) {
				t.Errorf("the error does not name the sink %s:\n%s", sink, out)
			}
		})
	}
}
