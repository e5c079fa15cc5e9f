package template

import (
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/latchkey/latchkey/agent/config"

	"github.com/latchkey/latchkey/test/testkit"
)

// TestSettleOncePerBurst pins when the render loop calls Options.Settle:
// once at the quiet point after a burst of executions, not again while
// nothing ran, and not twice within SettleEvery (that burst's call waits
// for the first quiet point after it).
func TestSettleOncePerBurst(t *testing.T) {
	clk := testkit.NewClock(time.Unix(1_700_000_000, 0))
	calls := 0
	m, err := New(Options{
		Templates: []config.Template{tmpl(t.TempDir(), "a", "a"), tmpl(t.TempDir(), "b", "b")},
		Config:    quick(), Logger: zaptest.NewLogger(t), Clock: clk,
		Settle: func() { calls++ },
	})
	testkit.Must(t, err)
	steps := []struct {
		name    string
		runs    int // executions of unit 0 before the quiet point
		advance time.Duration
		want    int // Settle calls so far
	}{
		{"nothing ran yet", 0, 0, 0},
		{"after the first burst", 2, 0, 1},
		{"quiet again, nothing ran", 0, time.Second, 1},
		{"a burst soon after the last call waits", 1, time.Second, 1},
		{"still within SettleEvery of the last call", 0, SettleEvery / 2, 1},
		{"the first quiet point after SettleEvery settles it", 0, SettleEvery / 2, 2},
		{"and only once", 0, SettleEvery, 2},
		{"a later burst settles", 1, 0, 3},
	}
	for _, s := range steps {
		clk.Advance(s.advance)
		m.units[0].runs.Add(int64(s.runs))
		m.settle()
		if calls != s.want {
			t.Fatalf("%s: Settle called %d times, want %d", s.name, calls, s.want)
		}
	}
}

// TestSettleAfterFirstRender shows the render loop calls Settle once the
// first renders are done, and that no Settle is fine.
func TestSettleAfterFirstRender(t *testing.T) {
	dir := t.TempDir()
	called := make(chan struct{}, 10)
	r := run(t, Options{Templates: []config.Template{tmpl(dir, "a", "a"), tmpl(dir, "b", "b")}, Clients: root(t, srv.Addr),
		Settle: func() { called <- struct{}{} }})
	<-r.m.Ready()
	select {
	case <-called:
	case <-time.After(30 * time.Second):
		t.Fatal("Settle not called after the first render")
	}
	r2 := run(t, Options{Templates: []config.Template{tmpl(t.TempDir(), "c", "c")}, Clients: root(t, srv.Addr)})
	<-r2.m.Ready()
}
