package template

import (
	"fmt"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/agent/config"
	"github.com/latchkey/latchkey/internal/clock"
	"github.com/latchkey/latchkey/test/testkit"
	"github.com/latchkey/latchkey/test/vaulttest"
)

// Database credentials have a renewable lease: renewed while Vault allows
// (same user, file untouched), then, once max_ttl caps the renewal, fetched
// again before the lease ends (new user rendered).
func TestDatabaseLeaseRenewedThenReplaced(t *testing.T) {
	mount := fmt.Sprintf("db-%d", seq.Add(1))
	srv.DatabaseMount(t, mount, vaulttest.StartPostgres(t), "3s", "9s")
	proxy := newCounting(t)
	dir := t.TempDir()
	tc := tmpl(dir, "db.env", fmt.Sprintf(`{{ with secret "%s/creds/app" }}DB_USER={{ .Data.username }}
DB_PASSWORD={{ .Data.password }}
RENEWABLE={{ .Renewable }}{{ end }}`, mount))
	// Vault caps the renewals by max_ttl on its own (wall) clock, so the
	// manager runs on that clock here.
	r := run(t, Options{Templates: []config.Template{tc}, Config: quick(), Clients: root(t, proxy.url), Clock: clock.Real})
	waitReady(t, r.m)
	first := testkit.ReadFile(tc.Destination)
	if !strings.Contains(first, "DB_USER=v-") || !strings.HasSuffix(first, "RENEWABLE=true") {
		t.Fatalf("rendered %q, want renewable database credentials", first)
	}
	testkit.Eventually(t, "a lease renewal", func() bool { return proxy.puts("sys/leases/renew") >= 1 })
	if got := testkit.ReadFile(tc.Destination); got != first {
		t.Fatalf("a renewal changed the file:\n%s", got)
	}
	testkit.Eventually(t, "new credentials once renewal is capped", func() bool {
		now := testkit.ReadFile(tc.Destination)
		return now != "" && now != first
	})
	if n := proxy.count(mount + "/creds/app"); n != 2 {
		t.Errorf("credentials fetched %d times, want 2 (first, then once max_ttl capped renewal)", n)
	}
}
