package template

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/latchkey/latchkey/agent/config"
	"github.com/latchkey/latchkey/internal/clock"
	"github.com/latchkey/latchkey/test/testkit"
)

// startPostgres runs a throwaway PostgreSQL server (trust auth, loopback)
// as the postgres user and returns its port.
func startPostgres(t *testing.T) int {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("PostgreSQL runs as the postgres user; needs root")
	}
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	if len(bins) == 0 {
		t.Fatal("PostgreSQL is not installed (apt-get install postgresql): the database-lease test needs it")
	}
	bin := filepath.Dir(bins[len(bins)-1])
	pg, err := user.Lookup("postgres")
	testkit.Must(t, err)
	uid, _ := strconv.Atoi(pg.Uid)
	gid, _ := strconv.Atoi(pg.Gid)
	base, err := os.MkdirTemp("", "latchkey-pg-")
	testkit.Must(t, err)
	t.Cleanup(func() { os.RemoveAll(base) })
	testkit.Must(t, os.Chmod(base, 0o755))
	data := filepath.Join(base, "data")
	testkit.Must(t, os.Mkdir(data, 0o700))
	testkit.Must(t, os.Chown(data, uid, gid))
	if out, err := exec.Command("runuser", "-u", "postgres", "--", filepath.Join(bin, "initdb"), "-D", data, "-A", "trust", "-U", "postgres").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	port := testkit.FreePort(t)
	cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-k", data,
		"-p", strconv.Itoa(port), "-c", "listen_addresses=127.0.0.1")
	// Run as postgres directly (not through runuser), so that the signal
	// below reaches the server itself; Pdeathsig stops it with the test.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, Pdeathsig: syscall.SIGQUIT}
	logf, err := os.Create(filepath.Join(base, "log"))
	testkit.Must(t, err)
	cmd.Stdout, cmd.Stderr = logf, logf
	testkit.Must(t, cmd.Start())
	t.Cleanup(func() {
		// SIGINT is PostgreSQL's fast shutdown: it does not wait for
		// Vault's pooled connections to close.
		cmd.Process.Signal(syscall.SIGINT)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
		}
	})
	// A TCP connect succeeds while the server is still replaying its WAL
	// ("the database system is starting up"); pg_isready asks the server
	// itself whether it accepts connections.
	ready := filepath.Join(bin, "pg_isready")
	for i := 0; ; i++ {
		if exec.Command(ready, "-q", "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "postgres", "-d", "postgres").Run() == nil {
			break
		}
		if i > 600 {
			b, _ := os.ReadFile(filepath.Join(base, "log"))
			t.Fatalf("postgres did not become ready:\n%s", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return port
}

// Database credentials have a renewable lease: renewed while Vault allows
// (same user, file untouched), then, once max_ttl caps the renewal, fetched
// again before the lease ends (new user rendered).
func TestDatabaseLeaseRenewedThenReplaced(t *testing.T) {
	port := startPostgres(t)
	c := srv.Client
	mount := fmt.Sprintf("db-%d", seq.Add(1))
	testkit.Must(t, c.Sys().Mount(mount, &api.MountInput{Type: "database"}))
	_, err := c.Logical().Write(mount+"/config/pg", map[string]any{
		"plugin_name":       "postgresql-database-plugin",
		"connection_url":    fmt.Sprintf("postgresql://postgres@127.0.0.1:%d/postgres?sslmode=disable", port),
		"allowed_roles":     "*",
		"verify_connection": true,
	})
	testkit.Must(t, err)
	_, err = c.Logical().Write(mount+"/roles/app", map[string]any{
		"db_name":             "pg",
		"creation_statements": `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`,
		"default_ttl":         "3s",
		"max_ttl":             "9s",
	})
	testkit.Must(t, err)
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
