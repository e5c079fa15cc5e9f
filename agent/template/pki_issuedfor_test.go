package template

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/latchkey/latchkey/test/testkit"
)

// A certificate on disk is reused only when it carries every name the
// pkiCert arguments ask for (Vault's own additions are fine).
func TestIssuedFor(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	testkit.Must(t, err)
	u, _ := url.Parse("spiffe://example.com/web")
	tmpl := &x509.Certificate{
		SerialNumber:   big.NewInt(1),
		Subject:        pkix.Name{CommonName: "a.example.com"},
		NotBefore:      time.Now(),
		NotAfter:       time.Now().Add(time.Hour),
		DNSNames:       []string{"a.example.com", "b.example.com"},
		EmailAddresses: []string{"ops@example.com"},
		IPAddresses:    []net.IP{net.ParseIP("10.0.0.1"), net.ParseIP("fd00::1")},
		URIs:           []*url.URL{u},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	testkit.Must(t, err)
	cert, err := x509.ParseCertificate(der)
	testkit.Must(t, err)
	tests := map[string]struct {
		data map[string]any
		want bool
	}{
		"no arguments":                {nil, true},
		"same common name":            {map[string]any{"common_name": "a.example.com", "ttl": "5m"}, true},
		"another common name":         {map[string]any{"common_name": "c.example.com"}, false},
		"alt names held, any case":    {map[string]any{"common_name": "a.example.com", "alt_names": "B.example.com, ops@example.com"}, true},
		"an alt name missing":         {map[string]any{"common_name": "a.example.com", "alt_names": "b.example.com,c.example.com"}, false},
		"ip sans held":                {map[string]any{"ip_sans": "10.0.0.1,fd00:0::1"}, true},
		"an ip san missing":           {map[string]any{"ip_sans": "10.0.0.2"}, false},
		"an ip san that is not an IP": {map[string]any{"ip_sans": "ten"}, false},
		"uri san held":                {map[string]any{"uri_sans": "spiffe://example.com/web"}, true},
		"a uri san missing":           {map[string]any{"uri_sans": "spiffe://example.com/db"}, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := issuedFor(cert, tc.data); got != tc.want {
				t.Errorf("issuedFor(%v) = %v, want %v", tc.data, got, tc.want)
			}
		})
	}
}
