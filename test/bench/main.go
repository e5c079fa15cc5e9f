// Command bench is `make bench`: it measures latchkey's programs against the
// reference programs they replace, in the same run, on the same Vault, and
// prints ratios (lower is better for latchkey).
//
//   - latchkey-agent vs Vault Agent (`vault agent`, from the test Vault
//     binary): wall time and peak RSS of an exit_after_auth run rendering
//     the same templates, and resident memory of a running agent after its
//     first render.
//   - latchkey-ssh-helper: wall time and peak RSS per login. Its reference,
//     vault-ssh-helper, cannot be built here (its module is not served by
//     the Go proxy), so the figure measured for it in
//     shared/reference/vault-ssh-otp.md (~34 ms) is printed beside ours.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/latchkey/latchkey/test/vaulttest"
)

func main() {
	binDir := flag.String("bin", "bin", "directory holding the built latchkey binaries")
	runs := flag.Int("runs", 15, "repetitions per measurement")
	flag.Parse()
	if err := run(*binDir, *runs); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

// sample is one process run: wall time and peak RSS (KiB).
type sample struct {
	wall time.Duration
	rss  int64
}

func measure(cmd *exec.Cmd) (sample, error) {
	start := time.Now()
	out, err := cmd.CombinedOutput()
	wall := time.Since(start)
	if err != nil {
		return sample{}, fmt.Errorf("%s: %w\n%s", cmd.Path, err, out)
	}
	ru, _ := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	var rss int64
	if ru != nil {
		rss = ru.Maxrss
	}
	return sample{wall, rss}, nil
}

func median(xs []sample) sample {
	ws := make([]time.Duration, len(xs))
	rs := make([]int64, len(xs))
	for i, x := range xs {
		ws[i], rs[i] = x.wall, x.rss
	}
	sort.Slice(ws, func(i, j int) bool { return ws[i] < ws[j] })
	sort.Slice(rs, func(i, j int) bool { return rs[i] < rs[j] })
	return sample{ws[len(ws)/2], rs[len(rs)/2]}
}

func repeat(n int, mk func() *exec.Cmd) (sample, error) {
	var xs []sample
	for i := 0; i < n; i++ {
		s, err := measure(mk())
		if err != nil {
			return sample{}, err
		}
		xs = append(xs, s)
	}
	return median(xs), nil
}

func run(binDir string, runs int) error {
	srv, err := vaulttest.Start(vaulttest.Options{})
	if err != nil {
		return err
	}
	defer srv.Stop()
	dir, err := os.MkdirTemp("", "latchkey-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	agent, _ := filepath.Abs(filepath.Join(binDir, "latchkey-agent"))
	helper, _ := filepath.Abs(filepath.Join(binDir, "latchkey-ssh-helper"))
	vault, err := vaulttest.BinPath()
	if err != nil {
		return err
	}
	c := srv.Client
	if err := c.Sys().Mount("bench", &api.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}); err != nil {
		return err
	}
	const nSecrets, nTemplates = 10, 30
	for i := 0; i < nSecrets; i++ {
		if _, err := c.Logical().Write(fmt.Sprintf("bench/data/app/s%d", i), map[string]any{"data": map[string]any{"user": fmt.Sprint("u", i), "password": fmt.Sprint("p", i)}}); err != nil {
			return err
		}
	}
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte(srv.RootToken), 0o600); err != nil {
		return err
	}
	config := func(out string, once bool) (string, error) {
		if err := os.MkdirAll(out, 0o755); err != nil {
			return "", err
		}
		var b strings.Builder
		fmt.Fprintf(&b, "vault {\n  address = %q\n}\nauto_auth {\n  method \"token_file\" {\n    config = {\n      token_file_path = %q\n    }\n  }\n}\n", srv.Addr, token)
		fmt.Fprintf(&b, "exit_after_auth = %v\n", once)
		for i := 0; i < nTemplates; i++ {
			fmt.Fprintf(&b, "template {\n  contents = \"{{ with secret \\\"bench/app/s%d\\\" }}{{ .Data.data.user }}:{{ .Data.data.password }}{{ end }}\"\n  destination = %q\n}\n",
				i%nSecrets, filepath.Join(out, fmt.Sprint("t", i)))
		}
		p := filepath.Join(out, "agent.hcl")
		return p, os.WriteFile(p, []byte(b.String()), 0o600)
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}

	fmt.Printf("latchkey bench: %d runs each, medians; ratio = latchkey / reference (lower is better)\n\n", runs)

	// Agent, one-shot.
	ours, err := config(filepath.Join(dir, "ours"), true)
	if err != nil {
		return err
	}
	theirs, err := config(filepath.Join(dir, "theirs"), true)
	if err != nil {
		return err
	}
	la, err := repeat(runs, func() *exec.Cmd {
		cmd := exec.Command(agent, "-config", ours, "-log-level", "error")
		cmd.Env = env
		return cmd
	})
	if err != nil {
		return err
	}
	va, err := repeat(runs, func() *exec.Cmd {
		cmd := exec.Command(vault, "agent", "-config", theirs, "-log-level", "error")
		cmd.Env = env
		return cmd
	})
	if err != nil {
		return err
	}
	fmt.Printf("agent, exit_after_auth, %d templates over %d secrets\n", nTemplates, nSecrets)
	report("  wall time", la.wall.Seconds()*1000, va.wall.Seconds()*1000, "ms")
	report("  peak RSS ", float64(la.rss)/1024, float64(va.rss)/1024, "MiB")

	// Agent, running: resident memory after the first render.
	lr, err := resident(agent, env, []string{"-config", mustConfig(config(filepath.Join(dir, "ours-run"), false)), "-log-level", "error"}, filepath.Join(dir, "ours-run", fmt.Sprint("t", nTemplates-1)))
	if err != nil {
		return err
	}
	vr, err := resident(vault, env, []string{"agent", "-config", mustConfig(config(filepath.Join(dir, "theirs-run"), false)), "-log-level", "error"}, filepath.Join(dir, "theirs-run", fmt.Sprint("t", nTemplates-1)))
	if err != nil {
		return err
	}
	fmt.Println("agent, running, after the first render")
	report("  RSS      ", float64(lr)/1024, float64(vr)/1024, "MiB")

	// SSH helper.
	if err := c.Sys().Mount("ssh-bench", &api.MountInput{Type: "ssh"}); err != nil {
		return err
	}
	if _, err := c.Logical().Write("ssh-bench/roles/r", map[string]any{"key_type": "otp", "default_user": "alice", "cidr_list": "127.0.0.0/8"}); err != nil {
		return err
	}
	hc := filepath.Join(dir, "helper.hcl")
	if err := os.WriteFile(hc, []byte(fmt.Sprintf("vault_addr = %q\nssh_mount_point = \"ssh-bench\"\nallowed_roles = \"*\"\naudit = \"off\"\n", srv.Addr)), 0o600); err != nil {
		return err
	}
	var hs []sample
	for i := 0; i < runs; i++ {
		s, err := c.Logical().Write("ssh-bench/creds/r", map[string]any{"ip": "127.0.0.1"})
		if err != nil {
			return err
		}
		cmd := exec.Command(helper, "-dev", "-config="+hc)
		cmd.Env = []string{"PAM_USER=alice", "PAM_TYPE=auth"}
		cmd.Stdin = strings.NewReader(s.Data["key"].(string))
		x, err := measure(cmd)
		if err != nil {
			return err
		}
		hs = append(hs, x)
	}
	h := median(hs)
	fmt.Println("ssh helper, one OTP login (vault-ssh-helper not buildable here; reference figure: ~34 ms)")
	report("  wall time", h.wall.Seconds()*1000, 34, "ms")
	fmt.Printf("  peak RSS   latchkey %.1f MiB\n", float64(h.rss)/1024)
	return nil
}

func mustConfig(p string, err error) string {
	if err != nil {
		panic(err)
	}
	return p
}

func report(what string, ours, ref float64, unit string) {
	fmt.Printf("%s  latchkey %8.1f %s   reference %8.1f %s   ratio %.2f\n", what, ours, unit, ref, unit, ours/ref)
}

// resident starts a long-running agent, waits for file to appear, and
// returns its VmRSS in KiB.
func resident(bin string, env, args []string, file string) (int64, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	for i := 0; i < 600; i++ {
		if _, err := os.Stat(file); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second) // settle
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			f := strings.Fields(l)
			return strconv.ParseInt(f[1], 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmRSS")
}
