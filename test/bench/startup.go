package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
			cmd := exec.Command(bin)
			if arg != "" {
				cmd.Args = append(cmd.Args, arg)
			}
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
	if hello, err := buildHello(h.b.dir); err != nil {
		h.b.notef("a Go hello world's start-up: not measured (%v)", err)
	} else {
		h.b.notef("a Go hello world's start-up on this machine (the same build flags as `make build`; median of %d): %s — what any Go program pays before its first line, beside the goal \"median ≤ floor + 3 ms\".", n, measure(hello, ""))
	}
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

// buildHello builds the smallest Go program that prints a line, with the
// flags `make build` uses, so that the start-up rows can be read against
// what the Go runtime alone costs here.
func buildHello(dir string) (string, error) {
	src := filepath.Join(dir, "hello")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(src, "main.go"), []byte("package main\n\nimport \"os\"\n\nfunc main() { os.Stdout.WriteString(\"hello\\n\") }\n"), 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module hello\n\ngo 1.22\n"), 0o644); err != nil {
		return "", err
	}
	out := filepath.Join(src, "hello")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %w: %s", err, b)
	}
	return out, nil
}
