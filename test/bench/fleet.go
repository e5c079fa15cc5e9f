package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/latchkey/latchkey/test/vaulttest"
)

// fleetNice is the fleet's agents' nice value. A thousand agents that
// start on this machine's few CPUs would otherwise take them from Vault and
// from the proxy that counts the requests, which each have machines of
// their own in a real fleet: a starved proxy counts a request when it gets
// to run, not when the agent sent it, and bunches the counts of a second
// of starvation into the next. Niced, the agents still share the CPUs
// among themselves as before (the start still takes as long), but the
// proxy stamps each request when it arrives.
const fleetNice = 10

// fleet is metric 5: n latchkey-agent processes against one Vault of their
// own, all started at once; once all have rendered, Vault is restarted (a
// dev server keeps nothing: every token is gone) and seeded again with new
// secret values, and the fleet must log in again and render them. The
// agents are processes of the real binary, not goroutines: the runner's
// template renderer is wired up in cmd/latchkey-agent, so goroutines would
// run a different code path, and each process has its own backoff timers
// and jitter, as a real fleet has. Reported: the request rate per second
// seen by a proxy in front of Vault (peak, p99, histogram), time to all
// rendered, time from Vault's return to all re-rendered.
func (b *bench) fleet(n int) ([]row, error) {
	srv, err := vaulttest.Start(vaulttest.Options{})
	if err != nil {
		return nil, err
	}
	defer func() { srv.Stop() }()
	const secrets = 10
	if err := b.seedVault(srv, secrets, 1); err != nil {
		return nil, err
	}
	rate := &perSecond{n: map[int64]int{}}
	proxy, err := vaulttest.StartCountingProxy(srv.Addr)
	if err != nil {
		return nil, err
	}
	defer proxy.Close()
	proxy.OnRequest = func(*http.Request) { rate.add(time.Now()) }

	maxBackoff := envDuration("BENCH_FLEET_MAX_BACKOFF", 10*time.Second)
	interval := envDuration("BENCH_FLEET_RENDER_INTERVAL", 10*time.Second)
	// The start herd is spread by latchkey { login_splay }, as a fleet's
	// config would (Vault Agent has no such setting).
	splay := envDuration("BENCH_FLEET_SPLAY", 10*time.Second)
	ac := agentConf{templates: 1, secrets: secrets, maxBackoff: maxBackoff.String(),
		extra: fmt.Sprintf("template_config {\n  static_secret_render_interval = %q\n}\nlatchkey {\n  login_splay = %q\n}\n", interval.String(), splay.String())}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + b.dir}
	type member struct {
		d    *daemon
		dest string
	}
	members := make([]member, n)
	defer func() {
		var wg sync.WaitGroup
		for _, m := range members {
			if m.d != nil {
				wg.Add(1)
				go func(d *daemon) { defer wg.Done(); d.stop() }(m.d)
			}
		}
		wg.Wait()
	}()
	// Configs first, so that the start is only the starts.
	confs, states := make([]string, n), make([]string, n)
	for i := range members {
		dir := filepath.Join(b.dir, "fleet", fmt.Sprint("a", i))
		conf, dests, err := ac.write(dir, proxy.URL, b.dir)
		if err != nil {
			return nil, err
		}
		state, err := stateConf(dir)
		if err != nil {
			return nil, err
		}
		confs[i], states[i] = conf, state
		members[i].dest = dests[0]
	}
	// Every agent is forked and exec'd first, parked behind a gate (see
	// gate), and the gate's opening starts them all together.
	g, err := newGate()
	if err != nil {
		return nil, err
	}
	defer g.close()
	tPark := time.Now()
	for i := range members {
		d, err := startDaemonVia(g, filepath.Join(filepath.Dir(confs[i]), "log"), env, b.agent, "-config", confs[i], "-config", states[i], "-log-level", "warn")
		if err != nil {
			return nil, fmt.Errorf("agent %d of %d: %w", i, n, err)
		}
		members[i].d = d
		// Below Vault and the counting proxy (inherited by the agent the
		// launcher execs, and by its threads): see fleetNice.
		if err := syscall.Setpriority(syscall.PRIO_PROCESS, d.pid(), fleetNice); err != nil {
			return nil, fmt.Errorf("agent %d of %d: setpriority: %w", i, n, err)
		}
	}
	parked := time.Since(tPark)
	t0, err := g.open(5 * time.Minute)
	if err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	// allHave waits until every member's file holds want; at[i] is when
	// member i was first seen with it.
	allHave := func(want string, limit time.Duration) (at []time.Duration, done int, err error) {
		start := time.Now()
		at = make([]time.Duration, len(members))
		for {
			for i, m := range members {
				if at[i] != 0 {
					continue
				}
				if b, err := os.ReadFile(m.dest); err == nil && string(b) == want {
					at[i] = time.Since(start)
					done++
				}
			}
			if done == len(members) {
				return at, done, nil
			}
			if time.Since(start) > limit {
				return at, done, fmt.Errorf("%d of %d agents rendered %q after %s", done, len(members), want, limit)
			}
			for _, m := range members {
				if m.d.exited() {
					return at, done, fmt.Errorf("an agent exited; its log:\n%s", tail(filepath.Join(filepath.Dir(m.dest), "log")))
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if _, _, err := allHave("u0:p0-gen1", 10*time.Minute); err != nil {
		return nil, err
	}
	rendered := time.Since(t0)
	time.Sleep(3 * time.Second)

	// Restart Vault: down, a new empty server, the same AppRole ids and
	// new secret values.
	tDown := time.Now()
	srv.Stop()
	if srv, err = vaulttest.Start(vaulttest.Options{}); err != nil {
		return nil, err
	}
	if err := b.seedVault(srv, secrets, 2); err != nil {
		return nil, err
	}
	if err := proxy.Retarget(srv.Addr); err != nil {
		return nil, err
	}
	tUp := time.Now()
	limit := maxBackoff + 2*interval + 4*tokenTTL() + 2*time.Minute
	at, done, err := allHave("u0:p0-gen2", limit)
	recovered := time.Duration(-1)
	if err != nil {
		b.notef("fleet: %d of %d agents re-rendered within %s of Vault's return", done, n, limit)
	} else {
		var xs []float64
		for _, d := range at {
			xs = append(xs, d.Seconds())
			recovered = max(recovered, d)
		}
		b.notef("fleet: after Vault's return, agents re-rendered in %.1f s (median), %.1f s (p90), %.1f s (last)", quantile(xs, 0.5), quantile(xs, 0.9), recovered.Seconds())
	}
	tEnd := time.Now()

	startPeak, startP99, startMean := rate.stats(t0, t0.Add(rendered))
	recPeak, recP99, recMean := rate.stats(tDown, tEnd)
	b.notef("fleet: %d latchkey-agent processes (one template each, approle, min_backoff 1s, max_backoff %s, static_secret_render_interval %s, token TTL %s, login_splay %s) forked and exec'd first (in %s), each parked in a /bin/sh launcher behind one gate, and started together by opening it, at nice %d (Vault and the counting proxy at 0: each has its own machine in a real fleet, and a starved proxy would count a request when it gets to run, not when it was sent); all rendered %s after the gate opened; Vault was down for %s while restarting; mean rate over the start %.0f/s, over the recovery %.0f/s. Memory: %s.",
		n, maxBackoff, interval, tokenTTL(), splay, parked.Round(time.Millisecond), fleetNice, rendered.Round(time.Millisecond), tUp.Sub(tDown).Round(time.Millisecond), startMean, recMean, memUsed())
	b.histogram = rate.histogram(t0, tEnd, tDown, tUp)
	b.pathCounts = append(b.pathCounts, countTable(fmt.Sprintf("fleet of %d latchkey agents, start to re-rendered", n), proxy.Counts())...)
	fmt.Println(b.histogram)
	rec := notMeasured
	if recovered >= 0 {
		rec = val(recovered.Seconds(), "s")
	}
	budget := maxBackoff + interval
	return []row{
		{metric: fmt.Sprintf("fleet (%d agents): start → all rendered", n), ours: val(rendered.Seconds(), "s"), ref: notMeasured},
		{metric: "fleet start: peak requests/s", ours: val(startPeak, "/s"), ref: notMeasured, goal: "≤ 3× mean", check: func(o, _ value) bool { return o.v <= 3*startMean }},
		{metric: "fleet start: p99 requests/s", ours: val(startP99, "/s"), ref: notMeasured},
		{metric: "fleet, Vault restarted: peak requests/s", ours: val(recPeak, "/s"), ref: notMeasured, goal: "≤ 3× mean", check: func(o, _ value) bool { return o.v <= 3*recMean }},
		{metric: "fleet, Vault restarted: p99 requests/s", ours: val(recP99, "/s"), ref: notMeasured},
		{metric: "fleet, Vault back → all re-rendered", ours: rec, ref: notMeasured, goal: fmt.Sprintf("≤ max_backoff + render interval (%s)", budget), check: atMost(budget.Seconds())},
	}, nil
}

// perSecond counts requests by the second they arrived in.
type perSecond struct {
	mu sync.Mutex
	n  map[int64]int
}

func (p *perSecond) add(t time.Time) {
	p.mu.Lock()
	p.n[t.Unix()]++
	p.mu.Unlock()
}

// stats returns the peak, the p99 and the mean of the per-second counts over
// [from, to] (every second counted, idle ones too).
func (p *perSecond) stats(from, to time.Time) (peak, p99, mean float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var xs []float64
	total := 0.0
	for s := from.Unix(); s <= to.Unix(); s++ {
		x := float64(p.n[s])
		xs = append(xs, x)
		total += x
	}
	if len(xs) == 0 {
		return 0, 0, 0
	}
	return maxOf(xs), quantile(xs, 0.99), total / float64(len(xs))
}

// histogram draws requests per second from from to to, one line a second.
func (p *perSecond) histogram(from, to, down, up time.Time) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	peak := 1
	for _, v := range p.n {
		peak = max(peak, v)
	}
	var w strings.Builder
	fmt.Fprintf(&w, "fleet: Vault requests per second (each # ≈ %d requests)\n", max(1, peak/60))
	var secs []int64
	for s := from.Unix(); s <= to.Unix(); s++ {
		secs = append(secs, s)
	}
	sort.Slice(secs, func(i, j int) bool { return secs[i] < secs[j] })
	for _, s := range secs {
		mark := ""
		switch {
		case s == down.Unix():
			mark = "  ← Vault stopped"
		case s == up.Unix():
			mark = "  ← Vault back"
		}
		fmt.Fprintf(&w, "%4ds %5d %s%s\n", s-from.Unix(), p.n[s], strings.Repeat("#", p.n[s]/max(1, peak/60)), mark)
	}
	return w.String()
}

func memUsed() string {
	b, _ := os.ReadFile("/proc/meminfo")
	var total, avail float64
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		var v float64
		fmt.Sscan(f[1], &v)
		switch f[0] {
		case "MemTotal:":
			total = v
		case "MemAvailable:":
			avail = v
		}
	}
	return fmt.Sprintf("%.1f GiB of %.1f GiB in use at the end", (total-avail)/1024/1024, total/1024/1024)
}
