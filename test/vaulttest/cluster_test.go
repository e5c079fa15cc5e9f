package vaulttest_test

import (
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/latchkey/latchkey/test/vaulttest"
)

// A 3-node cluster elects a new active node when the active one is killed,
// keeps what was written before, and takes the old node back as a standby.
func TestClusterFailover(t *testing.T) {
	c := vaulttest.StartCluster(t, 3)
	client := c.Client(t)
	if err := client.Sys().Mount("kv", &vaulttestMount); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Logical().Write("kv/app", map[string]any{"v": "1"}); err != nil {
		t.Fatal(err)
	}
	old := c.Leader()
	c.Kill(old)
	now := c.WaitLeader(t, old, 30*time.Second)
	sec, err := c.Nodes[now].Client.Logical().Read("kv/app")
	if err != nil || sec == nil || sec.Data["v"] != "1" {
		t.Fatalf("read after failover: %v %v", sec, err)
	}
	c.Restart(t, old)
	if err := c.WaitHealthy(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	if l := c.Leader(); l == old {
		t.Logf("old node %d became active again", old)
	}
}

var vaulttestMount = api.MountInput{Type: "kv", Options: map[string]string{"version": "1"}}
