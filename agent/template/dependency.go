package template

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/latchkey/latchkey/internal/vaultclient"
)

// Secret is what `secret` returns: consul-template's dependency.Secret, so
// that templates written for Vault Agent see the same fields.
type Secret struct {
	RequestID     string
	LeaseID       string
	LeaseDuration int
	Renewable     bool
	Data          map[string]any
	Warnings      []string
}

func toSecret(s *vaultclient.Secret) *Secret {
	if s == nil {
		return &Secret{Data: map[string]any{}}
	}
	data := s.Data
	if data == nil {
		data = map[string]any{}
	}
	return &Secret{RequestID: s.RequestID, LeaseID: s.LeaseID, LeaseDuration: s.LeaseDuration,
		Renewable: s.Renewable, Data: data, Warnings: s.Warnings}
}

// kind is a query's kind.
type kind int

const (
	kindRead kind = iota
	kindWrite
	kindList
	kindPKI
)

// query is one distinct Vault request a template needs; its key identifies
// it across templates so each is fetched once.
type query struct {
	kind  kind
	path  string
	data  map[string]any // write and pkiCert arguments
	query url.Values     // read query string (?version=2)
	key   string
	// dest is the pkiCert template's destination (a still-valid
	// certificate there is reused after a restart).
	dest string
}

func newQuery(k kind, raw string, args []string, dest string) (*query, error) {
	raw = strings.Trim(strings.TrimSpace(raw), "/")
	if raw == "" {
		return nil, fmt.Errorf("empty Vault path")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("vault path %q: %w", raw, err)
	}
	q := &query{kind: k, path: u.Path, query: u.Query()}
	if len(args) > 0 {
		q.data = map[string]any{}
		for _, a := range args {
			if a == "" {
				continue
			}
			parts := strings.SplitN(a, "=", 2)
			if len(parts) != 2 {
				return nil, fmt.Errorf("not k=v pair %q", a)
			}
			q.data[strings.TrimSpace(parts[0])] = strings.TrimSpace(parts[1])
		}
		if k == kindRead {
			q.kind = kindWrite
		}
	}
	names := make([]string, 0, len(q.data))
	for n := range q.data {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	fmt.Fprintf(&b, "%d:%s?%s", q.kind, q.path, q.query.Encode())
	for _, n := range names {
		fmt.Fprintf(&b, "&%s=%v", n, q.data[n])
	}
	if k == kindPKI {
		b.WriteString("#" + dest)
		q.dest = dest
	}
	q.key = b.String()
	return q, nil
}

func (q *query) String() string {
	switch q.kind {
	case kindWrite:
		return "vault.write(" + q.path + ")"
	case kindList:
		return "vault.list(" + q.path + ")"
	case kindPKI:
		return "vault.pki(" + q.path + ")"
	}
	return "vault.read(" + q.path + ")"
}

// result is a fetched query: its value and when to look again.
type result struct {
	value   any
	err     error
	fetched time.Time
	// leaseID, renewable and lease describe a Vault lease; notAfter a
	// certificate's end of life.
	leaseID   string
	renewable bool
	lease     time.Duration
	notBefore time.Time
	notAfter  time.Time
	// ttl is a static secret's own refresh hint (KV "ttl" field).
	ttl time.Duration
	// login is the generation of the token that fetched it (see Logins);
	// orphaned is set once that token was given up for a newer one, so a
	// lease it holds is fetched again rather than renewed.
	login    uint64
	orphaned bool
}

// mounts caches the KV version of mounts, looked up with
// sys/internal/ui/mounts as consul-template does; it also carries the
// renewal threshold pkiCert needs.
// A lookup holds mu across its request: the concurrent fetches of one
// render round that share a mount wait for the first one's answer instead
// of each asking Vault.
type mounts struct {
	mu        sync.Mutex
	m         map[string]kvMount
	threshold float64
}

type kvMount struct {
	path string
	v2   bool
}

func (ms *mounts) lookup(ctx context.Context, c *vaultclient.Client, p string) (kvMount, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	for prefix, m := range ms.m {
		if strings.HasPrefix(p+"/", prefix) {
			return m, nil
		}
	}
	r, err := c.Read(ctx, "sys/internal/ui/mounts/"+p)
	if err != nil {
		var re *vaultclient.ResponseError
		if errors.As(err, &re) && re.StatusCode == 404 {
			return kvMount{}, nil
		}
		return kvMount{}, err
	}
	if r == nil {
		return kvMount{}, nil
	}
	m := kvMount{}
	m.path, _ = r.Data["path"].(string)
	if opts, ok := r.Data["options"].(map[string]any); ok {
		if v, _ := opts["version"].(string); v == "2" {
			m.v2 = true
		}
	}
	if t, _ := r.Data["type"].(string); t != "kv" && t != "generic" {
		m.v2 = false
	}
	if m.path != "" {
		if ms.m == nil {
			ms.m = map[string]kvMount{}
		}
		ms.m[m.path] = m
	}
	return m, nil
}

// shimKVv2 inserts "data/" (or "metadata/" for lists) after a KV v2 mount,
// unless the path already names data/, metadata/ or subkeys/ — the rule of
// consul-template's shimKVv2Path.
func shimKVv2(raw, mount, insert string) string {
	mount = strings.TrimSuffix(mount, "/")
	if raw == mount {
		return path.Join(mount, insert)
	}
	p := strings.TrimPrefix(raw, mount+"/")
	if strings.HasPrefix(p, "data/") || strings.HasPrefix(p, "metadata/") || strings.HasPrefix(p, "subkeys/") {
		return raw
	}
	return path.Join(mount, insert, p)
}

// deletedKVv2 reports a KV v2 version whose deletion time has passed.
func deletedKVv2(s *vaultclient.Secret, now time.Time) bool {
	md, ok := s.Data["metadata"].(map[string]any)
	if !ok {
		return false
	}
	dt, ok := md["deletion_time"].(string)
	if !ok {
		return false
	}
	t, err := time.Parse(time.RFC3339, dt)
	return err == nil && now.After(t)
}

// fetch performs q with c at now (the manager's clock); first is true for
// a query never fetched in this process (pkiCert may then reuse the
// certificate on disk).
func (q *query) fetch(ctx context.Context, c *vaultclient.Client, ms *mounts, first bool, now time.Time) result {
	switch q.kind {
	case kindRead:
		p := q.path
		if m, err := ms.lookup(ctx, c, q.path); err == nil && m.v2 {
			p = shimKVv2(q.path, m.path, "data")
		}
		s, err := c.ReadWithData(ctx, p, q.query)
		if err != nil {
			return result{err: fmt.Errorf("%s: %w", q, err), fetched: now}
		}
		if s == nil || deletedKVv2(s, now) {
			return result{err: fmt.Errorf("%s: no secret exists at %s", q, p), fetched: now}
		}
		r := leaseResult(s, now)
		if ttl, ok := s.Data["ttl"].(string); ok && s.LeaseID == "" {
			if d, err := time.ParseDuration(ttl); err == nil && d > 0 {
				r.ttl = d
			}
		}
		return r
	case kindWrite:
		s, err := c.Write(ctx, q.path, q.data)
		if err != nil {
			return result{err: fmt.Errorf("%s: %w", q, err), fetched: now}
		}
		r := leaseResult(s, now)
		// A write that issues a certificate (secret "pki/issue/web" ...)
		// is refreshed by the certificate's life, as pkiCert is, not by
		// static_secret_render_interval: each refresh issues another one.
		if s != nil && r.leaseID == "" {
			if pem, ok := s.Data["certificate"].(string); ok {
				if cert, err := parseCert(pem); err == nil {
					r.notBefore, r.notAfter = cert.NotBefore, cert.NotAfter
				}
			}
		}
		return r
	case kindList:
		p := q.path
		if m, err := ms.lookup(ctx, c, q.path); err == nil && m.v2 {
			p = shimKVv2(q.path, m.path, "metadata")
		}
		s, err := c.List(ctx, p)
		if err != nil {
			return result{err: fmt.Errorf("%s: %w", q, err), fetched: now}
		}
		keys := []string{}
		if s != nil {
			if raw, ok := s.Data["keys"].([]any); ok {
				for _, k := range raw {
					if ks, ok := k.(string); ok {
						keys = append(keys, ks)
					}
				}
			}
		}
		sort.Strings(keys)
		return result{value: keys, fetched: now}
	case kindPKI:
		return q.fetchPKI(ctx, c, now, ms.threshold, first)
	}
	return result{err: fmt.Errorf("unknown query kind"), fetched: now}
}

func leaseResult(s *vaultclient.Secret, now time.Time) result {
	r := result{value: toSecret(s), fetched: now}
	if s != nil {
		r.leaseID, r.renewable = s.LeaseID, s.Renewable
		r.lease = time.Duration(s.LeaseDuration) * time.Second
	}
	return r
}
