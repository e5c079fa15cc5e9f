package template

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	"go.uber.org/zap"

	"github.com/latchkey/latchkey/agent/config"
	"github.com/latchkey/latchkey/test/testkit"
)

// scaleTemplates returns n templates over n/10 KV v2 secrets (at least
// one) of a new mount, all in one destination directory: the shape of the
// benchmark's cost-growth row.
func scaleTemplates(tb testing.TB, n int) []config.Template {
	tb.Helper()
	v2 := fmt.Sprintf("kvscale-%d", seq.Add(1))
	testkit.Must(tb, srv.Client.Sys().Mount(v2, &api.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}))
	secrets := max(1, n/10)
	for i := 0; i < secrets; i++ {
		_, err := srv.Client.Logical().Write(fmt.Sprintf("%s/data/s%d", v2, i), map[string]any{"data": map[string]any{"user": fmt.Sprintf("u%d", i), "password": "p"}})
		testkit.Must(tb, err)
	}
	dir := tb.TempDir()
	ts := make([]config.Template, n)
	for i := range ts {
		ts[i] = tmpl(dir, fmt.Sprintf("t%d", i), fmt.Sprintf(`{{ with secret "%s/s%d" }}{{ .Data.data.user }}:{{ .Data.data.password }}{{ end }}`, v2, i%secrets))
	}
	return ts
}

// BenchmarkFirstRender is the cost of a manager's first render of n
// templates over n/10 secrets, all in one directory, per template (ns/op
// is per run; see the per-template metrics): linear growth keeps them
// flat from 10 to 1000. Writes (create, fsync, rename, fsync of the
// directory) are most of the wall time.
func BenchmarkFirstRender(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			var cpu0, cpu1 syscall.Rusage
			runs := 0
			syscall.Getrusage(syscall.RUSAGE_SELF, &cpu0)
			for b.Loop() {
				b.StopTimer()
				ts := scaleTemplates(b, n)
				m, err := New(Options{Templates: ts, Config: config.DefaultTemplateConfig(), Clients: testkit.NewClients(b, srv.Addr, srv.RootToken), Logger: zap.NewNop()})
				testkit.Must(b, err)
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				b.StartTimer()
				go func() { done <- m.Run(ctx) }()
				<-m.Ready()
				b.StopTimer()
				runs += executions(m)
				cancel()
				<-done
				b.StartTimer()
			}
			syscall.Getrusage(syscall.RUSAGE_SELF, &cpu1)
			cpu := time.Duration(syscall.TimevalToNsec(cpu1.Utime) + syscall.TimevalToNsec(cpu1.Stime) - syscall.TimevalToNsec(cpu0.Utime) - syscall.TimevalToNsec(cpu0.Stime))
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/template")
			// CPU of this process (setup included: seeding and config),
			// and executions: both should grow as n.
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*n), "cpu-ns/template")
			b.ReportMetric(float64(runs)/float64(b.N*n), "executions/template")
		})
	}
}

// executions is how many times m's templates were executed in all.
func executions(m *Manager) int {
	n := 0
	for _, u := range m.units {
		n += int(u.runs.Load())
	}
	return n
}

// waitFile waits until p exists.
func waitFile(t *testing.T, p string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second) // a bound against hanging, not a speed check
	for {
		if _, err := os.Stat(p); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never rendered again", p)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The events of the agent's own writes (several per file, in the watched
// destination directory) re-render nothing: rendering n templates executes
// each twice (the first render round executes all of them, fetches what
// they missed together, and executes them again), and a destination
// deleted by someone else costs one execution of its own template, not of
// all.
func TestWorkFollowsChanges(t *testing.T) {
	for _, n := range []int{10, 100, 300} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			ts := scaleTemplates(t, n)
			r := run(t, Options{Templates: ts, Clients: root(t, srv.Addr)})
			waitReady(t, r.m)
			// Each deletion's event comes after every event before it: once
			// the second file is back, the first one's rewrite was seen too.
			for _, i := range []int{0, n - 1} {
				testkit.Must(t, os.Remove(ts[i].Destination))
				waitFile(t, ts[i].Destination)
			}
			want := 2*n + 2
			if got := executions(r.m); got != want {
				t.Errorf("%d templates over %d secrets: %d executions, want %d (two per template, one per deleted file)", n, max(1, n/10), got, want)
			}
		})
	}
}

// A template refused with the old token (a restarted Vault, a revoked
// token) is retried as soon as a login brings a new one, not after its
// backoff (an hour here, on a clock that does not move).
func TestLoginRetriesFailedTemplatesAtOnce(t *testing.T) {
	_, v2 := kvMountsTB(t)
	dir := t.TempDir()
	tp := tmpl(dir, "kv", fmt.Sprintf(`{{ with secret "%s/app" }}{{ .Data.data.k }}{{ end }}`, v2))
	cl := testkit.NewClients(t, srv.Addr, "not-a-token")
	cfg := config.DefaultTemplateConfig()
	cfg.RetryMin, cfg.RetryMax = time.Hour, time.Hour
	r := run(t, Options{Templates: []config.Template{tp}, Clients: cl, Config: cfg})
	testkit.Eventually(t, "the template refused", func() bool { return cl.Denied() > 0 })
	cl.Relogin(time.Now(), srv.RootToken)
	waitReady(t, r.m)
	if got := testkit.ReadFile(tp.Destination); got != "v" {
		t.Errorf("rendered %q, want %q", got, "v")
	}
}

// kvMountsTB mounts a KV v2 secret engine holding app = {k: v}.
func kvMountsTB(tb testing.TB) (string, string) {
	tb.Helper()
	v2 := fmt.Sprintf("kvlogin-%d", seq.Add(1))
	testkit.Must(tb, srv.Client.Sys().Mount(v2, &api.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}))
	_, err := srv.Client.Logical().Write(v2+"/data/app", map[string]any{"data": map[string]any{"k": "v"}})
	testkit.Must(tb, err)
	return "", v2
}
