// Package vaultclient builds github.com/hashicorp/vault/api clients from one
// Config that both binaries fill from their config file, the VAULT_*
// environment and their flags, with the precedence flag > env > file.
//
// The api package reads the environment on its own (VAULT_TOKEN,
// VAULT_AGENT_ADDR, VAULT_NAMESPACE, ...). New undoes all of that, so the
// Config it is given is the whole truth: a stray variable in a unit file
// cannot redirect the helper or the agent.
package vaultclient

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/hashicorp/vault/api"
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
	// Timeout bounds one HTTP request (default 60s, as the api package).
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
		Address:       getenv(api.EnvVaultAddress),
		CACert:        getenv(api.EnvVaultCACert),
		CAPath:        getenv(api.EnvVaultCAPath),
		ClientCert:    getenv(api.EnvVaultClientCert),
		ClientKey:     getenv(api.EnvVaultClientKey),
		TLSServerName: getenv(api.EnvVaultTLSServerName),
		Namespace:     getenv(api.EnvVaultNamespace),
	}
	if v := getenv(api.EnvVaultSkipVerify); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return Config{}, fmt.Errorf("environment %s=%q: want true or false", api.EnvVaultSkipVerify, v)
		}
		c.TLSSkipVerify = &b
	}
	if v := getenv(api.EnvVaultClientTimeout); v != "" {
		d, err := parseDuration(v)
		if err != nil {
			return Config{}, fmt.Errorf("environment %s=%q: %w", api.EnvVaultClientTimeout, v, err)
		}
		c.Timeout = d
	}
	if v := getenv(api.EnvVaultMaxRetries); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return Config{}, fmt.Errorf("environment %s=%q: want a whole number", api.EnvVaultMaxRetries, v)
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
		if a != "" && !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	return out
}

// New returns a client for c, holding no token. Nothing but c decides where
// it connects and whom it trusts (see the package comment). It does not
// contact the server.
func New(c Config) (*api.Client, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	ac := api.DefaultConfig()
	// Forget what api.DefaultConfig took from the environment, including a
	// parse error of a VAULT_* variable we do not use.
	ac.Error = nil
	ac.HttpClient.CheckRedirect = func(*http.Request, []*http.Request) error {
		// The api client follows Vault's redirects itself (standby nodes).
		return http.ErrUseLastResponse
	}
	ac.AgentAddress = ""
	ac.SRVLookup = false
	ac.Limiter = nil
	ac.DisableRedirects = false
	addrs := c.addrs()
	ac.Address = addrs[0]
	ac.Timeout = 60 * time.Second
	if c.Timeout > 0 {
		ac.Timeout = c.Timeout
	}
	ac.MaxRetries = 2
	if c.MaxRetries != nil {
		ac.MaxRetries = *c.MaxRetries
	}
	transport, ok := ac.HttpClient.Transport.(*http.Transport)
	if !ok {
		return nil, fmt.Errorf("vault client: unexpected transport %T", ac.HttpClient.Transport)
	}
	transport.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	transport.Proxy = http.ProxyFromEnvironment
	tc := &api.TLSConfig{
		CACert:        c.CACert,
		CAPath:        c.CAPath,
		ClientCert:    c.ClientCert,
		ClientKey:     c.ClientKey,
		TLSServerName: c.TLSServerName,
		Insecure:      c.TLSSkipVerify != nil && *c.TLSSkipVerify,
	}
	if err := ac.ConfigureTLS(tc); err != nil {
		return nil, fmt.Errorf("vault client TLS: %w", err)
	}
	if len(addrs) > 1 {
		// Each address gets its share of the request's time, so that a
		// hung node leaves time for the next.
		f, err := NewFailover(addrs, ac.Timeout/time.Duration(len(addrs)), transport)
		if err != nil {
			return nil, err
		}
		ac.HttpClient.Transport = f
	}
	client, err := api.NewClient(ac)
	if err != nil {
		// api.NewClient re-reads VAULT_* and refuses malformed values.
		return nil, fmt.Errorf("vault client (check the VAULT_* environment variables): %w", err)
	}
	client.ClearToken()
	client.ClearNamespace()
	// Drop VAULT_HEADERS; keep the SSRF-protection header api sets.
	client.SetHeaders(http.Header{api.RequestHeaderName: []string{"true"}})
	if c.Namespace != "" {
		client.SetNamespace(c.Namespace)
	}
	return client, nil
}

// LimitConnsPerHost bounds the connections client (and every clone of it,
// which shares its transport) opens to one host: template_config {
// max_connections_per_host }. n <= 0 leaves the transport as it is.
func LimitConnsPerHost(client *api.Client, n int) {
	if n <= 0 {
		return
	}
	rt := client.CloneConfig().HttpClient.Transport
	if f, ok := rt.(*Failover); ok {
		rt = f.Next
	}
	if t, ok := rt.(*http.Transport); ok {
		t.MaxConnsPerHost = n
	}
}
