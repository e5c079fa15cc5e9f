package template

import (
	"fmt"
	"os"
	"path/filepath"
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
