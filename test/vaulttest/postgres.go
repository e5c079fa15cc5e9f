package vaulttest

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

	"github.com/latchkey/latchkey/test/testkit"
)

// Postgres is a throwaway PostgreSQL server (StartPostgres), the backend of
// a real database secrets engine: its creds/<role> reads create a role in
// it and a lease in Vault.
type Postgres struct {
	Port int
	bin  string
}

// StartPostgres runs a throwaway PostgreSQL server (trust auth, loopback)
// as the postgres user; it stops when the test ends. It needs root and the
// postgresql package (make deps).
func StartPostgres(t testing.TB) *Postgres {
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
	return &Postgres{Port: port, bin: bin}
}

// Query runs sql with psql as the postgres superuser and returns its
// output, unaligned and without headers.
func (p *Postgres) Query(t testing.TB, sql string) string {
	t.Helper()
	out, err := exec.Command(filepath.Join(p.bin, "psql"), "-h", "127.0.0.1", "-p", strconv.Itoa(p.Port), "-U", "postgres",
		"-d", "postgres", "-tA", "-c", sql).CombinedOutput()
	if err != nil {
		t.Fatalf("psql %q: %v\n%s", sql, err, out)
	}
	return strings.TrimSpace(string(out))
}

// DatabaseMount mounts the database secrets engine at mount, connected to
// p, with a role "app" whose credentials (a PostgreSQL role named v-...)
// live defaultTTL, renewable up to maxTTL.
func (s *Server) DatabaseMount(t testing.TB, mount string, p *Postgres, defaultTTL, maxTTL string) {
	t.Helper()
	s.MountT(t, mount, &api.MountInput{Type: "database"})
	if _, err := s.Client.Logical().Write(mount+"/config/pg", map[string]any{
		"plugin_name":       "postgresql-database-plugin",
		"connection_url":    fmt.Sprintf("postgresql://postgres@127.0.0.1:%d/postgres?sslmode=disable", p.Port),
		"allowed_roles":     "*",
		"verify_connection": true,
	}); err != nil {
		t.Fatalf("%s/config/pg: %v", mount, err)
	}
	if _, err := s.Client.Logical().Write(mount+"/roles/app", map[string]any{
		"db_name":             "pg",
		"creation_statements": `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`,
		"default_ttl":         defaultTTL,
		"max_ttl":             maxTTL,
	}); err != nil {
		t.Fatalf("%s/roles/app: %v", mount, err)
	}
}
