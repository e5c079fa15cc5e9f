package pam

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/latchkey/latchkey/internal/writers"
)

// maxAnswer bounds what is read of one Vault answer: a verify answer is a
// few hundred bytes; a larger one is not Vault's.
const maxAnswer = 64 << 10

// The system's CA bundles and directories, where Debian, Fedora/RHEL,
// openSUSE and Alpine keep them — Go's own list, without the SSL_CERT_FILE
// and SSL_CERT_DIR overrides Go's x509.SystemCertPool honours: whoever sets
// the helper's environment must not choose whom it trusts.
var (
	systemCAFiles = []string{
		"/etc/ssl/certs/ca-certificates.crt",
		"/etc/pki/tls/certs/ca-bundle.crt",
		"/etc/ssl/ca-bundle.pem",
		"/etc/pki/tls/cacert.pem",
		"/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
		"/etc/ssl/cert.pem",
	}
	systemCADirs = []string{"/etc/ssl/certs", "/etc/pki/tls/certs"}
)

// newHTTPClient is the helper's HTTP client (httpClient), built from the
// config alone: no proxy but proxy_addr, no CA but ca_cert, ca_path or the
// system's standard paths, no redirect followed (Caller follows a
// standby's redirect itself, to configured addresses only). Nothing is read
// from the environment.
func newHTTPClient(c *Config) (*httpClient, error) {
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         c.TLSServerName,
		InsecureSkipVerify: c.TLSSkipVerify,
	}
	if !c.TLSSkipVerify && c.hasHTTPS() {
		pool, err := c.rootCAs()
		if err != nil {
			return nil, err
		}
		tc.RootCAs = pool
	}
	hc := &httpClient{tls: tc}
	if c.ProxyAddr != "" {
		u, err := url.Parse(c.ProxyAddr)
		if err != nil {
			return nil, fmt.Errorf("proxy_addr: %w", err)
		}
		hc.proxy = u
	}
	return hc, nil
}

func (c *Config) hasHTTPS() bool {
	for _, a := range c.VaultAddrs {
		if strings.HasPrefix(strings.ToLower(a), "https://") {
			return true
		}
	}
	return false
}

// rootCAs is the pool that checks Vault's certificate: ca_cert when set,
// else ca_path when set, else the system's bundle read from its standard
// paths. ca_cert alone when both are set, as vault-ssh-helper (its
// go-rootcerts) does: a CA pinned with ca_cert must not be widened by a
// ca_path left over (/etc/ssl/certs, say).
func (c *Config) rootCAs() (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if c.CACert != "" || c.CAPath != "" {
		if c.CACert != "" {
			b, err := readRegular(c.CACert, maxCASize)
			if err != nil {
				return nil, fmt.Errorf("ca_cert: %w", err)
			}
			if !pool.AppendCertsFromPEM(b) {
				return nil, fmt.Errorf("ca_cert: %s holds no PEM certificate", c.CACert)
			}
			return pool, nil
		}
		if c.caPath != nil {
			if c.caPath.n == 0 {
				return nil, fmt.Errorf("ca_path: %s holds no PEM certificate", c.CAPath)
			}
			return c.caPath.pool, nil
		}
		if c.CAPath != "" {
			if n, err := appendDir(pool, c.CAPath); err != nil {
				return nil, fmt.Errorf("ca_path: %w", err)
			} else if n == 0 {
				return nil, fmt.Errorf("ca_path: %s holds no PEM certificate", c.CAPath)
			}
		}
		return pool, nil
	}
	for _, f := range systemCAFiles {
		if b, err := readRegular(f, maxCASize); err == nil && pool.AppendCertsFromPEM(b) {
			return pool, nil
		}
	}
	n := 0
	for _, d := range systemCADirs {
		k, _ := appendDir(pool, d)
		n += k
	}
	if n == 0 {
		return nil, fmt.Errorf("no system CA certificates in %s or %s; set ca_cert",
			strings.Join(systemCAFiles, ", "), strings.Join(systemCADirs, ", "))
	}
	return pool, nil
}

// appendDir adds the PEM files of dir to pool and returns how many added
// a certificate. Entries that are not regular files are skipped.
func appendDir(pool *x509.CertPool, dir string) (int, error) {
	es, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range es {
		b, err := readRegular(filepath.Join(dir, e.Name()), maxCASize)
		if err == nil && pool.AppendCertsFromPEM(b) {
			n++
		}
	}
	return n, nil
}

// caPathPool is ca_path's certificates and how many of its files added one.
type caPathPool struct {
	pool *x509.CertPool
	n    int
}

// readCAPath reads ca_path as appendDir does (every regular file, through
// symlinks) and refuses it when someone other than root could have written
// one of those files, or a directory above the file an entry resolves to
// (beyond ca_path's own, which the caller checked): whoever may rewrite one
// can have a Vault of their own trusted, as through ca_cert. Owner and mode
// come from the descriptor each file was read through, the resolved path
// from /proc/self/fd (one readlink; EvalSymlinks on each of the hundreds of
// links of /etc/ssl/certs cost a login 10 ms of lstat calls). label begins
// the errors, which name the entry, never its content.
func readCAPath(label, dir string) (*caPathPool, error) {
	es, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", label, err)
	}
	checked := map[string]bool{}
	if own, err := filepath.EvalSymlinks(dir); err == nil {
		if own, err = filepath.Abs(own); err == nil {
			checked[own] = true
		}
	}
	p := &caPathPool{pool: x509.NewCertPool()}
	for _, e := range es {
		entry := filepath.Join(dir, e.Name())
		b, fi, real, err := readRegularResolved(entry, maxCASize)
		if err != nil {
			continue // appendDir skips it too: not trusted
		}
		if why := writers.Foreign(fi); why != "" {
			return nil, fmt.Errorf("%s: %s %s, who could then have a Vault of their own trusted; refused (%s)", label, entry, why, writers.Fix(fi, entry))
		}
		if d := filepath.Dir(real); !checked[d] {
			checked[d] = true
			if err := checkDirs(label+": "+entry, real, "put another CA in its place"); err != nil {
				return nil, err
			}
		}
		if p.pool.AppendCertsFromPEM(b) {
			p.n++
		}
	}
	return p, nil
}

// origin is an address's scheme://host:port, lower case, with the default
// port made explicit, for comparing a redirect's target with the config.
func origin(u *url.URL) string {
	scheme := strings.ToLower(u.Scheme)
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[scheme]
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// allowedRedirect reports whether loc, a redirect's target for a request to
// reqURL, is a configured Vault address with the same request path: a
// standby node sends the client to the active node, never elsewhere.
func (c *Config) allowedRedirect(reqURL, loc *url.URL) bool {
	if loc.User != nil || loc.RequestURI() != reqURL.RequestURI() {
		return false
	}
	for _, a := range c.VaultAddrs {
		u, err := url.Parse(a)
		if err == nil && origin(u) == origin(loc) {
			return true
		}
	}
	return false
}

// post sends body to addr's /v1/path, following one standby redirect to a
// configured address. It returns the final response's status, its body (at
// most maxAnswer bytes, else an error), and the address that gave it.
// A non-nil err with answered false means no answer came (connection, TLS,
// deadline); answered true means an address answered, but not usably.
func (c *Caller) post(ctx context.Context, hc *httpClient, addr, path string, body []byte) (status int, answer []byte, from string, answered bool, err error) {
	target, err := url.Parse(strings.TrimRight(addr, "/") + "/v1/" + path)
	if err != nil {
		return 0, nil, addr, false, err
	}
	from = addr
	for hop := 0; ; hop++ {
		// Vault's SSRF protection asks for X-Vault-Request on every request.
		req := &request{url: target, body: body, header: [][2]string{{"Content-Type", "application/json"}, {"X-Vault-Request", "true"}}}
		if c.Config.Namespace != "" {
			req.header = append(req.header, [2]string{"X-Vault-Namespace", c.Config.Namespace})
		}
		if c.Token != "" {
			req.header = append(req.header, [2]string{"X-Vault-Token", c.Token})
		}
		resp, err := hc.Do(ctx, req)
		if err != nil {
			return 0, nil, from, false, err
		}
		answer, rerr := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
		resp.Body.Close()
		switch resp.StatusCode {
		case statusMovedPermanently, statusFound, statusTemporaryRedirect:
			// What Vault's api client follows: a standby node's answer.
			loc, lerr := target.Parse(resp.Header("Location"))
			switch {
			case lerr != nil || resp.Header("Location") == "":
				return resp.StatusCode, nil, from, true, fmt.Errorf("%w: redirect (%d) without a usable Location", ErrVault, resp.StatusCode)
			case hop > 0:
				return resp.StatusCode, nil, from, true, fmt.Errorf("%w: a second redirect (%d), refused", ErrVault, resp.StatusCode)
			case !c.Config.allowedRedirect(target, loc):
				return resp.StatusCode, nil, from, true, fmt.Errorf("%w: redirect (%d) to %s, which is not a configured vault address, refused",
					ErrVault, resp.StatusCode, quoteValue(redactURL(loc)))
			}
			target = loc
			from = origin(loc)
			for _, a := range c.Config.VaultAddrs {
				if u, err := url.Parse(a); err == nil && origin(u) == from {
					from = a
					break
				}
			}
			continue
		}
		if rerr != nil {
			// The status line came, so the request reached Vault. Unless it
			// is a 503 (sealed, no active node: the SSH engine never saw it)
			// the answer is final although its body was cut off: Vault may
			// have deleted the OTP already, and a 500's notActive cannot be
			// told without the body. Sending the OTP on would hand it to a
			// second server.
			final := resp.StatusCode != statusServiceUnavailable
			return resp.StatusCode, nil, from, final, fmt.Errorf("%w: read answer (%d): %w", ErrVault, resp.StatusCode, rerr)
		}
		if len(answer) > maxAnswer {
			return resp.StatusCode, nil, from, true, fmt.Errorf("%w: answer (%d) larger than %d bytes, refused", ErrVault, resp.StatusCode, maxAnswer)
		}
		return resp.StatusCode, answer, from, true, nil
	}
}

// redactURL is u without userinfo, query or fragment, for messages.
func redactURL(u *url.URL) string {
	v := *u
	v.User, v.RawQuery, v.Fragment = nil, "", ""
	return v.String()
}

// decodeData reads a 200 answer strictly: one JSON object, nothing after it,
// no "errors", and "data" an object. It returns the data and the request id.
func decodeData(b []byte) (map[string]any, string, error) {
	var top struct {
		RequestID string           `json:"request_id"`
		Data      json.RawMessage  `json:"data"`
		Errors    *json.RawMessage `json:"errors"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&top); err != nil {
		return nil, "", fmt.Errorf("answer is not a JSON object: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, top.RequestID, errors.New("answer has content after its JSON object")
	}
	if top.Errors != nil {
		return nil, top.RequestID, errors.New("answer holds both data and errors")
	}
	d := bytes.TrimSpace(top.Data)
	if len(d) == 0 || string(d) == "null" {
		return nil, top.RequestID, errors.New("no data")
	}
	if d[0] != '{' {
		return nil, top.RequestID, errors.New("data is not a JSON object")
	}
	var data map[string]any
	if err := json.Unmarshal(d, &data); err != nil {
		return nil, top.RequestID, fmt.Errorf("data: %v", err)
	}
	return data, top.RequestID, nil
}

// isVaultError reports whether b is Vault's error answer: a JSON object
// whose "errors" is a list of strings, not empty.
func isVaultError(b []byte) bool {
	var e struct {
		Errors []string `json:"errors"`
	}
	return json.Unmarshal(b, &e) == nil && len(e.Errors) > 0
}

// vaultErrors reads Vault's {"errors": [...]} for a message: at most three,
// each cut at 200 bytes and quoted when it holds anything unprintable.
func vaultErrors(b []byte) string {
	var e struct {
		Errors []string `json:"errors"`
	}
	if json.Unmarshal(b, &e) != nil || len(e.Errors) == 0 {
		return "no message"
	}
	if len(e.Errors) > 3 {
		e.Errors = e.Errors[:3]
	}
	for i, s := range e.Errors {
		if len(s) > 200 {
			s = s[:200] + "..."
		}
		e.Errors[i] = quoteValue(s)
	}
	return strings.Join(e.Errors, "; ")
}
