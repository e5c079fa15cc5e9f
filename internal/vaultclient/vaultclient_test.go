package vaultclient

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestPrecedenceFlagOverEnvOverFile(t *testing.T) {
	file := Config{Address: "https://file:8200", CACert: "/etc/file-ca.pem", Namespace: "file-ns", TLSSkipVerify: Bool(true), Timeout: 5 * time.Second}
	env, err := FromEnv(envOf(map[string]string{
		"VAULT_ADDR":        "https://env:8200",
		"VAULT_SKIP_VERIFY": "false",
		"VAULT_MAX_RETRIES": "0",
	}))
	if err != nil {
		t.Fatal(err)
	}
	flags := Config{Address: "https://flag:8200"}
	got := file.Merge(env).Merge(flags)
	want := Config{
		Address:       "https://flag:8200",
		CACert:        "/etc/file-ca.pem",
		Namespace:     "file-ns",
		TLSSkipVerify: Bool(false),
		Timeout:       5 * time.Second,
		MaxRetries:    Int(0),
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("merged = %+v\nwant    %+v", got, want)
	}
}

func TestFromEnvErrorsNameTheVariable(t *testing.T) {
	tests := map[string]struct {
		env  map[string]string
		want string
	}{
		"skip verify": {map[string]string{"VAULT_SKIP_VERIFY": "perhaps"}, "VAULT_SKIP_VERIFY"},
		"timeout":     {map[string]string{"VAULT_CLIENT_TIMEOUT": "soon"}, "VAULT_CLIENT_TIMEOUT"},
		"retries":     {map[string]string{"VAULT_MAX_RETRIES": "-1"}, "VAULT_MAX_RETRIES"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := FromEnv(envOf(tc.env))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want it to name %s", err, tc.want)
			}
		})
	}
	c, err := FromEnv(envOf(map[string]string{"VAULT_CLIENT_TIMEOUT": "7"}))
	if err != nil || c.Timeout != 7*time.Second {
		t.Fatalf("bare seconds: %v %v", c.Timeout, err)
	}
}

func TestValidate(t *testing.T) {
	tests := map[string]struct {
		c    Config
		want string
	}{
		"ok":           {Config{Address: "https://vault.example:8200"}, ""},
		"empty":        {Config{}, "vault address is empty"},
		"no scheme":    {Config{Address: "vault:8200"}, `vault address "vault:8200"`},
		"ftp":          {Config{Address: "ftp://vault"}, "want http(s)"},
		"cert w/o key": {Config{Address: "https://v", ClientCert: "c.pem"}, "client certificate and client key"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tc.c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestNewIgnoresStrayEnvironment(t *testing.T) {
	t.Setenv("VAULT_TOKEN", "s.stray")
	t.Setenv("VAULT_AGENT_ADDR", "http://127.0.0.9:1")
	t.Setenv("VAULT_NAMESPACE", "stray-ns")
	t.Setenv("VAULT_MAX_RETRIES", "9")
	t.Setenv("VAULT_HEADERS", `{"X-Stray": "1"}`)
	c, err := New(Config{Address: "https://vault.example:8200", Timeout: 3 * time.Second, MaxRetries: Int(0)})
	if err != nil {
		t.Fatal(err)
	}
	if c.Token() != "" {
		t.Error("token taken from VAULT_TOKEN")
	}
	if c.Address() != "https://vault.example:8200" {
		t.Errorf("address = %s", c.Address())
	}
	if ns := c.Namespace(); ns != "" {
		t.Errorf("namespace = %q", ns)
	}
	if c.timeout != 3*time.Second || c.maxRetries != 0 {
		t.Errorf("timeout = %s, retries %d", c.timeout, c.maxRetries)
	}
}

func TestNewRejectsMissingCA(t *testing.T) {
	_, err := New(Config{Address: "https://v:8200", CACert: "/nonexistent/ca.pem"})
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/ca.pem") {
		t.Fatalf("error = %v, want it to name the CA file", err)
	}
}

func TestLimitConnsPerHost(t *testing.T) {
	tests := map[string]struct{ n, want int }{
		"set":         {3, 3},
		"zero leaves": {0, 0},
		"negative":    {-1, 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c, err := New(Config{Address: "http://127.0.0.1:1"})
			if err != nil {
				t.Fatal(err)
			}
			LimitConnsPerHost(c, tc.n)
			// A clone (what renderers and sinks use) shares the transport.
			clone := c.Clone()
			for what, cl := range map[string]*Client{"client": c, "clone": clone} {
				tr, ok := cl.hc.Transport.(*http.Transport)
				if !ok {
					t.Fatalf("%s: transport %T", what, cl.hc.Transport)
				}
				if tr.MaxConnsPerHost != tc.want {
					t.Errorf("%s: MaxConnsPerHost = %d, want %d", what, tr.MaxConnsPerHost, tc.want)
				}
			}
		})
	}
}

func TestOneAddressHasNoFailover(t *testing.T) {
	c, err := New(Config{Address: "http://127.0.0.1:8200", Addresses: []string{"http://127.0.0.1:8200"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.hc.Transport.(*Failover); ok {
		t.Fatal("one address (listed twice) got a Failover transport")
	}
	// One server written two ways is tried once: listed twice, a dead
	// one took two shares of the request's time.
	tests := map[string]struct {
		address   string
		addresses []string
		want      int
	}{
		"trailing slash":       {"https://vault-1:8200/", []string{"https://vault-1:8200", "https://vault-2:8200/"}, 2},
		"host case":            {"https://Vault-1:8200", []string{"https://vault-1:8200", "https://vault-2:8200"}, 2},
		"default port":         {"https://vault-1", []string{"https://vault-1:443", "https://vault-2"}, 2},
		"http default port":    {"http://vault-1:80/", []string{"http://vault-1", "http://vault-2"}, 2},
		"other port":           {"https://vault-1:8200", []string{"https://vault-1:8201", "https://vault-2:8200"}, 3},
		"other scheme":         {"https://vault-1:8200", []string{"http://vault-1:8200", "https://vault-2:8200"}, 3},
		"path, trailing slash": {"https://lb/vault-a", []string{"https://lb/vault-a/", "https://lb/vault-b"}, 2},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c, err := New(Config{Address: tc.address, Addresses: tc.addresses})
			if err != nil {
				t.Fatal(err)
			}
			if f := c.Failover(); f == nil || len(f.Addrs) != tc.want {
				t.Fatalf("failover %v, want %d addresses", f, tc.want)
			}
			if c.Address() != tc.address {
				t.Errorf("address %q, want %q as written", c.Address(), tc.address)
			}
		})
	}
	if _, err := New(Config{Addresses: []string{"http://a:1", "ftp://b"}}); err == nil {
		t.Fatal("a non-http address in addresses was accepted")
	}
}
