package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// profileLogins is where a login's CPU goes, for whoever trims the
// helper's start-up: a symbolised (unstripped) build of latchkey-ssh-helper
// runs n real logins under `perf record`, and the samples are attributed to
// the kernel (exec, page faults), to package initialisation (by package),
// and to the rest. It returns a sentence for the notes, or why it could not
// profile (no perf, say).
func (h *helperBench) profileLogins(n int) string {
	perf, err := exec.LookPath("perf")
	if err != nil {
		return "not profiled: perf is not installed (apt-get install linux-perf)"
	}
	dir := filepath.Join(h.b.dir, "profile")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "not profiled: " + err.Error()
	}
	bin := filepath.Join(dir, "latchkey-ssh-helper")
	build := exec.Command("go", "build", "-trimpath", "-o", bin, "./cmd/latchkey-ssh-helper")
	build.Dir = h.b.root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Sprintf("not profiled: go build: %v: %s", err, lastLine(out))
	}
	for i := 0; i < n; i++ {
		otp, err := h.otp()
		if err != nil {
			return "not profiled: " + err.Error()
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("otp%04d", i)), []byte(otp+"\x00"), 0o600); err != nil {
			return "not profiled: " + err.Error()
		}
	}
	data := filepath.Join(dir, "perf.data")
	loop := fmt.Sprintf(`for f in %s/otp*; do PAM_USER=alice PAM_TYPE=auth PAM_RHOST=127.0.0.1 %s -dev -config=%s < "$f" >/dev/null 2>&1; done`, dir, bin, h.oursConf)
	rec := exec.Command(perf, "record", "-q", "-F", "10000", "-g", "-o", data, "--", "/bin/sh", "-c", loop)
	if out, err := rec.CombinedOutput(); err != nil {
		return fmt.Sprintf("not profiled: perf record: %v: %s", err, lastLine(out))
	}
	// The comm is the name cut at 15 bytes.
	script, err := exec.Command(perf, "script", "-i", data, "--comm", "latchkey-ssh-he", "-F", "ip,sym").Output()
	if err != nil {
		return "not profiled: perf script: " + err.Error()
	}
	return summarize(string(script), n)
}

var initSym = regexp.MustCompile(`^([\w./-]+?)(?:\.map)?\.init(?:\.func\d+|\.\d+)*$`)

// summarize attributes perf script's samples (innermost frame first).
func summarize(script string, n int) string {
	var total, kernel, inits int
	byPkg := map[string]int{}
	for _, s := range strings.Split(script, "\n\n") {
		lines := strings.Split(strings.TrimSpace(s), "\n")
		if len(lines) == 0 || strings.TrimSpace(lines[0]) == "" {
			continue
		}
		total++
		if f := strings.Fields(lines[0]); len(f) > 0 && strings.HasPrefix(f[0], "ffff") {
			kernel++
		}
		for _, l := range lines {
			f := strings.Fields(l)
			if len(f) < 2 {
				continue
			}
			if m := initSym.FindStringSubmatch(f[1]); m != nil && !strings.HasPrefix(m[1], "runtime") {
				byPkg[m[1]]++
				inits++
				break
			}
		}
	}
	if total == 0 {
		return "not profiled: no samples"
	}
	type pc struct {
		pkg string
		n   int
	}
	var ps []pc
	for p, c := range byPkg {
		ps = append(ps, pc{p, c})
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].n > ps[j].n })
	var top []string
	for i := 0; i < len(ps) && i < 6; i++ {
		top = append(top, fmt.Sprintf("%s %.0f%%", ps[i].pkg, 100*float64(ps[i].n)/float64(total)))
	}
	pct := func(x int) float64 { return 100 * float64(x) / float64(total) }
	return fmt.Sprintf("%d samples over %d logins: %.0f%% in the kernel (exec, mmap, page faults of the binary and heap); %.0f%% under package inits, their page faults included (%s); the rest is the runtime's start and the login itself",
		total, n, pct(kernel), pct(inits), strings.Join(top, ", "))
}
