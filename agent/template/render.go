package template

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// ErrNoTemplate wraps the error of a template name that names none.
var ErrNoTemplate = errors.New("no such template")

// ErrWouldIssue wraps the error of a dry run that met a query which cannot
// be previewed without a side effect in Vault: a pkiCert (it issues a
// certificate), a secret with arguments (a write), or a read or list of a
// path on a mount not known to be static (a database, aws, identity, totp
// ... mount issues a credential, often a lease, at a read), unless
// Options.AllowIssue.
var ErrWouldIssue = errors.New("a dry run does not issue or write")

// Find returns nil when name names a template (see Render), and an error
// wrapping ErrNoTemplate, listing the templates, when it does not. It
// contacts nothing: render checks the name before logging in.
func (m *Manager) Find(name string) error {
	_, _, err := m.find(name)
	return err
}

// Render renders the template called name — its destination, its source,
// or its 1-based position in the config — and returns the output. Secret
// values are masked in what it returns unless showSecrets. Without dryRun
// the destination is also written (and its command run) as the agent would.
// A dry run writes nothing and refuses (ErrWouldIssue, naming the
// template) a query that would or might issue or write in Vault — a read
// or list is sent only to a mount Vault says is static (see staticMount)
// — unless Options.AllowIssue: Issued then lists what it did send, and
// Leases the leases it obtained (the caller revokes them). Other errors
// are Vault's or the template's.
func (m *Manager) Render(ctx context.Context, name string, dryRun, showSecrets bool) ([]byte, error) {
	i, u, err := m.find(name)
	if err != nil {
		return nil, err
	}
	if dryRun {
		m.preview = &preview{}
		defer func() { m.preview = nil }()
	}
	if !dryRun {
		if err := m.renderUnit(ctx, i); err != nil {
			return nil, err
		}
	}
	ex, err := m.complete(ctx, i, !showSecrets)
	if err != nil {
		if errors.Is(err, ErrWouldIssue) {
			err = fmt.Errorf("template %s: %w", u.name, err)
		}
		return nil, err
	}
	return ex.out, nil
}

// Issued lists the queries a dry run sent although they issue, write or
// may issue (pkiCert, secret with arguments, a read of a mount not known to
// be static), as "vault.pki(pki/issue/web)" or "vault.read(db/creds/app)".
func (m *Manager) Issued() []string { return append([]string(nil), m.issued...) }

// Leases returns the ids of the leases held by what m fetched, sorted: for
// the manager of one render, what that render obtained. A lease id begins
// with the path that issued it (database/creds/app/...); it is not a
// secret. Revoking the token that obtained them revokes them too.
func (m *Manager) Leases() []string {
	var ids []string
	for _, r := range m.brain.m {
		if r.err == nil && r.leaseID != "" {
			ids = append(ids, r.leaseID)
		}
	}
	sort.Strings(ids)
	return ids
}

// staticTypes are the mount types whose reads and lists issue nothing and
// change nothing: a dry run sends those without -issue. Every other type
// is refused, as is a mount Vault would not describe: database, aws,
// consul, nomad, rabbitmq, ... create a credential and a lease at a read
// of creds/<role>; identity signs a token at identity/oidc/token/<role>;
// totp makes a code; sys and auth paths are not templates' business in a
// dry run either (the system mount's reads are many and not all
// documented side-effect free).
var staticTypes = map[string]bool{"kv": true, "generic": true, "cubbyhole": true, "ns_cubbyhole": true}

// preview is a dry run's state while Render runs: the static mounts found
// so far (by path, "secret/"), so that each mount is asked about once.
// previewCheck runs before a round's fetches start, one query at a time,
// so it needs no lock.
type preview struct {
	static []string
}

// staticMount asks Vault (GET sys/internal/ui/mounts/<path>, which Vault's
// default policy allows for any mount the token has access to) which mount
// q's path is on, and returns "" when it is of a static type, or else why
// a dry run must not send q. It fails closed: a mount Vault will not
// describe (a refusal, an error, an older Vault) is not known to be static.
func (m *Manager) staticMount(ctx context.Context, p *preview, q *query) string {
	for _, prefix := range p.static {
		if strings.HasPrefix(q.path+"/", prefix) {
			return ""
		}
	}
	c, err := m.o.Clients.Client()
	if err != nil {
		return fmt.Sprintf("Vault could not be asked which mount %s is on (%v)", q.path, err)
	}
	r, err := c.Read(ctx, "sys/internal/ui/mounts/"+q.path)
	if err != nil {
		return fmt.Sprintf("Vault would not say which mount %s is on (%v), so it is not known to be static", q.path, err)
	}
	if r == nil {
		return fmt.Sprintf("Vault would not say which mount %s is on (no answer), so it is not known to be static", q.path)
	}
	typ, _ := r.Data["type"].(string)
	mount, _ := r.Data["path"].(string)
	if !staticTypes[typ] {
		if typ == "" {
			typ = "unknown"
		}
		return fmt.Sprintf("%s is on a mount of type %q (%s), whose reads may issue a credential; a dry run reads only kv and cubbyhole mounts", q.path, typ, mount)
	}
	if mount != "" && strings.HasPrefix(q.path+"/", mount) {
		p.static = append(p.static, mount)
	}
	return ""
}

// previewCheck returns the error of a query a dry run must not send, and
// records one it may (AllowIssue). Outside a dry run it returns nil.
func (m *Manager) previewCheck(ctx context.Context, q *query) error {
	p := m.preview
	if p == nil {
		return nil
	}
	if q.kind == kindRead || q.kind == kindList {
		why := m.staticMount(ctx, p, q)
		if why == "" {
			return nil
		}
		if !m.o.AllowIssue {
			return fmt.Errorf("%w: the template reads %s: %s; add -issue to read it in a dry run (its leases are then revoked)", ErrWouldIssue, q, why)
		}
		m.issued = append(m.issued, q.String())
		return nil
	}
	if q.kind == kindPKI {
		// A still-valid certificate at the destination is reused, not
		// issued: that dry run has no side effect.
		now := m.o.Clock.Now()
		if _, cert, ok := fromDisk(q.dest, now); ok && now.Before(renewAt(cert.NotBefore, cert.NotAfter, m.mounts.threshold)) {
			return nil
		}
	}
	if !m.o.AllowIssue {
		what := "writes to Vault"
		if q.kind == kindPKI {
			what = "issues a certificate"
		}
		return fmt.Errorf("%w: the template %s (%s); add -issue to do so in a dry run", ErrWouldIssue, what, q)
	}
	m.issued = append(m.issued, q.String())
	return nil
}

func (m *Manager) find(name string) (int, *unit, error) {
	for i, u := range m.units {
		if name == u.cfg.Destination || (u.cfg.Source != "" && name == u.cfg.Source) {
			return i, u, nil
		}
	}
	if n, err := strconv.Atoi(name); err == nil && n >= 1 && n <= len(m.units) {
		return n - 1, m.units[n-1], nil
	}
	var names []string
	for _, u := range m.units {
		names = append(names, u.cfg.Destination)
	}
	return 0, nil, fmt.Errorf("%w %q (templates: %q, or their number)", ErrNoTemplate, name, names)
}
