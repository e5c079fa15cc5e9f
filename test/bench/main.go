// Command bench is `make bench`: it measures latchkey's programs beside the
// programs they replace — latchkey-ssh-helper beside vault-ssh-helper 0.2.4
// (built in the run), latchkey-agent beside Vault Agent (`vault agent`, from
// the test Vault binary) — in the same run, on the same Vault, prints one
// table and writes bench/RESULTS.md. Every ratio comes from both programs
// measured here; a figure that could not be measured says "not measured".
//
// The environment sizes it (defaults keep `make bench` to about six minutes
// on two cores):
//
//	BENCH_LOGINS=200        OTPs per helper, one login at a time
//	BENCH_STORM=200         concurrent logins per storm (two rounds each)
//	BENCH_WINDOW=60s        how long each agent runs for RSS, CPU and requests (the issue: "RSS after 60 s")
//	BENCH_AGENT_STARTS=8    extra starts for the agents' start → rendered (medians of one more; as many again on tmpfs)
//	BENCH_TOKEN_TTL=15s     the AppRole tokens' TTL (max TTL four times it)
//	BENCH_SETTLE=5s         wait after a revocation or SIGHUP
//	BENCH_FLEET=1000        agents in the fleet
//	BENCH_FLEET_MAX_BACKOFF=10s, BENCH_FLEET_RENDER_INTERVAL=10s, BENCH_FLEET_SPLAY=10s (login_splay)
//	BENCH_GROWTH=10,100,1000 template counts; BENCH_GROWTH_WINDOW=10s
//	BENCH_PROFILE_LOGINS=100 logins under perf
//	BENCH_HELPER_AUDIT      latchkey's audit setting (default off + audit_file)
//	BENCH_ONLY              comma-separated: helper, storm, agent, reload, fleet, growth
//	VSH_BIN, VSH_SRC        the reference helper, or its source to build
//
// BENCH_ASSERT=1 exits 1 when any goal is missed or could not be measured.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/latchkey/latchkey/test/vaulttest"
)

func main() {
	binDir := flag.String("bin", "bin", "directory holding the built latchkey binaries")
	out := flag.String("out", "bench/RESULTS.md", "where to write the results (relative to the repository root)")
	flag.Parse()
	code, err := runBench(*binDir, *out)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(2)
	}
	os.Exit(code)
}

// bench is what every section shares: one Vault, one temp dir, the notes.
type bench struct {
	root, dir  string
	vault      *vaulttest.Server
	helper     string // latchkey-ssh-helper
	agent      string // latchkey-agent
	vaultBin   string
	window     time.Duration
	notes      []string
	pathCounts []string // markdown lines: requests by path
	seeded     bool     // seedVault ran on vault
	histogram  string   // the fleet's requests per second
}

func (b *bench) notef(format string, args ...any) {
	b.notes = append(b.notes, fmt.Sprintf(format, args...))
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func wanted(section string) bool {
	only := os.Getenv("BENCH_ONLY")
	if only == "" {
		return true
	}
	for _, s := range strings.Split(only, ",") {
		if strings.TrimSpace(s) == section {
			return true
		}
	}
	return false
}

func runBench(binDir, out string) (int, error) {
	root, err := vaulttest.RepoRoot()
	if err != nil {
		return 0, err
	}
	b := &bench{root: root, window: envDuration("BENCH_WINDOW", 60*time.Second)}
	if b.dir, err = os.MkdirTemp("", "latchkey-bench-"); err != nil {
		return 0, err
	}
	defer os.RemoveAll(b.dir)
	if !filepath.IsAbs(binDir) {
		binDir = filepath.Join(root, binDir)
	}
	b.helper = filepath.Join(binDir, "latchkey-ssh-helper")
	b.agent = filepath.Join(binDir, "latchkey-agent")
	if b.vaultBin, err = vaulttest.BinPath(); err != nil {
		return 0, err
	}
	if b.vault, err = vaulttest.Start(vaulttest.Options{}); err != nil {
		return 0, err
	}
	defer func() { b.vault.Stop() }()
	started := time.Now()
	load0 := loadavg()

	var rows []row
	add := func(section string, f func() ([]row, error)) error {
		if !wanted(section) {
			return nil
		}
		fmt.Fprintf(os.Stderr, "bench: %s …\n", section)
		rs, err := f()
		if err != nil {
			return fmt.Errorf("%s: %w", section, err)
		}
		rows = append(rows, rs...)
		return nil
	}

	h := &helperBench{b: b, ours: b.helper}
	if wanted("helper") || wanted("storm") {
		h.ref, h.refWhy = vaultSSHHelper(root, b.dir)
		if h.ref == "" {
			b.notef("vault-ssh-helper unavailable, its rows say \"not measured\": %s", h.refWhy)
		} else {
			b.notef("vault-ssh-helper 0.2.4: %s", h.refWhy)
		}
		if err := h.setup(); err != nil {
			return 0, err
		}
	}
	steps := []struct {
		name string
		f    func() ([]row, error)
	}{
		{"helper", func() ([]row, error) { return h.sequential(envInt("BENCH_LOGINS", 200)) }},
		{"helper", func() ([]row, error) { return h.startup(), nil }},
		{"storm", func() ([]row, error) { return h.storms(envInt("BENCH_STORM", 200)) }},
		{"agent", b.agentVsVaultAgent},
		{"reload", b.reloadCost},
		{"fleet", func() ([]row, error) { return b.fleet(envInt("BENCH_FLEET", 1000)) }},
		{"growth", b.growth},
	}
	for _, s := range steps {
		if err := add(s.name, s.f); err != nil {
			return 0, err
		}
	}

	printTable(os.Stdout, rows)
	if !filepath.IsAbs(out) {
		out = filepath.Join(root, out)
	}
	if err := b.writeResults(out, rows, started, load0); err != nil {
		return 0, err
	}
	fmt.Printf("\nwritten: %s\n", out)
	if os.Getenv("BENCH_ASSERT") == "1" {
		if m := missed(rows); len(m) > 0 {
			fmt.Printf("BENCH_ASSERT: %d goal(s) missed: %s\n", len(m), strings.Join(m, "; "))
			return 1, nil
		}
	}
	return 0, nil
}

func (b *bench) writeResults(path string, rows []row, started time.Time, load0 string) error {
	var w strings.Builder
	fmt.Fprintf(&w, "# Benchmark results\n\n")
	fmt.Fprintf(&w, "Written by `make bench` (test/bench). Every ratio is latchkey ÷ reference, both measured in this run against the same Vault; lower is better. \"not measured\" means the figure could not be taken here (and the row has no ratio).\n\n")
	fmt.Fprintf(&w, "- date: %s (took %s)\n", started.UTC().Format("2006-01-02 15:04 MST"), time.Since(started).Round(time.Second))
	fmt.Fprintf(&w, "- machine: %s; %d CPUs (%s); %s memory\n", strings.TrimSpace(cmdOut("uname", "-srm")), runtime.NumCPU(), cpuModel(), memTotal())
	fmt.Fprintf(&w, "- load average at start: %s; at end: %s\n", load0, loadavg())
	if busy(load0) {
		fmt.Fprintf(&w, "- **the machine was shared and busy while measured** (load average above its %d CPUs' half at the start, other work running): absolute times are inflated and noisy; the ratios, from both programs alternated in the same run, are the figures to read\n", runtime.NumCPU())
	}
	fmt.Fprintf(&w, "- Go: %s; Vault: %s; latchkey: %s\n", strings.TrimSpace(strings.TrimPrefix(cmdOut("go", "version"), "go version ")),
		strings.TrimSpace(cmdOut(b.vaultBin, "version")), strings.TrimSpace(cmdOut(b.helper, "version")))
	fmt.Fprintf(&w, "- sizes: BENCH_LOGINS=%d BENCH_STORM=%d BENCH_WINDOW=%s BENCH_FLEET=%d BENCH_GROWTH=%s\n\n",
		envInt("BENCH_LOGINS", 200), envInt("BENCH_STORM", 200), b.window, envInt("BENCH_FLEET", 1000), growthSizesString())
	markdownTable(&w, rows)
	fmt.Fprintf(&w, "\n## Notes\n\n")
	for _, n := range b.notes {
		fmt.Fprintf(&w, "- %s\n", n)
	}
	if b.histogram != "" {
		fmt.Fprintf(&w, "\n## Fleet: requests per second\n\n```\n%s```\n", b.histogram)
	}
	if len(b.pathCounts) > 0 {
		fmt.Fprintf(&w, "\n## Vault requests by path\n\n")
		for _, l := range b.pathCounts {
			fmt.Fprintln(&w, l)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(w.String()), 0o644)
}

func cmdOut(name string, args ...string) string {
	b, err := exec.Command(name, args...).Output()
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	return string(b)
}

// busy reports whether the 1-minute load average was above half the CPUs.
func busy(load string) bool {
	var l float64
	if _, err := fmt.Sscan(load, &l); err != nil {
		return false
	}
	return l > float64(runtime.NumCPU())/2
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:3], " ")
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "model name") {
			return strings.TrimSpace(l[strings.IndexByte(l, ':')+1:])
		}
	}
	return "unknown model"
}

func memTotal() string {
	b, _ := os.ReadFile("/proc/meminfo")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "MemTotal:") {
			kb, _ := strconv.ParseFloat(strings.Fields(l)[1], 64)
			return fmt.Sprintf("%.1f GiB", kb/1024/1024)
		}
	}
	return "unknown"
}
