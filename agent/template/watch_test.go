package template

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/agent/config"
	"github.com/latchkey/latchkey/test/testkit"
)

// Templates sharing a destination (allowed, as in Vault Agent) settle on
// the last one's output in config order, whichever of them changed, and
// are written then once, not over and over: rendered alone, one overwrote
// the other's file, whose watch rendered that one alone, and so on, some
// two hundred writes (and commands) a second for ever.
func TestSharedDestinationSettles(t *testing.T) {
	tests := []struct {
		name    string
		trigger func(t *testing.T, r *running, v2, dest string, cfg config.TemplateConfig)
		want    string
	}{
		{"the first one's secret changes", func(t *testing.T, r *running, v2, dest string, cfg config.TemplateConfig) {
			putV2(t, v2, "first", map[string]any{"k": "first-two"})
			r.clk.Step(t, cfg.StaticSecretRenderInterval)
		}, "second-one"},
		{"the second one's secret changes", func(t *testing.T, r *running, v2, dest string, cfg config.TemplateConfig) {
			putV2(t, v2, "second", map[string]any{"k": "second-two"})
			r.clk.Step(t, cfg.StaticSecretRenderInterval)
		}, "second-two"},
		{"someone else writes the file", func(t *testing.T, r *running, v2, dest string, cfg config.TemplateConfig) {
			testkit.Must(t, os.WriteFile(dest, []byte("theirs"), 0o644))
		}, "second-one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, v2 := kvMounts(t)
			putV2(t, v2, "first", map[string]any{"k": "first-one"})
			putV2(t, v2, "second", map[string]any{"k": "second-one"})
			dir := t.TempDir()
			dest := filepath.Join(dir, "shared.conf")
			marker := filepath.Join(dir, "ran")
			var tcs []config.Template
			for _, n := range []string{"first", "second"} {
				tc := tmpl(dir, "shared.conf", fmt.Sprintf(`{{ with secret "%s/%s" }}{{ .Data.data.k }}{{ end }}`, v2, n))
				tc.Exec = &config.Exec{Command: []string{"/bin/sh", "-c", "echo " + n + " >> " + marker}, Timeout: 10 * time.Second}
				tcs = append(tcs, tc)
			}
			cfg := quick()
			cfg.StaticSecretRenderInterval = time.Minute
			r := run(t, Options{Templates: tcs, Config: cfg, Clients: root(t, srv.Addr)})
			testkit.Eventually(t, "first render, both commands", func() bool {
				return testkit.ReadFile(dest) == "second-one" && testkit.ReadFile(marker) == "first\nsecond\n"
			})
			before := r.m.units[0].runs.Load() + r.m.units[1].runs.Load()
			tt.trigger(t, r, v2, dest, cfg)
			testkit.Eventually(t, "rendered again", func() bool {
				return r.m.units[0].runs.Load()+r.m.units[1].runs.Load() > before && testkit.ReadFile(dest) == tt.want
			})
			time.Sleep(500 * time.Millisecond) // let a loop show
			if got := testkit.ReadFile(dest); got != tt.want {
				t.Errorf("file %q, want %q (the last template's)", got, tt.want)
			}
			// Both executed once more for the trigger (twice at most: the
			// event of the round's own writes may come after it).
			if runs := r.m.units[0].runs.Load() + r.m.units[1].runs.Load() - before; runs > 4 {
				t.Errorf("%d executions after one change: the two templates keep overwriting each other", runs)
			}
			if cmds := strings.Count(testkit.ReadFile(marker), "\n"); cmds > 4 {
				t.Errorf("%d commands ran: %q", cmds, testkit.ReadFile(marker))
			}
		})
	}
}

// A source or destination is watched as the config spells it and as its
// symlinks lead: an unclean or relative path ("/etc/app//app.env",
// "./app.tmpl", which fsnotify reports cleaned) was never matched, so a
// deleted destination stayed deleted and an edited source unread; an edit
// of a symlinked source's target (in another directory), or a swap of the
// link as a Kubernetes ConfigMap's ..data is swapped, was not seen either.
func TestWatchedAsSpelledAndAsLinked(t *testing.T) {
	tests := []struct {
		name string
		// setup writes the source (text) and returns the template's
		// source and destination as the config spells them, and edit,
		// which replaces the source's text.
		setup func(t *testing.T, dir, text string) (src, dest string, edit func(string))
	}{
		{"unclean paths", func(t *testing.T, dir, text string) (string, string, func(string)) {
			p := filepath.Join(dir, "app.tmpl")
			testkit.WriteFile(t, p, text)
			return dir + "//./app.tmpl", dir + "/out/./app.conf", func(s string) { replace(t, p, s) }
		}},
		{"relative paths", func(t *testing.T, dir, text string) (string, string, func(string)) {
			t.Chdir(dir)
			testkit.WriteFile(t, "app.tmpl", text)
			return "./app.tmpl", "out/app.conf", func(s string) { replace(t, filepath.Join(dir, "app.tmpl"), s) }
		}},
		{"symlinked source, target edited", func(t *testing.T, dir, text string) (string, string, func(string)) {
			elsewhere := t.TempDir()
			target := filepath.Join(elsewhere, "app.tmpl")
			testkit.WriteFile(t, target, text)
			src := filepath.Join(dir, "app.tmpl")
			testkit.Must(t, os.Symlink(target, src))
			return src, filepath.Join(dir, "out", "app.conf"), func(s string) { testkit.WriteFile(t, target, s) }
		}},
		{"ConfigMap-style link swapped", func(t *testing.T, dir, text string) (string, string, func(string)) {
			cm := filepath.Join(dir, "cm")
			testkit.Must(t, os.MkdirAll(filepath.Join(cm, "..v1"), 0o755))
			testkit.WriteFile(t, filepath.Join(cm, "..v1", "app.tmpl"), text)
			testkit.Must(t, os.Symlink("..v1", filepath.Join(cm, "..data")))
			testkit.Must(t, os.Symlink("..data/app.tmpl", filepath.Join(cm, "app.tmpl")))
			return filepath.Join(cm, "app.tmpl"), filepath.Join(dir, "out", "app.conf"), func(s string) {
				testkit.Must(t, os.MkdirAll(filepath.Join(cm, "..v2"), 0o755))
				testkit.WriteFile(t, filepath.Join(cm, "..v2", "app.tmpl"), s)
				testkit.Must(t, os.Symlink("..v2", filepath.Join(cm, "..data_tmp")))
				testkit.Must(t, os.Rename(filepath.Join(cm, "..data_tmp"), filepath.Join(cm, "..data")))
				testkit.Must(t, os.RemoveAll(filepath.Join(cm, "..v1")))
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, v2 := kvMounts(t)
			putV2(t, v2, "app", map[string]any{"k": "value"})
			dir := t.TempDir()
			text := func(prefix string) string {
				return fmt.Sprintf(`%s={{ with secret "%s/app" }}{{ .Data.data.k }}{{ end }}`, prefix, v2)
			}
			src, dest, edit := tt.setup(t, dir, text("a"))
			at := dest
			if !filepath.IsAbs(at) {
				at = filepath.Join(dir, at)
			}
			tc := config.Template{Source: src, Destination: dest, CreateDestDirs: true}
			r := run(t, Options{Templates: []config.Template{tc}, Clients: root(t, srv.Addr)})
			testkit.Eventually(t, "first render", func() bool { return testkit.ReadFile(at) == "a=value" })
			testkit.Must(t, os.Remove(at))
			testkit.Eventually(t, "deleted destination restored", func() bool { return testkit.ReadFile(at) == "a=value" })
			edit(text("b"))
			r.clk.StepUntil(t, config.DefaultSourceQuiet, "source edit rendered", func() bool { return testkit.ReadFile(at) == "b=value" })
			// Again, through the directory watched since the last read (the
			// swapped link leads to ..v2 now).
			edit(text("c"))
			r.clk.StepUntil(t, config.DefaultSourceQuiet, "second source edit rendered", func() bool { return testkit.ReadFile(at) == "c=value" })
		})
	}
}

// An overflow of the kernel's inotify queue (more events than
// fs.inotify.max_queued_events while the agent was busy: here a command
// runs while a directory fills) is read and answered by looking at every
// template again. Unread, fsnotify's reader blocked on sending the error
// and no event came again: a destination deleted afterwards stayed
// deleted for the agent's life.
func TestWatchOverflowRescans(t *testing.T) {
	limit, err := os.ReadFile("/proc/sys/fs/inotify/max_queued_events")
	testkit.Must(t, err)
	n, err := strconv.Atoi(strings.TrimSpace(string(limit)))
	testkit.Must(t, err)
	_, v2 := kvMounts(t)
	putV2(t, v2, "app", map[string]any{"k": "value"})
	dir := t.TempDir()
	dest := filepath.Join(dir, "app.conf")
	ctl := t.TempDir()
	started, release := filepath.Join(ctl, "started"), filepath.Join(ctl, "release")
	tc := tmpl(dir, "app.conf", fmt.Sprintf(`{{ with secret "%s/app" }}{{ .Data.data.k }}{{ end }}`, v2))
	// The command holds the render loop while the events pile up.
	tc.Exec = &config.Exec{Command: []string{"/bin/sh", "-c", "touch " + started + "; until [ -e " + release + " ]; do sleep 0.05; done"}, Timeout: time.Minute}
	log, logs := testkit.Observed(t)
	run(t, Options{Templates: []config.Template{tc}, Clients: root(t, srv.Addr), Logger: log})
	testkit.Eventually(t, "first render, its command started", func() bool {
		_, err := os.Stat(started)
		return testkit.ReadFile(dest) == "value" && err == nil
	})
	// A create each, beyond the queue and what fsnotify's reader holds.
	for i := range n + 8192 {
		testkit.Must(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("noise-%d", i)), nil, 0o600))
	}
	testkit.WriteFile(t, release, "")
	testkit.Eventually(t, "overflow logged", func() bool {
		return logs.FilterMessageSnippet("queue overflowed").Len() == 1
	})
	testkit.Must(t, os.Remove(dest))
	testkit.Eventually(t, "destination deleted after the overflow restored", func() bool { return testkit.ReadFile(dest) == "value" })
}

// A destination changed where no watch sees it (here its directory is
// moved away and made anew: the watch follows the old one) is put back at
// the next refresh, as Vault Agent rewrites it at each one; it stayed
// missing while the secret did not change.
func TestUnseenDestinationChangeRestoredAtRefresh(t *testing.T) {
	_, v2 := kvMounts(t)
	putV2(t, v2, "app", map[string]any{"k": "value"})
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	dest := filepath.Join(out, "app.conf")
	tc := config.Template{Contents: fmt.Sprintf(`{{ with secret "%s/app" }}{{ .Data.data.k }}{{ end }}`, v2), Destination: dest, CreateDestDirs: true}
	cfg := quick()
	cfg.StaticSecretRenderInterval = time.Minute
	r := run(t, Options{Templates: []config.Template{tc}, Config: cfg, Clients: root(t, srv.Addr)})
	testkit.Eventually(t, "first render", func() bool { return testkit.ReadFile(dest) == "value" })
	testkit.Must(t, os.Rename(out, out+".old"))
	testkit.Must(t, os.Mkdir(out, 0o755))
	time.Sleep(200 * time.Millisecond) // no event comes; give a wrong one time to show
	if _, err := os.Stat(dest); err == nil {
		t.Fatal("restored before the refresh: this test no longer shows an unseen change")
	}
	r.clk.StepUntil(t, cfg.StaticSecretRenderInterval, "restored at the refresh", func() bool { return testkit.ReadFile(dest) == "value" })
}
