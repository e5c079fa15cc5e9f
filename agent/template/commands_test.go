package template

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/latchkey/latchkey/agent/config"
	"github.com/latchkey/latchkey/test/testkit"
)

// slowCommand is a template whose command appends "start" to dir/log,
// waits for dir/release, removes it and appends "end"; on SIGTERM it
// appends "term" and exits.
func slowCommand(dir, name string) config.Template {
	t := tmpl(dir, name, "content of "+name)
	log, release := filepath.Join(dir, "log"), filepath.Join(dir, "release")
	t.Exec = &config.Exec{Command: []string{"/bin/sh", "-c", `trap 'echo term >> "$1"; exit 143' TERM
echo start >> "$1"
while [ ! -e "$2" ]; do sleep 0.05; done
rm -f "$2"
echo end >> "$1"`, "sh", log, release}, Timeout: time.Minute}
	return t
}

// records lists the pending command records in dir.
func records(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, pendingPrefix+"*.json"))
	testkit.Must(t, err)
	return m
}

// started runs m until its command logged "start" n times in all, then
// ends its Run (as a reload or a stop does) and returns once Run returned.
func startedThenStopped(t *testing.T, m *Manager, log string, n int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	testkit.Eventually(t, "the command started", func() bool { return strings.Count(testkit.ReadFile(log), "start") == n })
	cancel()
	select {
	case err := <-done:
		testkit.Must(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Run waited for the command")
	}
}

// The lifecycle of a template's command across the end of its manager's
// Run: a successor (reload) takes the running command over without
// killing or repeating it; Finish (stop) sends SIGTERM and keeps the
// pending record, so that a fresh manager on the same state directory runs
// the command once; a changed command or destination drops the record.
func TestCommandAcrossManagers(t *testing.T) {
	tests := []struct {
		name string
		// inherit: the second manager inherits the first (a reload);
		// otherwise the first is finished (a stop) and the second starts
		// afresh (the next start).
		inherit bool
		// edit changes the template for the second manager.
		edit func(*config.Template)
		// want is the command's log at the end; wantLog, a line of the
		// second manager's log.
		want, wantLog string
	}{
		{name: "reload: handed over, runs once", inherit: true, want: "start\nend\n",
			wantLog: "reload: a template command is still running; it goes on to its end and does not run again"},
		{name: "stop, then start: runs again", want: "start\nterm\nstart\nend\n",
			wantLog: "template command did not run to its end (interrupted by a stop, a crash or a reload); running it now"},
		{name: "stop, then start with another command: record dropped", want: "start\nterm\n",
			edit: func(t *config.Template) {
				t.Exec.Command = append(t.Exec.Command[:len(t.Exec.Command):len(t.Exec.Command)], "extra")
			},
			wantLog: "removed the pending command record of a template no longer configured"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir, stateDir := t.TempDir(), filepath.Join(t.TempDir(), "state")
			log, release := filepath.Join(dir, "log"), filepath.Join(dir, "release")
			tl := slowCommand(dir, "app")
			o := Options{Templates: []config.Template{tl}, Config: quick(), Clients: root(t, "http://127.0.0.1:1"),
				Logger: zaptest.NewLogger(t), StateDir: stateDir, Clock: testkit.NewClock(time.Now())}
			first, err := New(o)
			testkit.Must(t, err)
			t.Cleanup(first.Finish)
			startedThenStopped(t, first, log, 1)
			if n := len(records(t, stateDir)); n != 1 {
				t.Fatalf("%d pending records while the command runs, want 1", n)
			}
			if !tc.inherit {
				first.Finish()
				if got := testkit.ReadFile(log); got != "start\nterm\n" {
					t.Fatalf("after Finish the command's log is %q, want SIGTERM seen", got)
				}
				if n := len(records(t, stateDir)); n != 1 {
					t.Fatalf("%d pending records after a stop mid-command, want 1", n)
				}
			}
			second := slowCommand(dir, "app")
			if tc.edit != nil {
				tc.edit(&second)
			}
			other := tmpl(dir, "other", "added by the reload")
			logger, logs := testkit.Observed(t)
			o.Templates, o.Logger = []config.Template{second, other}, logger
			var next *Manager
			if tc.inherit {
				next, err = New(o)
				testkit.Must(t, err)
				next.Inherit(first)
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				go func() { done <- next.Run(ctx) }()
				t.Cleanup(func() { cancel(); <-done })
			} else {
				next = run(t, o).m
			}
			t.Cleanup(next.Finish)
			if tc.want != "start\nterm\n" {
				testkit.Eventually(t, "the command running", func() bool { return strings.HasSuffix(testkit.ReadFile(log), "start\n") })
			}
			if tc.inherit {
				// The running command is not the new manager's to wait for.
				waitReady(t, next)
			}
			testkit.WriteFile(t, release, "")
			waitReady(t, next)
			if testkit.ReadFile(filepath.Join(dir, "other")) != "added by the reload" {
				t.Error("the added template was not rendered")
			}
			testkit.Eventually(t, "the command's end", func() bool { return len(records(t, stateDir)) == 0 })
			time.Sleep(300 * time.Millisecond) // let a wrong second run show
			if got := testkit.ReadFile(log); got != tc.want {
				t.Errorf("the command's log is %q, want %q", got, tc.want)
			}
			if logs.FilterMessageSnippet(tc.wantLog).Len() == 0 {
				t.Errorf("no log line %q", tc.wantLog)
			}
			for _, e := range logs.FilterMessageSnippet("template command").All() {
				if e.ContextMap()["template"] == nil {
					t.Errorf("log line %q lacks the template field", e.Message)
				}
			}
		})
	}
}

// A reload that changes a template's content while its command runs: the
// new content is written at once, and the command runs again, recorded as
// pending, only after the running one ended.
func TestReloadChangingATemplateRunsItsCommandAfterTheRunningOne(t *testing.T) {
	dir, stateDir := t.TempDir(), filepath.Join(t.TempDir(), "state")
	log, release, dest := filepath.Join(dir, "log"), filepath.Join(dir, "release"), filepath.Join(dir, "app")
	o := Options{Templates: []config.Template{slowCommand(dir, "app")}, Config: quick(), Clients: root(t, "http://127.0.0.1:1"),
		Logger: zaptest.NewLogger(t), StateDir: stateDir, Clock: testkit.NewClock(time.Now())}
	first, err := New(o)
	testkit.Must(t, err)
	t.Cleanup(first.Finish)
	startedThenStopped(t, first, log, 1)
	changed := slowCommand(dir, "app")
	changed.Contents = "new content"
	o.Templates = []config.Template{changed}
	next, err := New(o)
	testkit.Must(t, err)
	next.Inherit(first)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- next.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; next.Finish() })
	testkit.Eventually(t, "the new content", func() bool { return testkit.ReadFile(dest) == "new content" })
	time.Sleep(300 * time.Millisecond) // let a second command started too early show
	if got := testkit.ReadFile(log); got != "start\n" {
		t.Fatalf("the command's log is %q: the second run did not wait for the first", got)
	}
	testkit.WriteFile(t, release, "")
	testkit.Eventually(t, "the second run", func() bool { return testkit.ReadFile(log) == "start\nend\nstart\n" })
	if n := len(records(t, stateDir)); n != 1 {
		t.Errorf("%d pending records during the second run, want 1", n)
	}
	testkit.WriteFile(t, release, "")
	testkit.Eventually(t, "the second run's end", func() bool { return len(records(t, stateDir)) == 0 })
	waitReady(t, next)
	if got := testkit.ReadFile(log); got != "start\nend\nstart\nend\n" {
		t.Errorf("the command's log is %q", got)
	}
}
