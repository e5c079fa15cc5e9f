package sink

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/latchkey/latchkey/agent/auth"
	"github.com/latchkey/latchkey/agent/config"
	"github.com/latchkey/latchkey/internal/hclconf"
)

func TestOwnerAndGroupByName(t *testing.T) {
	rng := hclconf.Range{Filename: "agent.hcl", Start: hclconf.Position{Line: 7, Column: 3}}
	tests := map[string]struct {
		owner, group string
		uid, gid     int
		keys         bool
		err          string
	}{
		"names":         {owner: "nobody", group: "nogroup", uid: 65534, gid: 65534},
		"numbers":       {owner: "0", group: "65534", uid: 0, gid: 65534},
		"unset":         {uid: -1, gid: -1},
		"unknown user":  {owner: "no-such-user-latchkey", err: `agent.hcl:7:3: sink /x: owner "no-such-user-latchkey": user: unknown user no-such-user-latchkey`},
		"unknown group": {group: "no-such-group-latchkey", err: `agent.hcl:7:3: sink /x: group "no-such-group-latchkey": group: unknown group no-such-group-latchkey`},
		// With the keys' positions (as config.Load keeps them), the error
		// points at the key.
		"unknown user at its key":  {owner: "no-such-user-latchkey", keys: true, err: `agent.hcl:9:7: sink /x: owner "no-such-user-latchkey": user: unknown user no-such-user-latchkey`},
		"unknown group at its key": {group: "no-such-group-latchkey", keys: true, err: `agent.hcl:10:7: sink /x: group "no-such-group-latchkey": group: unknown group no-such-group-latchkey`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := config.Sink{Path: "/x", Mode: 0o640, Owner: tc.owner, Group: tc.group, Range: rng}
			if tc.keys {
				c.Keys = map[string]hclconf.Range{
					"owner": {Filename: "agent.hcl", Start: hclconf.Position{Line: 9, Column: 7}},
					"group": {Filename: "agent.hcl", Start: hclconf.Position{Line: 10, Column: 7}},
				}
			}
			f, err := New(c, nil, zaptest.NewLogger(t))
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("error = %v, want %s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if f.uid != tc.uid || f.gid != tc.gid {
				t.Errorf("uid/gid = %d/%d, want %d/%d", f.uid, f.gid, tc.uid, tc.gid)
			}
		})
	}
}

// A sink whose directory is missing is retried, without stopping, until
// it can be written; a later token replaces the file (a new inode: atomic
// rename) with the asked mode and owner, whatever the umask says.
func TestFailingSinkIsRetriedAndWrittenOnlyOnChange(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("not root: chown to nobody needs root")
	}
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "later")
	path := filepath.Join(dir, "token")
	f, err := New(config.Sink{Path: path, Mode: 0o644, Owner: "nobody", Group: "nogroup"}, nil, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	f.MinBackoff, f.MaxBackoff = 10*time.Millisecond, 50*time.Millisecond
	h := auth.NewHolder()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.Run(ctx, h, func() { close(ready) })
	}()
	defer func() { cancel(); <-done }()

	h.Set("hvs.first")
	time.Sleep(100 * time.Millisecond) // a few failed attempts
	select {
	case <-ready:
		t.Fatal("ready although the sink could not be written")
	default:
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ready)
	check(t, path, "hvs.first")

	before, _ := os.Stat(path)
	h.Set("hvs.second")
	deadline := time.Now().Add(30 * time.Second)
	for readFile(path) != "hvs.second" {
		if time.Now().After(deadline) {
			t.Fatal("second token never written")
		}
		time.Sleep(20 * time.Millisecond)
	}
	check(t, path, "hvs.second")
	after, _ := os.Stat(path)
	if os.SameFile(before, after) {
		t.Error("new token written in place instead of replacing the file atomically")
	}
}

func waitFor(t *testing.T, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatal("timed out")
	}
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

func check(t *testing.T, path, want string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if got := readFile(path); got != want || fi.Mode().Perm() != 0o644 || st.Uid != 65534 || st.Gid != 65534 {
		t.Errorf("sink %q mode %v owner %d:%d, want %q 0644 65534:65534", strings.TrimSpace(got), fi.Mode().Perm(), st.Uid, st.Gid, want)
	}
}

// A token already in the file (a second write, a reload, a restart) leaves
// the file alone: same inode, same mtime. Whoever watches the file (inotify,
// a path unit) must not see a change that is none.
func TestSameTokenNotRewritten(t *testing.T) {
	tests := map[string]func(t *testing.T, f *File, path string){
		"Write again": func(t *testing.T, f *File, path string) {
			if err := f.Write(context.Background(), "hvs.same"); err != nil {
				t.Fatal(err)
			}
		},
		"Run of a new sink (reload, restart)": func(t *testing.T, f *File, path string) {
			again, err := New(f.Config, nil, zaptest.NewLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			h := auth.NewHolder()
			h.Set("hvs.same")
			ctx, cancel := context.WithCancel(context.Background())
			ready := make(chan struct{})
			done := make(chan struct{})
			go func() {
				defer close(done)
				again.Run(ctx, h, func() { close(ready) })
			}()
			waitFor(t, ready) // ready although nothing was written
			cancel()
			<-done
		},
	}
	for name, second := range tests {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "token")
			f, err := New(config.Sink{Path: path, Mode: 0o640}, nil, zaptest.NewLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			if err := f.Write(context.Background(), "hvs.same"); err != nil {
				t.Fatal(err)
			}
			// An mtime in the past: a rewrite, however quick, moves it.
			past := time.Now().Add(-time.Hour).Truncate(time.Second)
			if err := os.Chtimes(path, past, past); err != nil {
				t.Fatal(err)
			}
			before, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			second(t, f, path)
			after, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if !os.SameFile(before, after) || !after.ModTime().Equal(past) || readFile(path) != "hvs.same" {
				t.Errorf("the file was rewritten: inode kept %v, mtime %s (was %s)", os.SameFile(before, after), after.ModTime(), past)
			}
		})
	}
}

// With Attempts (exit_after_auth) a sink that cannot be written ends Run
// with the last error after that many failures, naming the file and never
// the token; without, Run retries until its context ends.
func TestSinkAttemptsEndRun(t *testing.T) {
	tests := map[string]struct {
		attempts int
		wantErr  bool
	}{
		"retries for ever": {attempts: 0},
		"gives up after 3": {attempts: 3, wantErr: true},
		"gives up at once": {attempts: 1, wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			notDir := filepath.Join(dir, "file")
			if err := os.WriteFile(notDir, []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(notDir, "token")
			f, err := New(config.Sink{Path: path, Mode: 0o600}, nil, zaptest.NewLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			f.MinBackoff, f.MaxBackoff, f.Attempts = time.Millisecond, 5*time.Millisecond, tc.attempts
			h := auth.NewHolder()
			const token = "hvs.never-written-anywhere"
			h.Set(token)
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			err = f.Run(ctx, h, func() { t.Error("ready although the sink could not be written") })
			switch {
			case tc.wantErr && err == nil:
				t.Fatal("Run retried until its context ended, want it to give up")
			case !tc.wantErr && err != nil:
				t.Fatalf("Run gave up: %v", err)
			case err != nil:
				msg := err.Error()
				if !strings.Contains(msg, path) || !strings.Contains(msg, fmt.Sprintf("after %d attempts", tc.attempts)) || strings.Contains(msg, token) {
					t.Errorf("error %q: want the path and the count, never the token", msg)
				}
				if ctx.Err() != nil {
					t.Error("Run gave up only when its context ended")
				}
			}
		})
	}
}

// Defect: mode = 0000, which Vault Agent documents as "leave the file's
// mode alone", wrote the token 0600 (atomicfile's default for 0), and each
// restart rewrote a file that already held the token, since its mode was
// not 0000. The existing file's mode is now kept (0640 for a new file) and
// a file that holds the token is left alone.
func TestSinkModeZeroKeepsTheFilesMode(t *testing.T) {
	tests := map[string]struct {
		mode     os.FileMode
		existing os.FileMode // 0: no file before
		want     os.FileMode
	}{
		"0000, no file":         {mode: 0, want: 0o640},
		"0000, a 0644 file":     {mode: 0, existing: 0o644, want: 0o644},
		"0000, a 0600 file":     {mode: 0, existing: 0o600, want: 0o600},
		"0600 over a 0644 file": {mode: 0o600, existing: 0o644, want: 0o600},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "token")
			if tc.existing != 0 {
				if err := os.WriteFile(path, []byte("old"), tc.existing); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path, tc.existing); err != nil {
					t.Fatal(err)
				}
			}
			f, err := New(config.Sink{Path: path, Mode: tc.mode}, nil, zaptest.NewLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			if err := f.Write(context.Background(), "hvs.token-for-mode-test"); err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != tc.want {
				t.Errorf("mode %#o, want %#o", fi.Mode().Perm(), tc.want)
			}
			// A restart's sink finds the token there and leaves it.
			again, err := New(config.Sink{Path: path, Mode: tc.mode}, nil, zaptest.NewLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			if !again.current("hvs.token-for-mode-test") {
				t.Error("a file holding the token is not current: a restart rewrites it")
			}
		})
	}
}
