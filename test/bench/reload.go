package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/latchkey/latchkey/test/testkit"
)

// reloadCost is metric 4: with 50 templates, a pkiCert and (when PostgreSQL
// can run here) database credentials rendered, the agent's token is revoked,
// then separately the agent gets SIGHUP; counted for both programs: files
// rewritten and secrets issued again (certificates, database credentials).
// Revoking a token revokes the leases it created, so the database
// credentials must be issued again after a revocation (and only then).
func (b *bench) reloadCost() ([]row, error) {
	if err := b.ensureSeeded(); err != nil {
		return nil, err
	}
	ac := agentConf{templates: 50, secrets: 10, pki: true}
	pg, err := testkit.StartPostgres()
	switch {
	case errors.Is(err, testkit.ErrNoPostgres):
		b.notef("re-login and SIGHUP: the database lease was not measured: %v", err)
	case err != nil:
		return nil, err
	default:
		defer pg.Stop()
		if err := b.seedDatabase(pg.Port); err != nil {
			return nil, err
		}
		ac.db = "r"
	}
	settle := envDuration("BENCH_SETTLE", 5*time.Second)
	type counts struct{ revokeFiles, revokeIssued, revokeReqs, hupFiles, hupIssued, hupReqs int }
	measure := func(prog string) (counts, error) {
		var c counts
		a, err := b.startAgent(prog, filepath.Join(b.dir, "reload-"+prog), ac)
		if err != nil {
			return c, err
		}
		defer a.stop()
		if _, err := a.waitRendered(2 * time.Minute); err != nil {
			return c, err
		}
		time.Sleep(settle)
		// Revoke the token the sink holds; wait for the new login, then
		// for what follows it.
		before, issued, reqs := snapshot(a.dests), issuedCount(a), a.proxy.Total()
		logins := a.proxy.Count("PUT", "/v1/auth/approle/login")
		tok, err := os.ReadFile(filepath.Join(a.dir, "token"))
		if err != nil {
			return c, err
		}
		if _, err := b.vault.Client.Logical().Write("auth/token/revoke", map[string]any{"token": strings.TrimSpace(string(tok))}); err != nil {
			return c, err
		}
		deadline := time.Now().Add(4*tokenTTL() + 30*time.Second)
		for a.proxy.Count("PUT", "/v1/auth/approle/login") == logins {
			if time.Now().After(deadline) {
				return c, fmt.Errorf("%s agent did not log in again after its token was revoked; its log:\n%s", prog, tail(filepath.Join(a.dir, "log")))
			}
			time.Sleep(20 * time.Millisecond)
		}
		if _, err := a.waitRendered(time.Since(a.start) + 2*time.Minute); err != nil {
			return c, err
		}
		time.Sleep(settle)
		c.revokeFiles, c.revokeIssued, c.revokeReqs = changed(before, snapshot(a.dests)), issuedCount(a)-issued, a.proxy.Total()-reqs
		// SIGHUP.
		before, issued, reqs = snapshot(a.dests), issuedCount(a), a.proxy.Total()
		if err := a.d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			return c, err
		}
		time.Sleep(settle)
		if _, err := a.waitRendered(time.Since(a.start) + 2*time.Minute); err != nil {
			return c, err
		}
		c.hupFiles, c.hupIssued, c.hupReqs = changed(before, snapshot(a.dests)), issuedCount(a)-issued, a.proxy.Total()-reqs
		return c, nil
	}
	o, err := measure("latchkey")
	if err != nil {
		return nil, err
	}
	v, err := measure("vault")
	if err != nil {
		return nil, err
	}
	n := 51
	revokeGoal, revokeLimit := "0", 0.0
	what := "50 templates + a pkiCert"
	if ac.db != "" {
		n, revokeGoal, revokeLimit = 52, "≤ 1 (the database credentials, revoked with the token)", 1
		what += " + database credentials"
	}
	b.notef("re-login and SIGHUP (%s; %d files): a file counts as rewritten when its inode, size or mtime changed; secrets issued again = certificates from %s/issue + database credentials, counted by the proxy; each event is followed by BENCH_SETTLE=%s.",
		what, n, pkiMount, settle)
	f := func(x int) value { return val(float64(x), "") }
	return []row{
		{metric: fmt.Sprintf("revoke token: files rewritten (of %d)", n), ours: f(o.revokeFiles), ref: f(v.revokeFiles), goal: revokeGoal, check: atMost(revokeLimit)},
		{metric: "revoke token: secrets issued again", ours: f(o.revokeIssued), ref: f(v.revokeIssued), goal: revokeGoal, check: atMost(revokeLimit)},
		{metric: "revoke token: Vault requests until settled", ours: f(o.revokeReqs), ref: f(v.revokeReqs)},
		{metric: fmt.Sprintf("SIGHUP: files rewritten (of %d)", n), ours: f(o.hupFiles), ref: f(v.hupFiles), goal: "0", check: atMost(0)},
		{metric: "SIGHUP: secrets issued again", ours: f(o.hupIssued), ref: f(v.hupIssued), goal: "0", check: atMost(0)},
		{metric: "SIGHUP: Vault requests until settled", ours: f(o.hupReqs), ref: f(v.hupReqs)},
	}, nil
}

func (b *bench) seedDatabase(port int) error {
	c := b.vault.Client
	if err := c.Sys().Mount("database", &api.MountInput{Type: "database"}); err != nil {
		return err
	}
	if _, err := c.Logical().Write("database/config/pg", map[string]any{
		"plugin_name":       "postgresql-database-plugin",
		"connection_url":    fmt.Sprintf("postgresql://postgres@127.0.0.1:%d/postgres?sslmode=disable", port),
		"allowed_roles":     "*",
		"verify_connection": true,
	}); err != nil {
		return err
	}
	_, err := c.Logical().Write("database/roles/r", map[string]any{
		"db_name":             "pg",
		"creation_statements": `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`,
		"default_ttl":         "1h",
		"max_ttl":             "24h",
	})
	return err
}

func issuedCount(a *agentProc) int {
	return a.proxy.Count("PUT", "/v1/"+pkiMount+"/issue/r") + a.proxy.Count("POST", "/v1/"+pkiMount+"/issue/r") +
		a.proxy.Count("GET", "/v1/database/creds/r")
}

type fileID struct {
	ino, size int64
	mtime     int64
}

func snapshot(paths []string) map[string]fileID {
	m := map[string]fileID{}
	for _, p := range paths {
		var st syscall.Stat_t
		if syscall.Stat(p, &st) == nil {
			m[p] = fileID{int64(st.Ino), st.Size, st.Mtim.Nano()}
		}
	}
	return m
}

func changed(a, b map[string]fileID) int {
	n := 0
	for p, x := range b {
		if a[p] != x {
			n++
		}
	}
	return n
}
