// Package vaultclient is the agent's Vault client (Client, over net/http
// and encoding/json) and the Config it is built from, which the agent fills
// from its config file, the VAULT_* environment and its flags, with the
// precedence flag > env > file.
//
// Only FromEnv reads the environment: the Config New is given is the whole
// truth, so a stray variable in a unit file (VAULT_TOKEN, VAULT_AGENT_ADDR,
// VAULT_HEADERS, ...) cannot redirect the agent.
package vaultclient

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/latchkey/latchkey/internal/atomicfile"
)

// The VAULT_* variables FromEnv reads, as Vault's own tools name them.
const (
	EnvAddress       = "VAULT_ADDR"
	EnvCACert        = "VAULT_CACERT"
	EnvCAPath        = "VAULT_CAPATH"
	EnvClientCert    = "VAULT_CLIENT_CERT"
	EnvClientKey     = "VAULT_CLIENT_KEY"
	EnvTLSServerName = "VAULT_TLS_SERVER_NAME"
	EnvSkipVerify    = "VAULT_SKIP_VERIFY"
	EnvNamespace     = "VAULT_NAMESPACE"
	EnvClientTimeout = "VAULT_CLIENT_TIMEOUT"
	EnvMaxRetries    = "VAULT_MAX_RETRIES"
)

// Config is what a Vault client needs to reach a server. Zero fields are
// unset; pointer fields tell unset from false/zero so that Merge can layer
// file, environment and flags.
type Config struct {
	Address string
	// Addresses are servers of one cluster tried in order when one gives
	// no answer (see Failover); Address, when set, is tried first. Unset
	// (nil) in a layer keeps the lower layer's list.
	Addresses     []string
	CACert        string // PEM file with the CA(s) to trust
	CAPath        string // directory of PEM files to trust
	ClientCert    string
	ClientKey     string
	TLSServerName string
	TLSSkipVerify *bool
	Namespace     string
	// Timeout bounds one HTTP request (default 60s), its retries and
	// redirect included.
	Timeout time.Duration
	// MaxRetries is how often a failed request is retried (default 2).
	MaxRetries *int
}

// Bool returns a pointer to b, for Config literals.
func Bool(b bool) *bool { return &b }

// Int returns a pointer to i, for Config literals.
func Int(i int) *int { return &i }

// Merge returns c with every field that is set in o replacing c's.
// Layer it as file.Merge(env).Merge(flags).
func (c Config) Merge(o Config) Config {
	set := func(dst *string, src string) {
		if src != "" {
			*dst = src
		}
	}
	set(&c.Address, o.Address)
	set(&c.CACert, o.CACert)
	set(&c.CAPath, o.CAPath)
	set(&c.ClientCert, o.ClientCert)
	set(&c.ClientKey, o.ClientKey)
	set(&c.TLSServerName, o.TLSServerName)
	set(&c.Namespace, o.Namespace)
	if o.Addresses != nil {
		c.Addresses = o.Addresses
	}
	if o.TLSSkipVerify != nil {
		c.TLSSkipVerify = o.TLSSkipVerify
	}
	if o.Timeout != 0 {
		c.Timeout = o.Timeout
	}
	if o.MaxRetries != nil {
		c.MaxRetries = o.MaxRetries
	}
	return c
}

// FromEnv reads the VAULT_* variables Vault's own tools honour:
// VAULT_ADDR, VAULT_CACERT, VAULT_CAPATH, VAULT_CLIENT_CERT,
// VAULT_CLIENT_KEY, VAULT_TLS_SERVER_NAME, VAULT_SKIP_VERIFY,
// VAULT_NAMESPACE, VAULT_CLIENT_TIMEOUT and VAULT_MAX_RETRIES.
// getenv is os.Getenv in production. An unparsable value is an error that
// names the variable.
func FromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		Address:       getenv(EnvAddress),
		CACert:        getenv(EnvCACert),
		CAPath:        getenv(EnvCAPath),
		ClientCert:    getenv(EnvClientCert),
		ClientKey:     getenv(EnvClientKey),
		TLSServerName: getenv(EnvTLSServerName),
		Namespace:     getenv(EnvNamespace),
	}
	if v := getenv(EnvSkipVerify); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return Config{}, fmt.Errorf("environment %s=%q: want true or false", EnvSkipVerify, v)
		}
		c.TLSSkipVerify = &b
	}
	if v := getenv(EnvClientTimeout); v != "" {
		d, err := parseDuration(v)
		if err != nil {
			return Config{}, fmt.Errorf("environment %s=%q: %w", EnvClientTimeout, v, err)
		}
		c.Timeout = d
	}
	if v := getenv(EnvMaxRetries); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return Config{}, fmt.Errorf("environment %s=%q: want a whole number", EnvMaxRetries, v)
		}
		c.MaxRetries = &n
	}
	return c, nil
}

// parseDuration accepts "30s" or a bare number of seconds, like Vault.
func parseDuration(s string) (time.Duration, error) {
	if n, err := strconv.Atoi(s); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("want a duration such as 30s")
	}
	return d, nil
}

// Validate checks what can be checked without a network: an address that
// is an absolute http(s) URL, and a client certificate given with its key.
func (c Config) Validate() error {
	addrs := c.addrs()
	if len(addrs) == 0 {
		return fmt.Errorf("vault address is empty")
	}
	for _, a := range addrs {
		u, err := url.Parse(a)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return fmt.Errorf("vault address %q: want http(s)://host[:port]", a)
		}
	}
	if (c.ClientCert == "") != (c.ClientKey == "") {
		return fmt.Errorf("client certificate and client key must be given together")
	}
	return nil
}

// addrs returns Address then Addresses, without repeats or empty strings.
func (c Config) addrs() []string {
	var out []string
	seen := map[string]bool{}
	for _, a := range append([]string{c.Address}, c.Addresses...) {
		if k := sameServer(a); a != "" && !seen[k] {
			seen[k] = true
			out = append(out, a)
		}
	}
	return out
}

// sameServer is a's key among the addresses: one server written two ways
// (VAULT_ADDR's "https://vault-1:8200/" and addresses' "https://vault-1:8200",
// a default port written out, a host's case) is one, not a second address
// that takes its share of the request's time when the server is dead.
func sameServer(a string) string {
	u, err := url.Parse(a)
	if err != nil || u.Host == "" {
		return a
	}
	scheme, host, port := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[scheme]
	}
	return scheme + "://" + net.JoinHostPort(host, port) + strings.TrimRight(u.Path, "/")
}

// New returns a client for c, holding no token. Nothing but c decides where
// it connects and whom it trusts (see the package comment). It does not
// contact the server.
func New(c Config) (*Client, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	tc, err := c.tlsConfig()
	if err != nil {
		return nil, fmt.Errorf("vault client TLS: %w", err)
	}
	// What the api package used (cleanhttp's pooled transport), HTTP/2 by
	// net/http's own implementation.
	transport := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   30 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   runtime.GOMAXPROCS(0) + 1,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: 1 * time.Second,
		TLSClientConfig:       tc,
	}
	addrs := c.addrs()
	cl := &Client{
		transport:  transport,
		timeout:    60 * time.Second,
		maxRetries: 2,
		minWait:    time.Second,
		maxWait:    1500 * time.Millisecond,
		namespace:  c.Namespace,
	}
	if c.Timeout > 0 {
		cl.timeout = c.Timeout
	}
	// An HTTP/2 connection carries every request to its host, and one
	// whose node died silently (a load balancer black-holing its flows, a
	// partition) would take each of them into a timeout until TCP gives
	// up, a quarter of an hour. A ping after half a timeout without a
	// frame, unanswered for the other half, closes it within about one
	// timeout, as a timed-out request closes an HTTP/1.1 connection.
	half := max(cl.timeout/2, time.Second)
	transport.HTTP2 = &http.HTTP2Config{SendPingTimeout: half, PingTimeout: half}
	if c.MaxRetries != nil {
		cl.maxRetries = *c.MaxRetries
	}
	var rt http.RoundTripper = transport
	if len(addrs) > 1 {
		// Each address gets its share of the request's time, so that a
		// hung node leaves time for the next.
		f, err := NewFailover(addrs, cl.timeout/time.Duration(len(addrs)), transport)
		if err != nil {
			return nil, err
		}
		rt = f
	}
	cl.hc = &http.Client{
		Transport: rt,
		// Vault's redirects (a standby naming the active node) are followed
		// by Client.do, which sends the body again.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	cl.addr, err = url.Parse(addrs[0])
	if err != nil {
		return nil, fmt.Errorf("vault address %q: %w", addrs[0], err)
	}
	return cl, nil
}

// tlsConfig is c's TLS: its CAs (CACert, else CAPath, else the system's),
// client certificate, server name and verification.
func (c Config) tlsConfig() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.TLSServerName}
	tc.InsecureSkipVerify = c.TLSSkipVerify != nil && *c.TLSSkipVerify
	switch {
	case c.CACert != "":
		pool := x509.NewCertPool()
		if err := appendPEM(pool, c.CACert); err != nil {
			return nil, err
		}
		tc.RootCAs = pool
	case c.CAPath != "":
		pool := x509.NewCertPool()
		err := filepath.WalkDir(c.CAPath, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				return nil
			}
			return appendPEM(pool, p)
		})
		if err != nil {
			return nil, fmt.Errorf("CA path %s: %w", c.CAPath, err)
		}
		tc.RootCAs = pool
	}
	if c.ClientCert != "" {
		kp := &keyPair{certFile: c.ClientCert, keyFile: c.ClientKey}
		if err := kp.load(); err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		// Sent whatever CAs the server names, as the api package did.
		tc.GetClientCertificate = kp.get
	}
	return tc, nil
}

// keyPair is the client certificate, read again at a handshake once either
// file changed: a certificate rotated on disk (short-lived ones renewed by
// a cron job or another agent) is sent from the next connection on,
// instead of the one read at the start until it expires and Vault refuses
// every new connection.
type keyPair struct {
	certFile, keyFile string

	mu    sync.Mutex
	cert  *tls.Certificate
	stamp [2]fileStamp // of certFile and keyFile when cert was read
}

// fileStamp tells a file replaced or rewritten from the one read before.
type fileStamp struct {
	dev, ino uint64
	size     int64
	mtime    time.Time
}

func stampOf(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	st := fileStamp{size: fi.Size(), mtime: fi.ModTime()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.dev, st.ino = uint64(sys.Dev), sys.Ino
	}
	return st, nil
}

// load reads both files when they changed since the last load; it leaves
// the pair it had when they do not make a pair (yet).
func (kp *keyPair) load() error {
	kp.mu.Lock()
	defer kp.mu.Unlock()
	var stamp [2]fileStamp
	for i, f := range []string{kp.certFile, kp.keyFile} {
		st, err := stampOf(f)
		if err != nil {
			return err
		}
		stamp[i] = st
	}
	if kp.cert != nil && stamp == kp.stamp {
		return nil
	}
	// Regular files only: a FIFO would block the start (and validate).
	certPEM, err := atomicfile.ReadRegular(kp.certFile)
	if err != nil {
		return err
	}
	keyPEM, err := atomicfile.ReadRegular(kp.keyFile)
	if err != nil {
		return err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return err
	}
	kp.cert, kp.stamp = &cert, stamp
	return nil
}

// get is tls.Config.GetClientCertificate: the files' pair, or the last
// whole one while they do not make one — a rotation writes its two files
// one after the other, or one went missing for a moment.
func (kp *keyPair) get(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	kp.load()
	kp.mu.Lock()
	defer kp.mu.Unlock()
	return kp.cert, nil
}

// appendPEM adds the certificates of a PEM file to pool; a file without
// any is an error.
func appendPEM(pool *x509.CertPool, file string) error {
	// A regular file only: a FIFO would block the start (and validate).
	b, err := atomicfile.ReadRegular(file)
	if err != nil {
		return fmt.Errorf("CA certificate: %w", err)
	}
	if !pool.AppendCertsFromPEM(b) {
		return fmt.Errorf("CA certificate %s: no PEM certificate in it", file)
	}
	return nil
}

// LimitConnsPerHost bounds the connections client (and every clone of it,
// which shares its transport) opens to one host: template_config {
// max_connections_per_host }. n <= 0 leaves the transport as it is.
func LimitConnsPerHost(client *Client, n int) {
	if n <= 0 || client.transport == nil {
		return
	}
	client.transport.MaxConnsPerHost = n
}

// MaxConnsPerHost returns the bound LimitConnsPerHost set (0: none).
func (c *Client) MaxConnsPerHost() int {
	if c.transport == nil {
		return 0
	}
	return c.transport.MaxConnsPerHost
}

// Timeout returns the bound of one call, its retries included.
func (c *Client) Timeout() time.Duration { return c.timeout }

// Failover returns the client's failover across vault { addresses }, nil
// when it has one address.
func (c *Client) Failover() *Failover {
	f, _ := c.hc.Transport.(*Failover)
	return f
}
