package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"
)

// helperBench runs metrics 1 and 2: one login at a time as pam_exec runs the
// helper (password on stdin, PAM_* in a bare environment), the two programs
// alternated OTP by OTP, and a storm of concurrent logins of each.
type helperBench struct {
	b        *bench
	ours     string // latchkey-ssh-helper
	ref      string // vault-ssh-helper, "" when unavailable
	refWhy   string
	oursConf string
	refConf  string
}

const sshMount = "ssh-bench"

func (h *helperBench) setup() error {
	c := h.b.vault.Client
	if err := c.Sys().Mount(sshMount, &api.MountInput{Type: "ssh"}); err != nil {
		return err
	}
	if _, err := c.Logical().Write(sshMount+"/roles/r", map[string]any{"key_type": "otp", "default_user": "alice", "cidr_list": "127.0.0.0/8"}); err != nil {
		return err
	}
	// The same settings for both. latchkey also writes its audit record of
	// every login, into a file of the run: "auto" would try the journal and
	// syslog, which a bench machine may lack, and then append to
	// /var/log/latchkey-ssh-helper.log on the host. BENCH_HELPER_AUDIT
	// (e.g. auto) measures the system path instead.
	common := fmt.Sprintf("vault_addr = %q\nssh_mount_point = %q\nallowed_roles = \"*\"\n", h.b.vault.Addr, sshMount)
	h.oursConf = filepath.Join(h.b.dir, "latchkey-ssh-helper.hcl")
	audit := os.Getenv("BENCH_HELPER_AUDIT")
	if audit == "" {
		audit = "off"
	}
	ours := common + fmt.Sprintf("audit = %q\naudit_file = %q\n", audit, filepath.Join(h.b.dir, "audit.log"))
	h.b.notef("latchkey-ssh-helper's audit: audit = %q, audit_file in the run's directory (a record per login; BENCH_HELPER_AUDIT=auto measures the journal/syslog path).", audit)
	if err := os.WriteFile(h.oursConf, []byte(ours), 0o600); err != nil {
		return err
	}
	h.refConf = filepath.Join(h.b.dir, "vault-ssh-helper.hcl")
	return os.WriteFile(h.refConf, []byte(common), 0o600)
}

func (h *helperBench) otp() (string, error) {
	s, err := h.b.vault.Client.Logical().Write(sshMount+"/creds/r", map[string]any{"ip": "127.0.0.1"})
	if err != nil {
		return "", err
	}
	return s.Data["key"].(string), nil
}

// login runs one program as pam_exec would for user alice.
func (h *helperBench) login(bin, conf, otp string) (run, error) {
	return timed(h.loginCmd(bin, conf, otp))
}

func (h *helperBench) loginCmd(bin, conf, otp string) *exec.Cmd {
	cmd := exec.Command(bin, "-dev", "-config="+conf)
	cmd.Env = []string{"PAM_USER=alice", "PAM_TYPE=auth", "PAM_SERVICE=sshd", "PAM_RHOST=127.0.0.1", "PAM_TTY=ssh"}
	// pam_exec (expose_authtok) writes the password and its NUL terminator.
	cmd.Stdin = strings.NewReader(otp + "\x00")
	cmd.Dir = h.b.dir
	return cmd
}

// peak is the largest peak RSS (KiB) of n logins of one program run under
// GNU time; ok is false without GNU time.
func (h *helperBench) peak(bin, conf string, n int) (value, error) {
	if bin == "" {
		return notMeasured, nil
	}
	var xs []float64
	for i := 0; i < n; i++ {
		otp, err := h.otp()
		if err != nil {
			return notMeasured, err
		}
		kib, code, ok, err := peakRSS(h.loginCmd(bin, conf, otp), h.b.dir)
		if err != nil || !ok {
			return notMeasured, err
		}
		if code != 0 {
			return notMeasured, fmt.Errorf("%s refused a valid OTP (exit %d) under GNU time", bin, code)
		}
		xs = append(xs, float64(kib))
	}
	return val(maxOf(xs)/1024, "MiB"), nil
}

type loginStats struct {
	wall  []float64 // ms
	cpu   []float64 // ms, user + system
	wrong int
	first string // the first wrong answer's output, for the notes
}

func (s *loginStats) add(r run, wantOK bool) {
	s.wall = append(s.wall, ms(r.wall))
	s.cpu = append(s.cpu, ms(r.cpu))
	if (r.code == 0) != wantOK {
		s.wrong++
		if s.first == "" {
			s.first = fmt.Sprintf("exit %d (want allowed=%v): %s", r.code, wantOK, strings.TrimSpace(r.out))
		}
	}
}

// sequential is metric 1.
func (h *helperBench) sequential(n int) ([]row, error) {
	var ours, ref loginStats
	mins, minErr := buildMinClients(h.b.root, h.b.dir)
	for i := 0; i < n; i++ {
		// Alternate which program goes first, so neither always gets the
		// warmer caches.
		order := []bool{true, false}
		if i%2 == 1 {
			order = []bool{false, true}
		}
		for _, isOurs := range order {
			if !isOurs && h.ref == "" {
				continue
			}
			otp, err := h.otp()
			if err != nil {
				return nil, err
			}
			if isOurs {
				r, err := h.login(h.ours, h.oursConf, otp)
				if err != nil {
					return nil, err
				}
				ours.add(r, true)
			} else {
				r, err := h.login(h.ref, h.refConf, otp)
				if err != nil {
					return nil, err
				}
				ref.add(r, true)
			}
		}
		// The minimal clients after the pair: they neither go first nor
		// sit between latchkey and its reference.
		for _, m := range mins {
			otp, err := h.otp()
			if err != nil {
				return nil, err
			}
			if err := h.minLogin(m, otp); err != nil {
				return nil, err
			}
		}
	}
	h.minNotes(mins, ref, minErr)
	floor, err := h.floor(n)
	if err != nil {
		return nil, err
	}
	pick := func(s loginStats, f func([]float64) float64, unit string, scale float64) value {
		if len(s.wall) == 0 {
			return notMeasured
		}
		return val(f(s.wall)*scale, unit)
	}
	med := func(xs []float64) float64 { return quantile(xs, 0.5) }
	p99 := func(xs []float64) float64 { return quantile(xs, 0.99) }
	rssRuns := min(n, 30)
	oRSS, err := h.peak(h.ours, h.oursConf, rssRuns)
	if err != nil {
		return nil, err
	}
	rRSS, err := h.peak(h.ref, h.refConf, rssRuns)
	if err != nil {
		return nil, err
	}
	h.b.notef("helper peak RSS: the largest of %d logins each under GNU time (%s), which forks the program; wait4's Maxrss of a child of a Go process is polluted by the parent's own RSS (os/exec clones with CLONE_VM), which is why earlier figures showed both helpers at the benchmark's size.", rssRuns, timeBin)
	oMed, rMed := pick(ours, med, "ms", 1), pick(ref, med, "ms", 1)
	h.b.notef("helper, one login: %d OTPs each, alternated; latchkey wrong answers %d, vault-ssh-helper %d. Floor: median of %d in-process verify round trips (new TCP connection, net/http) = %.2f ms.",
		n, ours.wrong, ref.wrong, n, floor)
	for _, s := range []loginStats{ours, ref} {
		if s.first != "" {
			h.b.notef("helper, first wrong answer: %s", s.first)
		}
	}
	rows := []row{
		{metric: "helper login: median", ours: oMed, ref: rMed, goal: "≤ 0.5× reference", check: atMostTimesRef(0.5)},
		{metric: "helper login: median − floor", ours: val(oMed.v-floor, "ms"), ref: sub(rMed, floor), goal: "≤ 3 ms", check: atMost(3)},
		{metric: "helper login: p99", ours: pick(ours, p99, "ms", 1), ref: pick(ref, p99, "ms", 1)},
		{metric: "helper login: CPU time (user+system), median", ours: cpuMed(ours), ref: cpuMed(ref)},
		{metric: "helper login: peak RSS", ours: oRSS, ref: rRSS, goal: "≤ 1× reference", check: atMostTimesRef(1)},
		{metric: "helper login: wrong answers", ours: val(float64(ours.wrong), ""), ref: count(ref, ref.wrong), goal: "0", check: atMost(0)},
	}
	if r, ok := floorRow(mins, rMed); ok {
		rows = append(rows, r)
	}
	return rows, nil
}

func cpuMed(s loginStats) value {
	if len(s.cpu) == 0 {
		return notMeasured
	}
	return val(quantile(s.cpu, 0.5), "ms")
}

func sub(x value, f float64) value {
	if !x.ok {
		return x
	}
	return val(x.v-f, x.unit)
}

func count(s loginStats, n int) value {
	if len(s.wall) == 0 {
		return notMeasured
	}
	return val(float64(n), "")
}

// floor is the median of n verify round trips made in this process, each
// on a new connection as a fresh helper process would: the least a login
// can cost.
func (h *helperBench) floor(n int) (float64, error) {
	var xs []float64
	for i := 0; i < n; i++ {
		otp, err := h.otp()
		if err != nil {
			return 0, err
		}
		body, _ := json.Marshal(map[string]string{"otp": otp})
		c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
		start := time.Now()
		resp, err := c.Post(h.b.vault.Addr+"/v1/"+sshMount+"/verify", "application/json", bytes.NewReader(body))
		if err != nil {
			return 0, err
		}
		var out struct {
			Data struct {
				Username string `json:"username"`
			} `json:"data"`
		}
		err = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		xs = append(xs, ms(time.Since(start)))
		if err != nil || out.Data.Username != "alice" {
			return 0, fmt.Errorf("floor: verify answered %s (%v)", resp.Status, err)
		}
	}
	return quantile(xs, 0.5), nil
}

// storm is metric 2: n logins of one program at once, every tenth with an
// OTP Vault never issued (it must be refused).
func (h *helperBench) storm(bin, conf string, n int) (total time.Duration, s loginStats, err error) {
	otps := make([]string, n)
	for i := range otps {
		if i%10 == 9 {
			otps[i] = fmt.Sprintf("00000000-0000-0000-0000-%012d", i)
			continue
		}
		if otps[i], err = h.otp(); err != nil {
			return 0, s, err
		}
	}
	cmds := make([]*exec.Cmd, n)
	for i := range cmds {
		cmds[i] = h.loginCmd(bin, conf, otps[i])
	}
	runs, total, err := gatedStorm(cmds)
	if err != nil {
		return 0, s, err
	}
	for i, r := range runs {
		s.add(r, i%10 != 9)
	}
	return total, s, nil
}

func (h *helperBench) storms(n int) ([]row, error) {
	// Two rounds in the order latchkey, reference, reference, latchkey, so
	// that neither always storms first; totals are the rounds' mean.
	var o, r loginStats
	var oTotal, rTotal time.Duration
	for _, isOurs := range []bool{true, false, false, true} {
		bin, conf, s, total := h.ours, h.oursConf, &o, &oTotal
		if !isOurs {
			if h.ref == "" {
				continue
			}
			bin, conf, s, total = h.ref, h.refConf, &r, &rTotal
		}
		d, st, err := h.storm(bin, conf, n)
		if err != nil {
			return nil, err
		}
		*total += d / 2
		s.wall = append(s.wall, st.wall...)
		s.cpu = append(s.cpu, st.cpu...)
		s.wrong += st.wrong
		if s.first == "" {
			s.first = st.first
		}
	}
	spread := func(s loginStats) value {
		if len(s.wall) == 0 {
			return notMeasured
		}
		return val(quantile(s.wall, 0.99)/quantile(s.wall, 0.5), "×")
	}
	tot := func(d time.Duration, s loginStats) value {
		if len(s.wall) == 0 {
			return notMeasured
		}
		return val(d.Seconds(), "s")
	}
	h.b.notef("login storm: two rounds of %d concurrent logins per program, in the order latchkey, reference, reference, latchkey (every tenth with an OTP Vault never issued, which must be refused); median latchkey %.1f ms, vault-ssh-helper %s ms.",
		n, quantile(o.wall, 0.5), fmtOr(r.wall, func(xs []float64) float64 { return quantile(xs, 0.5) }))
	launcher, err := launcherCPU(20)
	if err != nil {
		return nil, err
	}
	h.b.notef("login storm: all %d processes of a round are forked and exec'd first, each parked in a /bin/sh launcher on a shared gate pipe; closing the gate starts every login at once (the launcher execs the helper in its own process), and each login's time runs from the gate's opening to its exit. Started one by one from this process instead, the last login began 230–430 ms into the storm and the spread measured the order of spawning. CPU time per login includes the launcher shell's: %.2f ms for the launcher and an exec of true (median of 20), the same for both programs.", n, launcher)
	return []row{
		{metric: fmt.Sprintf("login storm (%d at once): total", n), ours: tot(oTotal, o), ref: tot(rTotal, r)},
		{metric: "login storm: p99/median", ours: spread(o), ref: spread(r), goal: "≤ 2", check: atMost(2)},
		{metric: "login storm: CPU time per login, median", ours: cpuMed(o), ref: cpuMed(r)},
		{metric: "login storm: wrong answers", ours: val(float64(o.wrong), ""), ref: count(r, r.wrong), goal: "0", check: atMost(0)},
	}, nil
}

func fmtOr(xs []float64, f func([]float64) float64) string {
	if len(xs) == 0 {
		return "(not measured)"
	}
	return fmt.Sprintf("%.1f", f(xs))
}
