package template

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/latchkey/latchkey/agent/config"
	"github.com/latchkey/latchkey/test/testkit"
)

// logged counts the entries with message msg whose "template" field is name.
func logged(logs *observer.ObservedLogs, msg, name string) int {
	n := 0
	for _, e := range logs.FilterMessage(msg).All() {
		if e.ContextMap()["template"] == name {
			n++
		}
	}
	return n
}

// replace writes p as an editor that saves by rename does: the new content
// appears at once, never half-written. (A write in place is seen first
// truncated, and onFileEvent then loads and renders the empty text — a
// known problem of the manager that this test does not exercise.)
func replace(t *testing.T, p, content string) {
	t.Helper()
	tmp := p + ".new"
	testkit.Must(t, os.WriteFile(tmp, []byte(content), 0o644))
	testkit.Must(t, os.Rename(tmp, p))
}

// fileID is what tells that a file was rewritten: its inode (a render
// replaces the file by rename) and its modification time.
type fileID struct {
	ino   uint64
	mtime time.Time
}

func idOf(t *testing.T, p string) fileID {
	t.Helper()
	fi, err := os.Stat(p)
	testkit.Must(t, err)
	return fileID{fi.Sys().(*syscall.Stat_t).Ino, fi.ModTime()}
}

// A template source edited into a syntax error at run time: the error is
// logged, the previous template goes on rendering (a change of its secret
// is still written), its destination and the other template's are not
// touched; once the source is fixed it is rendered from the new text.
func TestSourceSyntaxErrorAtRuntime(t *testing.T) {
	_, v2 := kvMounts(t)
	putV2(t, v2, "app", map[string]any{"k": "one"})
	dir := t.TempDir()
	srcA, srcB := filepath.Join(dir, "a.tmpl"), filepath.Join(dir, "b.tmpl")
	body := func(prefix string) string {
		return fmt.Sprintf(`%s={{ with secret "%s/app" }}{{ .Data.data.k }}{{ end }}`, prefix, v2)
	}
	testkit.Must(t, os.WriteFile(srcA, []byte(body("a")), 0o644))
	testkit.Must(t, os.WriteFile(srcB, []byte(body("b")), 0o644))
	a := config.Template{Source: srcA, Destination: filepath.Join(dir, "out", "a"), CreateDestDirs: true}
	b := config.Template{Source: srcB, Destination: filepath.Join(dir, "out", "b"), CreateDestDirs: true}
	log, logs := testkit.ObservedAt(t, zapcore.DebugLevel)
	cfg := quick()
	cfg.StaticSecretRenderInterval = 200 * time.Millisecond
	r := run(t, Options{Templates: []config.Template{a, b}, Config: cfg, Clients: root(t, srv.Addr), Logger: log})
	waitReady(t, r.m)
	if testkit.ReadFile(a.Destination) != "a=one" || testkit.ReadFile(b.Destination) != "b=one" {
		t.Fatalf("first render: a %q, b %q", testkit.ReadFile(a.Destination), testkit.ReadFile(b.Destination))
	}
	idA, idB := idOf(t, a.Destination), idOf(t, b.Destination)

	const broken = "template source changed but does not load; keeping the previous one"
	replace(t, srcA, fmt.Sprintf(`broken={{ with secret "%s/app" }}{{ .Data.data.k }}`, v2)) // no {{ end }}
	r.clk.StepUntil(t, config.DefaultSourceQuiet, "the syntax error logged", func() bool { return logged(logs, broken, a.Destination) >= 1 })
	for _, e := range logs.FilterMessage(broken).All() {
		if err, _ := e.ContextMap()["error"].(string); err == "" || !strings.Contains(err, "parse template "+srcA) {
			t.Errorf("logged error %q does not name the source", err)
		}
	}
	// Some refreshes later (the secret unchanged): nothing was written.
	settle := logs.FilterMessage("rendered").Len()
	for i := 0; i < 3; i++ {
		r.clk.Step(t, cfg.StaticSecretRenderInterval)
	}
	if testkit.ReadFile(a.Destination) != "a=one" || idOf(t, a.Destination) != idA {
		t.Errorf("the broken template's destination was touched: %q", testkit.ReadFile(a.Destination))
	}
	if testkit.ReadFile(b.Destination) != "b=one" || idOf(t, b.Destination) != idB {
		t.Errorf("the other template's destination was touched: %q", testkit.ReadFile(b.Destination))
	}
	if n := logs.FilterMessage("rendered").Len(); n != settle {
		t.Errorf("%d renders while nothing changed", n-settle)
	}

	// The secret changes while the source is broken: the previous text
	// renders it.
	putV2(t, v2, "app", map[string]any{"k": "two"})
	r.clk.StepUntil(t, cfg.StaticSecretRenderInterval, "the previous template rendering the change", func() bool { return testkit.ReadFile(a.Destination) == "a=two" })
	r.clk.StepUntil(t, cfg.StaticSecretRenderInterval, "the other template rendering the change", func() bool { return testkit.ReadFile(b.Destination) == "b=two" })
	idB = idOf(t, b.Destination)

	replace(t, srcA, body("fixed"))
	r.clk.StepUntil(t, config.DefaultSourceQuiet, "the fixed source rendered", func() bool { return testkit.ReadFile(a.Destination) == "fixed=two" })
	if testkit.ReadFile(b.Destination) != "b=two" || idOf(t, b.Destination) != idB {
		t.Errorf("fixing a's source touched b: %q", testkit.ReadFile(b.Destination))
	}
	if n := logged(logs, "template source changed", a.Destination); n < 1 {
		t.Error("the fixed source was not logged as changed")
	}
}

// wait { max }: changes that keep coming faster than min would postpone
// the render for ever; max bounds that, so a render happens while the
// changes are still going on.
func TestWaitMaxBoundsPostponement(t *testing.T) {
	_, v2 := kvMounts(t)
	putV2(t, v2, "app", map[string]any{"k": "0"})
	dir := t.TempDir()
	tc := tmpl(dir, "out", fmt.Sprintf(`{{ with secret "%s/app" }}{{ .Data.data.k }}{{ end }}`, v2))
	// min is far longer than the 300ms between changes; max is what must
	// end the wait.
	tc.Wait = config.Wait{Min: 4 * time.Second, Max: 5 * time.Second}
	cfg := quick()
	cfg.StaticSecretRenderInterval = 100 * time.Millisecond
	r := run(t, Options{Templates: []config.Template{tc}, Config: cfg, Clients: root(t, srv.Addr)})
	waitReady(t, r.m)
	if got := testkit.ReadFile(tc.Destination); got != "0" {
		t.Fatalf("first render %q", got)
	}
	// Change the secret every 300ms of the manager's clock for up to 200
	// changes (a minute):
	// without max this would never render; with it, a render must show up
	// while the changes go on.
	const changes = 200
	renderedAt := 0
	var rendered string
	for i := 1; i <= changes; i++ {
		putV2(t, v2, "app", map[string]any{"k": strconv.Itoa(i)})
		r.clk.Step(t, 300*time.Millisecond)
		if got := testkit.ReadFile(tc.Destination); got != "0" {
			renderedAt, rendered = i, got
			break
		}
	}
	if renderedAt == 0 {
		t.Fatalf("no render during %d changes 300ms apart: wait { max } did not bound the postponement", changes)
	}
	t.Logf("rendered %q after change %d", rendered, renderedAt)
	// The render was of a value written during the burst, and the burst
	// went on after it: more changes follow, then the last one renders
	// after a quiet min.
	n, err := strconv.Atoi(rendered)
	if err != nil || n < 1 || n > renderedAt {
		t.Fatalf("rendered %q after change %d", rendered, renderedAt)
	}
	last := renderedAt + 3
	for i := renderedAt + 1; i <= last; i++ {
		putV2(t, v2, "app", map[string]any{"k": strconv.Itoa(i)})
		r.clk.Step(t, 300*time.Millisecond)
	}
	r.clk.StepUntil(t, 300*time.Millisecond, "the last value once the changes stopped", func() bool { return testkit.ReadFile(tc.Destination) == strconv.Itoa(last) })
}

// stoppable starts a manager that the test stops itself (a restart), and
// that is stopped at the test's end otherwise.
func stoppable(t *testing.T, o Options) (*Manager, func()) {
	t.Helper()
	if o.Logger == nil {
		o.Logger = zaptest.NewLogger(t)
	}
	if o.Config == (config.TemplateConfig{}) {
		o.Config = quick()
	}
	m, err := New(o)
	testkit.Must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("manager: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("manager did not stop")
		}
	}
	t.Cleanup(stop)
	return m, stop
}

// A restart with a still-valid certificate at the destination issues
// nothing: no request reaches <mount>/issue/<role>, and the certificate on
// disk stays. (The first start, through the same kind of proxy, shows
// that an issue is counted.)
func TestPKIRestartIssuesNothing(t *testing.T) {
	c := srv.Client
	mount := fmt.Sprintf("pki-%d", seq.Add(1))
	testkit.Must(t, c.Sys().Mount(mount, &api.MountInput{Type: "pki", Config: api.MountConfigInput{MaxLeaseTTL: "87600h"}}))
	_, err := c.Logical().Write(mount+"/root/generate/internal", map[string]any{"common_name": "Test Root", "ttl": "8700h"})
	testkit.Must(t, err)
	_, err = c.Logical().Write(mount+"/roles/web", map[string]any{"allowed_domains": "example.com", "allow_subdomains": true, "max_ttl": "1h"})
	testkit.Must(t, err)
	dir := t.TempDir()
	tc := tmpl(dir, "cert.pem", fmt.Sprintf(`{{ with pkiCert "%s/issue/web" "common_name=a.example.com" "ttl=1h" }}{{ .Cert }}
{{ .Key }}{{ end }}`, mount))
	issue := mount + "/issue/web"

	first := newCounting(t)
	m1, stop1 := stoppable(t, Options{Templates: []config.Template{tc}, Clients: root(t, first.url)})
	waitReady(t, m1)
	if n := first.puts(issue); n != 1 {
		t.Fatalf("the first start made %d issue requests, want 1", n)
	}
	want := serial(t, tc.Destination)
	if want == "" {
		t.Fatal("no certificate rendered")
	}
	stop1()

	again := newCounting(t)
	m2, _ := stoppable(t, Options{Templates: []config.Template{tc}, Clients: root(t, again.url)})
	waitReady(t, m2)
	if n := again.puts(issue); n != 0 {
		t.Errorf("a restart with a valid certificate on disk made %d issue requests, want 0", n)
	}
	if got := serial(t, tc.Destination); got != want {
		t.Errorf("a restart replaced the certificate: serial %s, want %s", got, want)
	}
}

// A source edited in place (truncated, then written, as many editors and
// config managers do) is read once it is complete: the destination never
// holds the empty text seen in between.
func TestSourceEditedInPlaceNeverRendersHalfWritten(t *testing.T) {
	_, v2 := kvMounts(t)
	putV2(t, v2, "app", map[string]any{"k": "v"})
	dir := t.TempDir()
	src := filepath.Join(dir, "app.tmpl")
	body := func(n int) string {
		return fmt.Sprintf(`edit%d={{ with secret "%s/app" }}{{ .Data.data.k }}{{ end }}`, n, v2)
	}
	testkit.Must(t, os.WriteFile(src, []byte(body(0)), 0o644))
	tc := config.Template{Source: src, Destination: filepath.Join(dir, "out"), CreateDestDirs: true}
	// A quiet time far longer than the writer's pause below.
	cfg := quick()
	cfg.SourceQuiet = time.Second
	r := run(t, Options{Templates: []config.Template{tc}, Config: cfg, Clients: root(t, srv.Addr)})
	waitReady(t, r.m)
	stop := make(chan struct{})
	seen := make(chan []string, 1)
	go func() {
		var bad []string
		for {
			select {
			case <-stop:
				seen <- bad
				return
			default:
			}
			if got := testkit.ReadFile(tc.Destination); !strings.HasPrefix(got, "edit") {
				bad = append(bad, got)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	for n := 1; n <= 4; n++ {
		f, err := os.OpenFile(src, os.O_WRONLY|os.O_TRUNC, 0)
		testkit.Must(t, err)
		// A slow writer: the file stays empty for all but a moment of the
		// quiet time, and is not read meanwhile.
		r.clk.Step(t, time.Second-time.Millisecond)
		if got := testkit.ReadFile(tc.Destination); !strings.HasPrefix(got, "edit") {
			t.Errorf("the destination holds %q while its source is empty", got)
		}
		_, err = f.WriteString(body(n))
		testkit.Must(t, err)
		testkit.Must(t, f.Close())
		want := fmt.Sprintf("edit%d=v", n)
		r.clk.StepUntil(t, 250*time.Millisecond, want, func() bool { return testkit.ReadFile(tc.Destination) == want })
	}
	close(stop)
	if bad := <-seen; len(bad) > 0 {
		t.Errorf("the destination held %q while its source was being written", bad)
	}
}

// A render round fetches its secrets concurrently and writes its
// destinations concurrently: each secret (and the mount's KV version) is
// still asked once, a destination that cannot be written fails alone (the
// others are written), and the commands run in config order after the
// writes.
func TestParallelRoundIsolatesFailuresAndKeepsCommandOrder(t *testing.T) {
	_, v2 := kvMounts(t)
	for i := 0; i < 4; i++ {
		putV2(t, v2, fmt.Sprint("s", i), map[string]any{"k": fmt.Sprint("v", i)})
	}
	proxy := newCounting(t)
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	testkit.Must(t, syscall.Mkfifo(fifo, 0o600))
	testkit.Must(t, os.WriteFile(filepath.Join(dir, "plain"), nil, 0o600))
	order := filepath.Join(dir, "order")
	var ts []config.Template
	for i := 0; i < 20; i++ {
		tc := tmpl(dir, fmt.Sprint("t", i), fmt.Sprintf(`{{ with secret "%s/s%d" }}{{ .Data.data.k }}{{ end }}`, v2, i%4))
		switch i {
		case 5:
			tc.Destination = fifo // refused: never written through
		case 11:
			tc.Destination = filepath.Join(dir, "plain", "t11") // its parent is a file
		}
		tc.Exec = &config.Exec{Command: []string{"/bin/sh", "-c", fmt.Sprintf("echo %d >> %s", i, order)}}
		ts = append(ts, tc)
	}
	m, err := New(Options{Templates: ts, Config: config.DefaultTemplateConfig(), Clients: root(t, proxy.url), Logger: zaptest.NewLogger(t)})
	testkit.Must(t, err)
	idx := make([]int, len(ts))
	for i := range idx {
		idx[i] = i
	}
	errs := m.renderUnits(context.Background(), idx)
	if len(errs) != 2 || errs[5] == nil || errs[11] == nil {
		t.Fatalf("errors = %v, want those of templates 5 and 11 only", errs)
	}
	var want []string
	for i := 0; i < 20; i++ {
		if i == 5 || i == 11 {
			continue
		}
		want = append(want, fmt.Sprint(i))
		if got := testkit.ReadFile(filepath.Join(dir, fmt.Sprint("t", i))); got != fmt.Sprint("v", i%4) {
			t.Errorf("t%d = %q", i, got)
		}
	}
	if got := strings.Fields(testkit.ReadFile(order)); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("commands ran in the order %v, want %v", got, want)
	}
	lookups := 0
	for p, n := range proxy.Counts() {
		if strings.Contains(p, "sys/internal/ui/mounts/") {
			lookups += n
		}
	}
	if lookups != 1 {
		t.Errorf("%d mount lookups, want 1 (counts %v)", lookups, proxy.Counts())
	}
	for i := 0; i < 4; i++ {
		if n := proxy.count(fmt.Sprintf("%s/data/s%d", v2, i)); n != 1 {
			t.Errorf("s%d fetched %d times, want 1", i, n)
		}
	}
	if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("the FIFO was replaced: %v %v", fi, err)
	}
}
