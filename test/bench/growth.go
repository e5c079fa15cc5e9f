package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// growthSizes are the template counts of metric 6 (BENCH_GROWTH, default
// 10,100,1000), each over ten times fewer secrets.
func growthSizes() []int {
	s := os.Getenv("BENCH_GROWTH")
	if s == "" {
		return []int{10, 100, 1000}
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 {
			out = append(out, n)
		}
	}
	return out
}

func growthSizesString() string {
	var s []string
	for _, n := range growthSizes() {
		s = append(s, strconv.Itoa(n))
	}
	return strings.Join(s, ",")
}

// maxSecrets is how many KV secrets the agent sections need seeded.
func maxSecrets() int {
	m := 10
	for _, n := range growthSizes() {
		m = max(m, n/10)
	}
	return m
}

// growth is metric 6: both agents at each size for BENCH_GROWTH_WINDOW
// (default 10s): time to render, RSS at the end, CPU per minute; printed as
// the growth factor from the smallest to the largest size. Linear growth is
// a factor equal to the ratio of the sizes.
func (b *bench) growth() ([]row, error) {
	if err := b.ensureSeeded(); err != nil {
		return nil, err
	}
	sizes := growthSizes()
	if len(sizes) < 2 {
		return nil, fmt.Errorf("BENCH_GROWTH=%q: want at least two sizes", os.Getenv("BENCH_GROWTH"))
	}
	window := envDuration("BENCH_GROWTH_WINDOW", 10*time.Second)
	type point struct{ render, rss, cpuMin float64 }
	measure := func(prog string, n int) (point, error) {
		var p point
		a, err := b.startAgent(prog, filepath.Join(b.dir, fmt.Sprintf("growth-%s-%d", prog, n)), agentConf{templates: n, secrets: max(1, n/10)})
		if err != nil {
			return p, err
		}
		defer a.stop()
		d, err := a.waitRendered(5 * time.Minute)
		if err != nil {
			return p, err
		}
		p.render = ms(d)
		time.Sleep(time.Until(a.start.Add(window)))
		kib, err := rssKiB(a.d.pid())
		if err != nil {
			return p, err
		}
		cpu, err := cpuSeconds(a.d.pid())
		if err != nil {
			return p, err
		}
		p.rss, p.cpuMin = float64(kib)/1024, cpu*60/time.Since(a.start).Seconds()
		return p, nil
	}
	pts := map[string][]point{}
	for _, n := range sizes {
		for _, prog := range []string{"latchkey", "vault"} {
			p, err := measure(prog, n)
			if err != nil {
				return nil, err
			}
			pts[prog] = append(pts[prog], p)
		}
	}
	var lines []string
	for i, n := range sizes {
		o, v := pts["latchkey"][i], pts["vault"][i]
		lines = append(lines, fmt.Sprintf("%d templates: render %.0f ms vs %.0f ms, RSS %.1f vs %.1f MiB, CPU %.2f vs %.2f s/min", n, o.render, v.render, o.rss, v.rss, o.cpuMin, v.cpuMin))
	}
	b.notef("cost growth (latchkey vs Vault Agent, each alone for %s per size, templates over ten times fewer secrets): %s.", window, strings.Join(lines, "; "))
	first, last := sizes[0], sizes[len(sizes)-1]
	lin := float64(last) / float64(first)
	factor := func(prog string, f func(point) float64) value {
		a, z := f(pts[prog][0]), f(pts[prog][len(sizes)-1])
		if a <= 0 {
			return notMeasured
		}
		return val(z/a, "×")
	}
	goal := fmt.Sprintf("≤ %g× (linear)", lin)
	span := fmt.Sprintf("growth %d→%d templates", first, last)
	return []row{
		{metric: span + ": time to render", ours: factor("latchkey", func(p point) float64 { return p.render }), ref: factor("vault", func(p point) float64 { return p.render }), goal: goal, check: atMost(lin)},
		{metric: span + ": RSS", ours: factor("latchkey", func(p point) float64 { return p.rss }), ref: factor("vault", func(p point) float64 { return p.rss }), goal: goal, check: atMost(lin)},
		{metric: span + ": CPU per minute", ours: factor("latchkey", func(p point) float64 { return p.cpuMin }), ref: factor("vault", func(p point) float64 { return p.cpuMin }), goal: goal, check: atMost(lin)},
		{metric: fmt.Sprintf("%d templates: time to render", last), ours: val(pts["latchkey"][len(sizes)-1].render, "ms"), ref: val(pts["vault"][len(sizes)-1].render, "ms")},
	}, nil
}
