package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// agentVsVaultAgent is metric 3: latchkey-agent and Vault Agent, one after
// the other, each on the same config (approle, file sink, 50 templates over
// 10 KV v2 secrets and one pkiCert, tokens of BENCH_TOKEN_TTL) for
// BENCH_WINDOW: time to all rendered, RSS and CPU time at the end, and
// Vault requests by path counted by a proxy in front of Vault.
func (b *bench) agentVsVaultAgent() ([]row, error) {
	if err := b.ensureSeeded(); err != nil {
		return nil, err
	}
	ac := agentConf{templates: 50, secrets: 10, pki: true}
	type result struct {
		rendered time.Duration
		rss      float64 // MiB
		cpu      float64 // start → end of the window
		cpuStart float64 // start → all rendered
		counts   map[string]int
		total    int
	}
	measure := func(prog string) (result, error) {
		var r result
		a, err := b.startAgent(prog, filepath.Join(b.dir, "agent-"+prog), ac)
		if err != nil {
			return r, err
		}
		defer a.stop()
		if r.rendered, err = a.waitRendered(2 * time.Minute); err != nil {
			return r, err
		}
		if r.cpuStart, err = cpuSeconds(a.d.pid()); err != nil {
			return r, err
		}
		time.Sleep(time.Until(a.start.Add(b.window)))
		kib, err := rssKiB(a.d.pid())
		if err != nil {
			return r, err
		}
		r.rss = float64(kib) / 1024
		if r.cpu, err = cpuSeconds(a.d.pid()); err != nil {
			return r, err
		}
		r.counts, r.total = a.proxy.Counts(), a.proxy.Total()
		return r, nil
	}
	o, err := measure("latchkey")
	if err != nil {
		return nil, err
	}
	v, err := measure("vault")
	if err != nil {
		return nil, err
	}
	// One start is noisy on a busy machine: the start → rendered row is the
	// median of BENCH_AGENT_STARTS more, alternated, each into an empty
	// directory and stopped once rendered.
	starts := envInt("BENCH_AGENT_STARTS", 8)
	xs := map[string][]float64{"latchkey": {ms(o.rendered)}, "vault": {ms(v.rendered)}}
	cs := map[string][]float64{"latchkey": {o.cpuStart}, "vault": {v.cpuStart}}
	if err := b.agentStarts(b.dir, ac, starts, xs, cs); err != nil {
		return nil, err
	}
	oStart, vStart := quantile(xs["latchkey"], 0.5), quantile(xs["vault"], 0.5)
	oCPUStart, vCPUStart := quantile(cs["latchkey"], 0.5), quantile(cs["vault"], 0.5)
	b.notef("agent vs Vault Agent: start → all rendered, and its CPU time, are the medians of %d starts each, alternated", starts+1)
	// The same starts with every file on tmpfs: what each agent's own code
	// costs, without the file system's (on this machine's ext4 creating an
	// inode can cost more than rendering the file).
	shm := row{metric: "agent: CPU time, start → all rendered, files on tmpfs (median of starts)", ours: notMeasured, ref: notMeasured}
	if dir, err := tmpfsDir(); err != nil {
		b.notef("agent on tmpfs: not measured (%v)", err)
	} else {
		defer os.RemoveAll(dir)
		tx := map[string][]float64{}
		tc := map[string][]float64{}
		if err := b.agentStarts(dir, ac, starts+1, tx, tc); err != nil {
			return nil, err
		}
		shm.ours, shm.ref = val(quantile(tc["latchkey"], 0.5)*1000, "ms"), val(quantile(tc["vault"], 0.5)*1000, "ms")
		b.notef("agent on tmpfs: %d starts each, alternated, with the config and every rendered file in %s (tmpfs); start → all rendered took %.1f ms (latchkey) and %.1f ms (Vault Agent), medians", starts+1, filepath.Dir(dir), quantile(tx["latchkey"], 0.5), quantile(tx["vault"], 0.5))
	}
	b.notef("agent vs Vault Agent: each alone for BENCH_WINDOW=%s on the same config (approle, file sink, %d templates over %d KV v2 secrets + one pkiCert, token TTL %s, max TTL %s); RSS is VmRSS at the end of the window, CPU is user+system seconds over it.",
		b.window, ac.templates, ac.secrets, tokenTTL(), 4*tokenTTL())
	floor := row{metric: fmt.Sprintf("agent: CPU floor over %s (atomic writes of one start's %d files + a Go start)", b.window, ac.files()), ours: notMeasured, ref: val(v.cpu*1000, "ms")}
	if writes, start, err := agentFloor(filepath.Join(b.dir, "agent-floor"), ac.files(), 5); err != nil {
		b.notef("agent CPU floor: not measured (%v)", err)
	} else {
		floor.ours = val(ms(writes+start), "ms")
		b.notef("agent CPU floor on this machine (measured in this run): writing the %d files of one start (templates and token sink) atomically (temporary file, fsync, rename, one directory fsync; in-process, median of 5 rounds into fresh directories) costs %.1f ms of CPU, and a Go hello world's start %.1f ms: %.3f s together, beside the CPU goal's %.3f s (0.1× of Vault Agent's %.2f s over the window) and latchkey's %.3f s from start to all rendered (median).",
			ac.files(), ms(writes), ms(start), (writes + start).Seconds(), 0.1*v.cpu, v.cpu, oCPUStart)
	}
	b.pathCounts = append(b.pathCounts, pathTable(fmt.Sprintf("agent vs Vault Agent, over %s", b.window), o.counts, v.counts)...)
	w := b.window.String()
	return []row{
		{metric: "agent: start → all 51 files rendered", ours: val(oStart, "ms"), ref: val(vStart, "ms"), goal: "≤ 0.3× reference", check: atMostTimesRef(0.3)},
		{metric: "agent: RSS after " + w, ours: val(o.rss, "MiB"), ref: val(v.rss, "MiB"), goal: "≤ 0.1× reference", check: atMostTimesRef(0.1)},
		{metric: "agent: CPU time over " + w, ours: val(o.cpu*1000, "ms"), ref: val(v.cpu*1000, "ms"), goal: "≤ 0.1× reference", check: atMostTimesRef(0.1)},
		{metric: "agent: CPU time, start → all rendered (median of starts)", ours: val(oCPUStart*1000, "ms"), ref: val(vCPUStart*1000, "ms")},
		shm,
		{metric: "agent: CPU time, all rendered → end of " + w, ours: val((o.cpu-o.cpuStart)*1000, "ms"), ref: val((v.cpu-v.cpuStart)*1000, "ms")},
		floor,
		{metric: "agent: Vault requests over " + w, ours: val(float64(o.total), ""), ref: val(float64(v.total), ""), goal: "≤ 1× reference", check: atMostTimesRef(1)},
	}, nil
}

// ensureSeeded seeds b.vault once for the agent sections.
func (b *bench) ensureSeeded() error {
	if b.seeded {
		return nil
	}
	if err := b.seedVault(b.vault, maxSecrets(), 1); err != nil {
		return err
	}
	b.seeded = true
	return nil
}

// pathTable is a markdown table of requests by path, latchkey beside Vault
// Agent.
func pathTable(title string, ours, ref map[string]int) []string {
	keys := map[string]bool{}
	for k := range ours {
		keys[k] = true
	}
	for k := range ref {
		keys[k] = true
	}
	var ks []string
	for k := range keys {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	out := []string{"", "### " + title, "", "| request | latchkey | Vault Agent |", "| --- | ---: | ---: |"}
	for _, k := range ks {
		out = append(out, fmt.Sprintf("| `%s` | %d | %d |", strings.ReplaceAll(k, "|", "\\|"), ours[k], ref[k]))
	}
	return out
}

// countTable is a markdown table of one program's requests by path.
func countTable(title string, counts map[string]int) []string {
	var ks []string
	for k := range counts {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	out := []string{"", "### " + title, "", "| request | latchkey |", "| --- | ---: |"}
	for _, k := range ks {
		out = append(out, fmt.Sprintf("| `%s` | %d |", k, counts[k]))
	}
	return out
}

// agentStarts starts each agent n times, alternated, each into an empty
// directory under base and stopped once rendered, and appends to xs and cs
// (by program) the time to all rendered (ms) and the CPU seconds it took.
func (b *bench) agentStarts(base string, ac agentConf, n int, xs, cs map[string][]float64) error {
	for i := 0; i < n; i++ {
		for _, prog := range []string{"latchkey", "vault"} {
			a, err := b.startAgent(prog, filepath.Join(base, fmt.Sprintf("start-%s-%d", prog, i)), ac)
			if err != nil {
				return err
			}
			d, err := a.waitRendered(2 * time.Minute)
			var c float64
			if err == nil {
				c, err = cpuSeconds(a.d.pid())
			}
			a.stop()
			if err != nil {
				return err
			}
			xs[prog] = append(xs[prog], ms(d))
			cs[prog] = append(cs[prog], c)
		}
	}
	return nil
}

// tmpfsDir makes a fresh directory on /dev/shm when that is a tmpfs.
func tmpfsDir() (string, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs("/dev/shm", &st); err != nil {
		return "", fmt.Errorf("/dev/shm: %w", err)
	}
	const tmpfsMagic = 0x01021994
	if st.Type != tmpfsMagic {
		return "", fmt.Errorf("/dev/shm is not a tmpfs (type %#x)", st.Type)
	}
	return os.MkdirTemp("/dev/shm", "latchkey-bench-")
}
