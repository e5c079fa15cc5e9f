package main

import (
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
)

// startup measures what a login costs before any config or Vault: the
// process start and Go's package initialisation (`version`), for both
// helpers, and lists latchkey's slowest package inits (GODEBUG=inittrace=1)
// in the notes, so that whoever trims the start-up knows where it goes.
func (h *helperBench) startup() []row {
	const n = 50
	measure := func(bin, arg string) value {
		if bin == "" {
			return notMeasured
		}
		var xs []float64
		for i := 0; i < n; i++ {
			cmd := exec.Command(bin, arg)
			cmd.Env = []string{}
			r, err := timed(cmd)
			if err != nil || r.code != 0 {
				return notMeasured
			}
			xs = append(xs, ms(r.wall))
		}
		return val(quantile(xs, 0.5), "ms")
	}
	ours, ref := measure(h.ours, "version"), measure(h.ref, "version")
	h.b.notef("helper start-up (`version`, no config, no Vault; median of %d): latchkey %s, vault-ssh-helper %s; binaries %s and %s.", n, ours, ref, fileSize(h.ours), fileSize(h.ref))
	h.b.notef("latchkey-ssh-helper package inits (GODEBUG=inittrace=1, one run): %s", initTrace(h.ours))
	h.b.notef("latchkey-ssh-helper login profile (perf record, symbolised build): %s.", h.profileLogins(envInt("BENCH_PROFILE_LOGINS", 100)))
	return []row{{metric: "helper start-up only (`version`): median", ours: ours, ref: ref}}
}

// initTrace sums the clock time of every package init of one run and names
// the slowest.
func initTrace(bin string) string {
	cmd := exec.Command(bin, "version")
	cmd.Env = []string{"GODEBUG=inittrace=1"}
	out, _ := cmd.CombinedOutput()
	type pkg struct {
		name   string
		ms     float64
		allocs int
	}
	var ps []pkg
	total := 0.0
	for _, l := range strings.Split(string(out), "\n") {
		// init net/http @1.2 ms, 0.31 ms clock, 12345 bytes, 123 allocs
		f := strings.Fields(l)
		if len(f) < 11 || f[0] != "init" {
			continue
		}
		t, _ := strconv.ParseFloat(f[4], 64)
		a, _ := strconv.Atoi(f[9])
		ps = append(ps, pkg{f[1], t, a})
		total += t
	}
	if len(ps) == 0 {
		return "no trace"
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].ms > ps[j].ms })
	var top []string
	for i := 0; i < len(ps) && i < 8; i++ {
		top = append(top, fmt.Sprintf("%s %.2f ms (%d allocs)", ps[i].name, ps[i].ms, ps[i].allocs))
	}
	return fmt.Sprintf("%d packages, %.2f ms in all; slowest: %s", len(ps), total, strings.Join(top, ", "))
}

func fileSize(p string) string {
	st, err := os.Stat(p)
	if err != nil {
		return "(none)"
	}
	return fmt.Sprintf("%.1f MiB", float64(st.Size())/(1<<20))
}
