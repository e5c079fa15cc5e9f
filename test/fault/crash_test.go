package fault

import (
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/latchkey/latchkey/internal/atomicfile"
	"github.com/latchkey/latchkey/test/testkit"
	"github.com/latchkey/latchkey/test/vaulttest"
)

// crashKills is how many times the crash scenario kills an agent: 1,000 in
// CI, FAULT_KILLS to raise it.
func crashKills(t *testing.T) int {
	if v := os.Getenv("FAULT_KILLS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("FAULT_KILLS=%q: want a positive whole number", v)
		}
		return n
	}
	return 1000
}

const (
	crashWorkers = 4               // agents at a time, each with its own destinations
	crashDests   = 8               // templates of one agent
	crashSize    = 128 << 10       // bytes of each destination
	crashCap     = 4 * time.Minute // a generous bound on the whole scenario
)

// crashUnit is the repeated piece of worker w's secret value at generation
// g; it names both, so a destination's content says which write it is.
func crashUnit(w, g int) string { return fmt.Sprintf("kvbig-%s-w%d-g%d;", runID, w, g) }

// crashContent is destination d's complete content at generation g
// (generation 0: the file the test put there before any agent ran).
func crashContent(w, d, g int) string {
	u := crashUnit(w, g)
	return fmt.Sprintf("d%d:", d) + strings.Repeat(u, crashSize/len(u))
}

// crashWorker is one directory of destinations rendered by a line of
// short-lived agents, each killed with SIGKILL after a random delay.
type crashWorker struct {
	w       int
	dir     string
	cfg     string
	gen     int // the generation in Vault now
	maxWait time.Duration
	// figures
	kills, checked, bad, midWrite, maxTemps int
}

func (cw *crashWorker) dest(d int) string {
	return filepath.Join(cw.dir, fmt.Sprintf("dest-%d.txt", d))
}

// crashConfig writes the agent config of worker w: a token_file login and
// crashDests templates of kv/crash-w.
func crashConfig(t *testing.T, addr, token string, cw *crashWorker) {
	tokenFile := filepath.Join(cw.dir, "token")
	testkit.WriteFile(t, tokenFile, token)
	var b strings.Builder
	fmt.Fprintf(&b, "vault {\n  address = %q\n}\nlatchkey {\n  state_dir = %q\n}\n", addr, filepath.Join(cw.dir, "state"))
	fmt.Fprintf(&b, "auto_auth {\n  method \"token_file\" {\n    config = {\n      token_file_path = %q\n    }\n  }\n}\n", tokenFile)
	for d := 0; d < crashDests; d++ {
		contents := fmt.Sprintf("d%d:{{ with secret \"kv/crash-%d\" }}{{ .Data.v }}{{ end }}", d, cw.w)
		fmt.Fprintf(&b, "template {\n  contents    = %q\n  destination = %q\n}\n", contents, cw.dest(d))
		testkit.WriteFile(t, cw.dest(d), crashContent(cw.w, d, 0))
	}
	cw.cfg = filepath.Join(cw.dir, "agent.hcl")
	testkit.WriteFile(t, cw.cfg, b.String())
}

// next writes the next generation of the worker's secret.
func (cw *crashWorker) next(c *api.Client) error {
	cw.gen++
	u := crashUnit(cw.w, cw.gen)
	_, err := c.Logical().Write(fmt.Sprintf("kv/crash-%d", cw.w), map[string]any{"v": strings.Repeat(u, crashSize/len(u))})
	return err
}

// run starts one agent and kills it after wait (never, when wait < 0: it
// runs until every destination is current, then gets SIGTERM). It returns
// how long the agent ran.
func (cw *crashWorker) run(t *testing.T, wait time.Duration) time.Duration {
	log := &syncBuffer{}
	cmd := exec.Command(agentBin, "-config", cw.cfg, "-log-level", "trace")
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Error(err)
		return 0
	}
	if wait >= 0 {
		time.Sleep(wait)
		cmd.Process.Kill()
		cmd.Wait()
		cw.kills++
	} else {
		testkit.Eventually(t, "every destination rendered by a clean agent", func() bool {
			for d := 0; d < crashDests; d++ {
				if testkit.ReadFile(cw.dest(d)) != crashContent(cw.w, d, cw.gen) {
					return false
				}
			}
			return true
		})
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}
	took := time.Since(start)
	scanLog(t, "a crashed agent", log.String())
	return took
}

// check looks at every destination after a kill: each must hold one
// generation's complete content, not older than what it held before.
// It also counts the temporary files left (before: those there before
// this agent started).
func (cw *crashWorker) check(t *testing.T, seen []int, before map[string]bool) {
	gens := map[int]bool{}
	for d := 0; d < crashDests; d++ {
		cw.checked++
		got := testkit.ReadFile(cw.dest(d))
		g, ok := crashGen(cw.w, d, got)
		if !ok || g < seen[d] || g > cw.gen {
			cw.bad++
			if cw.bad <= 3 {
				t.Errorf("worker %d, kill %d: %s holds %d bytes that are no complete generation between %d and %d",
					cw.w, cw.kills, cw.dest(d), len(got), seen[d], cw.gen)
			}
			continue
		}
		seen[d] = g
		gens[g] = true
	}
	temps := cw.temps(t)
	fresh := false
	for n := range temps {
		if !before[n] {
			fresh = true
		}
	}
	if len(gens) > 1 || fresh {
		cw.midWrite++
	}
	cw.maxTemps = max(cw.maxTemps, len(temps))
}

// temps returns the names of Write's temporary files in the worker's
// directory.
func (cw *crashWorker) temps(t *testing.T) map[string]bool {
	es, err := os.ReadDir(cw.dir)
	if err != nil {
		t.Error(err)
	}
	names := map[string]bool{}
	for _, e := range es {
		if strings.HasPrefix(e.Name(), ".dest-") && strings.Contains(e.Name(), ".tmp-") {
			names[e.Name()] = true
		}
	}
	return names
}

// crashGen says which generation content is of worker w's destination d.
func crashGen(w, d int, content string) (int, bool) {
	prefix := fmt.Sprintf("d%d:kvbig-%s-w%d-g", d, runID, w)
	if !strings.HasPrefix(content, prefix) {
		return 0, false
	}
	rest := content[len(prefix):]
	i := strings.IndexByte(rest, ';')
	if i < 0 {
		return 0, false
	}
	g, err := strconv.Atoi(rest[:i])
	if err != nil || content != crashContent(w, d, g) {
		return 0, false
	}
	return g, true
}

// kill -9 of the real agent at random points while it renders large
// templates from a real Vault: every destination is always one complete
// generation (old or new), never partial or empty, and the temporary
// files of killed writes are removed by the next agent.
func TestFaultCrash(t *testing.T) {
	srv := vaulttest.StartT(t, vaulttest.Options{})
	c := srv.Client
	testkit.Must(t, c.Sys().Mount("kv", &api.MountInput{Type: "kv", Options: map[string]string{"version": "1"}}))
	testkit.Must(t, c.Sys().PutPolicy("kv", `path "kv/*" { capabilities = ["read"] }`))
	tok, err := c.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{"kv"}, TTL: "1h"})
	testkit.Must(t, err)
	token := tok.Auth.ClientToken
	remember(token, "kvbig-"+runID)

	want := crashKills(t)
	workers := make([]*crashWorker, crashWorkers)
	for w := range workers {
		cw := &crashWorker{w: w, dir: t.TempDir()}
		crashConfig(t, srv.Addr, token, cw)
		testkit.Must(t, cw.next(c))
		// A clean run first: how long a start up to every file written takes.
		cw.maxWait = cw.run(t, -1) * 3 / 2
		workers[w] = cw
	}
	start := time.Now()
	var wg sync.WaitGroup
	for _, cw := range workers {
		wg.Add(1)
		go func(cw *crashWorker) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(time.Now().UnixNano() + int64(cw.w)))
			seen := make([]int, crashDests)
			for d := range seen {
				seen[d] = cw.gen
			}
			for cw.kills < (want+crashWorkers-1)/crashWorkers && time.Since(start) < crashCap && !t.Failed() {
				if err := cw.next(c); err != nil {
					t.Error(err)
					return
				}
				before := cw.temps(t)
				cw.run(t, time.Duration(rng.Int63n(int64(cw.maxWait))))
				cw.check(t, seen, before)
			}
		}(cw)
	}
	wg.Wait()
	took := time.Since(start)

	// A clean start after the last kill: every file current, no
	// temporary file left.
	time.Sleep(atomicfile.StaleGrace)
	var kills, checked, bad, mid, maxTemps, left int
	for _, cw := range workers {
		// A new generation: every destination is written, so each write
		// gets to clean its leftovers.
		testkit.Must(t, cw.next(c))
		cw.run(t, -1)
		if n := len(cw.temps(t)); n > 0 {
			left += n
			t.Errorf("worker %d: %d temporary files left after a clean start", cw.w, n)
		}
		kills += cw.kills
		checked += cw.checked
		bad += cw.bad
		mid += cw.midWrite
		maxTemps = max(maxTemps, cw.maxTemps)
	}
	if kills < want {
		t.Errorf("%d kills in %s, want %d (bound %s)", kills, took.Round(time.Second), want, crashCap)
	}
	report("crash: %d kill -9 of the agent in %.0f s (%d agents at a time, %d templates of %d KiB each), %d destinations checked, %d bad (partial, empty or older); %d kills hit a write (files of two generations, or a new temporary file left), at most %d temporary files at once, %d after a clean start",
		kills, took.Seconds(), crashWorkers, crashDests, crashSize>>10, checked, bad, mid, maxTemps, left)
}
