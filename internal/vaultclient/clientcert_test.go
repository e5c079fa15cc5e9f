package vaultclient_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/latchkey/latchkey/internal/vaultclient"
	"github.com/latchkey/latchkey/test/testkit"
	"github.com/latchkey/latchkey/test/vaulttest"
)

// testCA signs the certificates of one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T) *testCA {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	testkit.Must(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "latchkey test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	testkit.Must(t, err)
	cert, err := x509.ParseCertificate(der)
	testkit.Must(t, err)
	return &testCA{cert, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a certificate (serial, for the loopback address) and its
// key, both PEM.
func (ca *testCA) issue(t *testing.T, serial int64) (certPEM, keyPEM []byte) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	testkit.Must(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "latchkey-" + strconv.FormatInt(serial, 10)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	testkit.Must(t, err)
	kb, err := x509.MarshalECPrivateKey(key)
	testkit.Must(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

// replace writes b to path as a rotation tool does: a new file renamed
// over the old one.
func replace(t *testing.T, path string, b []byte) {
	testkit.Must(t, os.WriteFile(path+".new", b, 0o600))
	testkit.Must(t, os.Rename(path+".new", path))
}

// A client certificate rotated on disk (cert-manager, a cron job, a
// template of the agent's own) is sent from the next connection on, with
// no restart or reload; a rotation caught between its two files (a new
// certificate beside the old key) keeps sending the last whole pair. It
// was read once at the start: after the old certificate expired, Vault
// refused every new connection of the agent until it was restarted.
func TestClientCertificateRotatedOnDisk(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t)
	caFile := filepath.Join(dir, "ca.pem")
	testkit.Must(t, os.WriteFile(caFile, ca.pem, 0o600))
	srvCert, srvKey := ca.issue(t, 100)
	testkit.Must(t, os.WriteFile(filepath.Join(dir, "server.pem"), srvCert, 0o600))
	testkit.Must(t, os.WriteFile(filepath.Join(dir, "server.key"), srvKey, 0o600))
	// A listener of the dev server that requires a client certificate
	// of ca, beside its usual one.
	port := testkit.FreePort(t)
	hcl := filepath.Join(dir, "mtls.hcl")
	testkit.Must(t, os.WriteFile(hcl, fmt.Appendf(nil, `listener "tcp" {
  address                            = "127.0.0.1:%d"
  tls_cert_file                      = %q
  tls_key_file                       = %q
  tls_client_ca_file                 = %q
  tls_require_and_verify_client_cert = true
}
`, port, filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key"), caFile), 0o600))
	srv := vaulttest.StartT(t, vaulttest.Options{Args: []string{"-config=" + hcl}})

	// The client reaches it through a proxy whose Cut makes the next
	// request open a new connection, with a new handshake.
	proxy := vaulttest.NewTCPProxy(t, "127.0.0.1:"+strconv.Itoa(port))
	testkit.Must(t, srv.Client.Sys().EnableAuthWithOptions("cert", &api.EnableAuthOptions{Type: "cert"}))
	_, err := srv.Client.Logical().Write("auth/cert/certs/ca", map[string]any{"certificate": string(ca.pem), "token_ttl": "1m"})
	testkit.Must(t, err)

	certFile, keyFile := filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key")
	c1, k1 := ca.issue(t, 1)
	replace(t, certFile, c1)
	replace(t, keyFile, k1)
	c, err := vaultclient.New(vaultclient.Config{
		Address: "https://" + strings.TrimPrefix(proxy.Addr, "http://"), CACert: caFile,
		// A retry for the request that meets the connection Cut is closing.
		ClientCert: certFile, ClientKey: keyFile, Timeout: 10 * time.Second, MaxRetries: vaultclient.Int(2),
	})
	testkit.Must(t, err)

	c2, k2 := ca.issue(t, 2)
	c3, k3 := ca.issue(t, 3)
	steps := []struct {
		name      string
		cert, key []byte // written before the request (nil: left)
		want      string // the common name Vault's cert login saw
	}{
		{"as started", nil, nil, "latchkey-1"},
		{"rotated", c2, k2, "latchkey-2"},
		{"a new certificate beside the old key", c3, nil, "latchkey-2"},
		{"its key follows", nil, k3, "latchkey-3"},
	}
	for _, st := range steps {
		if st.cert != nil {
			replace(t, certFile, st.cert)
		}
		if st.key != nil {
			replace(t, keyFile, st.key)
		}
		proxy.Cut()
		// Vault's cert auth names the certificate the connection came
		// with in the login's metadata.
		login, err := c.Write(context.Background(), "auth/cert/login", map[string]any{"name": "ca"})
		if err != nil {
			t.Fatalf("%s: cert login: %v", st.name, err)
		}
		if got := login.Auth.Metadata["common_name"]; got != st.want {
			t.Errorf("%s: Vault saw the client certificate %q, want %q", st.name, got, st.want)
		}
	}
}
