package template

import (
	"context"
	"errors"
	"fmt"
	"strconv"
)

// ErrNoTemplate wraps the error of a template name that names none.
var ErrNoTemplate = errors.New("no such template")

// ErrWouldIssue wraps the error of a dry run that met a query which cannot
// be previewed without a side effect in Vault: a pkiCert (it issues a
// certificate) or a secret with arguments (a write), unless
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
// A dry run writes nothing and refuses (ErrWouldIssue) a query that would
// issue or write in Vault, unless Options.AllowIssue: Issued then lists
// what it did issue. Other errors are Vault's or the template's.
func (m *Manager) Render(ctx context.Context, name string, dryRun, showSecrets bool) ([]byte, error) {
	i, _, err := m.find(name)
	if err != nil {
		return nil, err
	}
	m.preview = dryRun
	defer func() { m.preview = false }()
	if !dryRun {
		if err := m.renderUnit(ctx, i); err != nil {
			return nil, err
		}
	}
	ex, err := m.complete(ctx, i, !showSecrets)
	if err != nil {
		return nil, err
	}
	return ex.out, nil
}

// Issued lists the queries a dry run sent although they issue or write
// (pkiCert, secret with arguments), as "vault.pki(pki/issue/web)".
func (m *Manager) Issued() []string { return append([]string(nil), m.issued...) }

// previewCheck returns the error of a query a dry run must not send, and
// records one it may (AllowIssue).
func (m *Manager) previewCheck(q *query) error {
	if !m.preview || (q.kind != kindPKI && q.kind != kindWrite) {
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
