package vaulttest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/latchkey/latchkey/test/testkit/secretscan"
)

// Cluster is n real `vault server` processes with integrated storage
// (raft) on loopback, initialised with one unseal key, unsealed and joined.
// Raft runs with performance_multiplier = 1, so an election after the
// active node dies takes about a second or two, not Vault's default ten.
type Cluster struct {
	Nodes []*Node
	// RootToken and UnsealKey are the cluster's, from sys/init.
	RootToken, UnsealKey string

	bin string
}

// Node is one server of a Cluster. Its embedded Server's Client holds the
// root token and talks to this node only (a standby forwards or redirects).
type Node struct {
	Server
	// ID is the raft node id ("node0", ...).
	ID string
	// ClusterAddr is the node's raft/cluster address.
	ClusterAddr string

	config  string
	stopped bool // SIGSTOPped by Stop
}

// StartCluster starts an n-node raft cluster for the test and returns once
// every node is an unsealed raft voter and one is active. The processes are
// killed and their directories removed when the test ends. A failure fails
// the test.
func StartCluster(tb testing.TB, n int) *Cluster {
	tb.Helper()
	bin, err := BinPath()
	if err != nil {
		tb.Fatal(err)
	}
	c := &Cluster{bin: bin}
	tb.Cleanup(c.close)
	if err := c.start(n); err != nil {
		tb.Fatalf("vault cluster: %v", err)
	}
	return c
}

func (c *Cluster) close() {
	for _, nd := range c.Nodes {
		if nd.cmd != nil {
			nd.halt(syscall.SIGKILL, 5*time.Second)
		}
		os.RemoveAll(nd.Dir)
	}
}

func (c *Cluster) start(n int) error {
	ports := map[int]bool{}
	for len(c.Nodes) < n {
		p, err := FreePortPair()
		if err != nil {
			return err
		}
		if ports[p] || ports[p+1] || ports[p-1] {
			continue
		}
		ports[p] = true
		dir, err := os.MkdirTemp("", "vaultcluster-")
		if err != nil {
			return err
		}
		i := len(c.Nodes)
		nd := &Node{
			Server:      Server{Port: p, Addr: "http://127.0.0.1:" + strconv.Itoa(p), Dir: dir, LogFile: filepath.Join(dir, "vault.log")},
			ID:          "node" + strconv.Itoa(i),
			ClusterAddr: "https://127.0.0.1:" + strconv.Itoa(p+1),
			config:      filepath.Join(dir, "vault.hcl"),
		}
		c.Nodes = append(c.Nodes, nd)
	}
	for _, nd := range c.Nodes {
		if err := os.Mkdir(filepath.Join(nd.Dir, "raft"), 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(nd.config, []byte(c.nodeConfig(nd)), 0o600); err != nil {
			return err
		}
		if err := nd.spawn(c.bin, []string{"server", "-config=" + nd.config, "-log-level=info"}, nil); err != nil {
			return err
		}
		cl, err := nd.NewClient("")
		if err != nil {
			return err
		}
		nd.Client = cl
	}
	if err := c.init(); err != nil {
		return err
	}
	for i := 1; i < len(c.Nodes); i++ {
		if err := c.joinAndUnseal(i); err != nil {
			return err
		}
	}
	return c.WaitHealthy(90 * time.Second)
}

// nodeConfig is nd's server configuration.
func (c *Cluster) nodeConfig(nd *Node) string {
	var b strings.Builder
	// No retry_join: start joins each node explicitly (sys/storage/raft/join),
	// which is deterministic where a background retry_join racing the first
	// unseal sometimes never completed; a restarted node keeps its raft
	// membership in its data directory.
	fmt.Fprintf(&b, "storage \"raft\" {\n  path = %q\n  node_id = %q\n  performance_multiplier = 1\n}\n", filepath.Join(nd.Dir, "raft"), nd.ID)
	fmt.Fprintf(&b, "listener \"tcp\" {\n  address = \"127.0.0.1:%d\"\n  cluster_address = \"127.0.0.1:%d\"\n  tls_disable = true\n}\n", nd.Port, nd.Port+1)
	fmt.Fprintf(&b, "api_addr = %q\ncluster_addr = %q\ndisable_mlock = true\nui = false\n", nd.Addr, nd.ClusterAddr)
	return b.String()
}

// init initialises the cluster through node 0 and unseals it, so that the
// others join it.
func (c *Cluster) init() error {
	nd := c.Nodes[0]
	var resp *api.InitResponse
	err := poll(60*time.Second, nd, func() error {
		var err error
		resp, err = nd.Client.Sys().Init(&api.InitRequest{SecretShares: 1, SecretThreshold: 1})
		return err
	})
	if err != nil {
		return fmt.Errorf("init %s: %w", nd.ID, err)
	}
	c.RootToken, c.UnsealKey = resp.RootToken, resp.Keys[0]
	secretscan.Remember(c.RootToken, c.UnsealKey)
	for _, o := range c.Nodes {
		o.RootToken = c.RootToken
		o.Client.SetToken(c.RootToken)
	}
	if err := c.unseal(0, 30*time.Second); err != nil {
		return err
	}
	// Promote joining nodes to voters quickly (autopilot waits 10 s by default).
	return poll(30*time.Second, nd, func() error {
		_, err := nd.Client.Logical().Write("sys/storage/raft/autopilot/configuration", map[string]any{
			"server_stabilization_time": "1s", "cleanup_dead_servers": false,
		})
		return err
	})
}

// joinAndUnseal joins node i and unseals it. Under load a join can lapse
// before the unseal key arrives (Vault then answers "invalid key size 0"
// for ever): the join is started again, up to five times.
func (c *Cluster) joinAndUnseal(i int) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if err = c.join(i); err != nil && attempt == 0 {
			return err
		}
		if err = c.unseal(i, 15*time.Second); err == nil {
			return nil
		}
		_, _ = c.Nodes[i].Client.Sys().ResetUnsealProcess()
	}
	return err
}

// join makes node i join node 0's cluster (it is then sealed, waiting for
// the cluster's unseal key).
func (c *Cluster) join(i int) error {
	nd := c.Nodes[i]
	err := poll(60*time.Second, nd, func() error {
		resp, err := nd.Client.Sys().RaftJoin(&api.RaftJoinRequest{LeaderAPIAddr: c.Nodes[0].Addr})
		if err != nil {
			return err
		}
		if !resp.Joined {
			return errors.New("not joined")
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("join %s: %w", nd.ID, err)
	}
	return nil
}

// unseal unseals node i, retrying while it has not yet joined the cluster.
func (c *Cluster) unseal(i int, limit time.Duration) error {
	nd := c.Nodes[i]
	err := poll(limit, nd, func() error {
		st, err := nd.Client.Sys().Unseal(c.UnsealKey)
		if err != nil {
			return err
		}
		if st.Sealed {
			return errors.New("still sealed")
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("unseal %s: %w; its log:\n%s", nd.ID, err, nd.logTail(30))
	}
	return nil
}

// poll calls f every 200 ms until it succeeds, nd's process exits, or limit
// passes; it returns f's last error then.
func poll(limit time.Duration, nd *Node, f func() error) error {
	deadline := time.Now().Add(limit)
	for {
		err := f()
		if err == nil {
			return nil
		}
		if nd.Stopped() {
			return fmt.Errorf("%s exited (%v): %w; its log:\n%s", nd.ID, nd.err, err, nd.logTail(30))
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// WaitHealthy returns once every node is unsealed and names the one active
// node as its leader, and every node is a raft voter, or fails after limit.
func (c *Cluster) WaitHealthy(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var last error
	for time.Now().Before(deadline) {
		if last = c.healthy(); last == nil {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("cluster not healthy after %s: %w", limit, last)
}

func (c *Cluster) healthy() error {
	leader := c.Leader()
	if leader < 0 {
		return errors.New("no active node")
	}
	for _, nd := range c.Nodes {
		if code := nd.health(); code != http.StatusOK && code != http.StatusTooManyRequests {
			return fmt.Errorf("%s: sys/health %d", nd.ID, code)
		}
		// A standby that does not know the active node yet answers 500
		// ("active cluster node not found") to what it should forward.
		ld, err := nd.Client.Sys().Leader()
		if err != nil {
			return fmt.Errorf("%s: sys/leader: %w", nd.ID, err)
		}
		if ld.LeaderAddress != c.Nodes[leader].Addr {
			return fmt.Errorf("%s: leader %q, not %s", nd.ID, ld.LeaderAddress, c.Nodes[leader].ID)
		}
	}
	sec, err := c.Nodes[leader].Client.Logical().Read("sys/storage/raft/configuration")
	if err != nil {
		return err
	}
	var cfg struct {
		Config struct {
			Servers []struct {
				NodeID string `json:"node_id"`
				Voter  bool   `json:"voter"`
			} `json:"servers"`
		} `json:"config"`
	}
	b, _ := json.Marshal(sec.Data)
	if err := json.Unmarshal(b, &cfg); err != nil {
		return err
	}
	voters := 0
	for _, s := range cfg.Config.Servers {
		if s.Voter {
			voters++
		}
	}
	if voters != len(c.Nodes) {
		return fmt.Errorf("%d of %d nodes are raft voters", voters, len(c.Nodes))
	}
	return nil
}

// health returns the status code of nd's sys/health (200 active, 429
// standby, 503 sealed, 501 not initialised), or 0 when it does not answer
// within a second.
func (nd *Node) health() int {
	if nd.cmd == nil || nd.Stopped() || nd.stopped {
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, nd.Addr+"/v1/sys/health", nil)
	if err != nil {
		return 0
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Leader returns the index of the active node, or -1 when none is.
func (c *Cluster) Leader() int {
	for i, nd := range c.Nodes {
		if nd.health() == http.StatusOK {
			return i
		}
	}
	return -1
}

// WaitLeader waits up to limit for an active node other than not (-1: any)
// and returns its index; it fails tb otherwise.
func (c *Cluster) WaitLeader(tb testing.TB, not int, limit time.Duration) int {
	tb.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if l := c.Leader(); l >= 0 && l != not {
			return l
		}
		time.Sleep(100 * time.Millisecond)
	}
	tb.Fatalf("no new active node after %s", limit)
	return -1
}

// Standby returns the index of a running unsealed standby node, or -1.
func (c *Cluster) Standby() int {
	for i, nd := range c.Nodes {
		if nd.health() == http.StatusTooManyRequests {
			return i
		}
	}
	return -1
}

// Client returns a root-token client of the active node, failing tb when
// none is active within 30 s.
func (c *Cluster) Client(tb testing.TB) *api.Client {
	tb.Helper()
	return c.Nodes[c.WaitLeader(tb, -1, 30*time.Second)].Client
}

// Addrs returns every node's API address, in node order.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, nd := range c.Nodes {
		out[i] = nd.Addr
	}
	return out
}

// Kill kills node i with SIGKILL (a crash) and waits until it is gone; its
// data stays for Restart.
func (c *Cluster) Kill(i int) {
	nd := c.Nodes[i]
	nd.halt(syscall.SIGKILL, 5*time.Second)
	nd.stopped = false
}

// Shutdown stops node i gracefully (SIGTERM; SIGKILL after 10 s), as an
// upgrade does; its data stays for Restart.
func (c *Cluster) Shutdown(i int) {
	nd := c.Nodes[i]
	nd.halt(syscall.SIGTERM, 10*time.Second)
	nd.stopped = false
}

// Restart starts node i again on its data directory (after Kill or after
// it exited) and unseals it; it fails tb when the node is not unsealed
// within 60 s.
func (c *Cluster) Restart(tb testing.TB, i int) {
	tb.Helper()
	nd := c.Nodes[i]
	if !nd.Stopped() {
		c.Kill(i)
	}
	if err := nd.spawn(c.bin, []string{"server", "-config=" + nd.config, "-log-level=info"}, nil); err != nil {
		tb.Fatal(err)
	}
	if err := c.unseal(i, 60*time.Second); err != nil {
		tb.Fatal(err)
	}
}

// Seal seals node i through its own API (sys/seal); a sealed node answers
// 503 until unsealed again with Unseal.
func (c *Cluster) Seal(tb testing.TB, i int) {
	tb.Helper()
	if err := c.Nodes[i].Client.Sys().Seal(); err != nil {
		tb.Fatalf("seal %s: %v", c.Nodes[i].ID, err)
	}
}

// Unseal unseals node i again; it fails tb after 60 s.
func (c *Cluster) Unseal(tb testing.TB, i int) {
	tb.Helper()
	if err := c.unseal(i, 60*time.Second); err != nil {
		tb.Fatal(err)
	}
}

// Stop freezes node i with SIGSTOP: its sockets stay open and accept
// connections but nothing answers — a partitioned or hung node.
func (c *Cluster) Stop(i int) {
	nd := c.Nodes[i]
	_ = nd.cmd.Process.Signal(syscall.SIGSTOP)
	nd.stopped = true
}

// Cont resumes node i after Stop.
func (c *Cluster) Cont(i int) {
	nd := c.Nodes[i]
	_ = nd.cmd.Process.Signal(syscall.SIGCONT)
	nd.stopped = false
}
