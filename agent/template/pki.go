package template

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/latchkey/latchkey/internal/atomicfile"
	"github.com/latchkey/latchkey/internal/vaultclient"
)

// PemEncoded is what `pkiCert` returns (consul-template's field names).
type PemEncoded struct {
	Cert    string
	Key     string
	CA      string
	CAChain []string
}

// Data returns p itself, so that `.Data.Cert` (the form in Vault's
// documentation) works as well as `.Cert`, as in consul-template.
func (p PemEncoded) Data() PemEncoded { return p }

// CaChainContains reports whether the CA chain holds the PEM item.
func (p PemEncoded) CaChainContains(item string) bool { return slices.Contains(p.CAChain, item) }

// fetchPKI issues a certificate — unless the destination already holds
// one that is still before its renewal point and was issued for what the
// template asks (a restart must not re-issue; a changed common_name or
// SAN must not wait for the old certificate's renewal).
func (q *query) fetchPKI(ctx context.Context, c *vaultclient.Client, now time.Time, threshold float64, first bool) result {
	if first {
		if pe, cert, ok := fromDisk(q.dest, now); ok && now.Before(renewAt(cert.NotBefore, cert.NotAfter, threshold)) && issuedFor(cert, q.data) {
			return result{value: pe, fetched: now, notBefore: cert.NotBefore, notAfter: cert.NotAfter}
		}
	}
	s, err := c.Write(ctx, q.path, q.data)
	if err != nil {
		return result{err: fmt.Errorf("%s: %w", q, err), fetched: now}
	}
	if s == nil || s.Data == nil {
		return result{err: fmt.Errorf("%s: no certificate in Vault's answer", q), fetched: now}
	}
	// As consul-template: every PEM of the answer goes through the same
	// parsing as a file read back from disk, so that a fresh certificate
	// renders exactly as a reused one (re-encoded, trailing newline) and as
	// Vault Agent renders it.
	var raw strings.Builder
	for _, k := range []string{"issuing_ca", "certificate", "private_key"} {
		if v, ok := s.Data[k].(string); ok {
			raw.WriteString(v + "\n")
		}
	}
	if chain, ok := s.Data["ca_chain"].([]any); ok {
		for _, x := range chain {
			if cs, ok := x.(string); ok {
				raw.WriteString(cs + "\n")
			}
		}
	}
	pe, cert, err := splitPEMs([]byte(raw.String()))
	if err != nil {
		return result{err: fmt.Errorf("%s: %w", q, err), fetched: now}
	}
	if cert == nil {
		return result{err: fmt.Errorf("%s: no certificate in Vault's answer", q), fetched: now}
	}
	return result{value: pe, fetched: now, notBefore: cert.NotBefore, notAfter: cert.NotAfter}
}

// issuedFor reports whether cert carries the names the pkiCert arguments
// ask for: common_name as its subject's, every alt_names entry among its
// DNS names or email addresses, every ip_sans among its IP addresses and
// every uri_sans among its URIs. Vault adds names of its own (the common
// name as a DNS SAN), so more is fine; fewer means the template changed
// since the certificate was issued. Arguments that shape no name (ttl,
// format) are not compared: they apply at the next issue.
func issuedFor(cert *x509.Certificate, data map[string]any) bool {
	arg := func(k string) []string {
		v, _ := data[k].(string)
		var out []string
		for _, f := range strings.Split(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				out = append(out, f)
			}
		}
		return out
	}
	if cn, _ := data["common_name"].(string); cn != "" && cert.Subject.CommonName != cn {
		return false
	}
	for _, n := range arg("alt_names") {
		if !slices.ContainsFunc(cert.DNSNames, func(d string) bool { return strings.EqualFold(d, n) }) && !slices.Contains(cert.EmailAddresses, n) {
			return false
		}
	}
	for _, s := range arg("ip_sans") {
		ip := net.ParseIP(s)
		if ip == nil || !slices.ContainsFunc(cert.IPAddresses, ip.Equal) {
			return false
		}
	}
	for _, u := range arg("uri_sans") {
		if !slices.ContainsFunc(cert.URIs, func(x *url.URL) bool { return x.String() == u }) {
			return false
		}
	}
	return true
}

// renewAt is the point at threshold of a certificate's life.
func renewAt(nb, na time.Time, threshold float64) time.Time {
	return nb.Add(time.Duration(float64(na.Sub(nb)) * threshold))
}

func parseCert(p string) (*x509.Certificate, error) {
	blk, _ := pem.Decode([]byte(p))
	if blk == nil {
		return nil, fmt.Errorf("certificate is not PEM")
	}
	return x509.ParseCertificate(blk.Bytes)
}

// maxPEMFile bounds what fromDisk reads of a destination.
const maxPEMFile = 1 << 20

// fromDisk reads a rendered destination back, as consul-template does:
// the certificate, the private key and the CA certificates, whatever their
// order. ok is false when there is no unexpired certificate.
func fromDisk(dest string, now time.Time) (*PemEncoded, *x509.Certificate, bool) {
	// As every read of a destination: no symlink followed, no FIFO waited
	// on (a pkiCert render would block its round and the agent's stop).
	f, _, err := atomicfile.OpenExisting(dest)
	if err != nil {
		return nil, nil, false
	}
	// A certificate with its key and chain is a few KiB: anything past
	// maxPEMFile is no rendered certificate (and is not read into memory).
	b, err := io.ReadAll(io.LimitReader(f, maxPEMFile+1))
	f.Close()
	if err != nil || len(b) == 0 || len(b) > maxPEMFile {
		return nil, nil, false
	}
	pe, cert, err := splitPEMs(b)
	if err != nil || cert == nil || !now.Before(cert.NotAfter) {
		return nil, nil, false
	}
	return pe, cert, true
}

// splitPEMs finds the PEM blocks in b (also when written back to back
// without a newline between them) with consul-template's rules: a block
// whose type ends in PRIVATE KEY is the key; a CA certificate is the CA
// (the first) and joins the chain; another certificate is the
// certificate. Each is re-encoded, so it ends with a newline. Scanning
// stops at the first block that does not decode.
func splitPEMs(b []byte) (*PemEncoded, *x509.Certificate, error) {
	pe := &PemEncoded{}
	var cert *x509.Certificate
	for {
		start := bytes.Index(b, []byte("-----BEGIN"))
		if start < 0 {
			break
		}
		b = b[start:]
		e := bytes.Index(b, []byte("-----END"))
		if e < 0 {
			break
		}
		e += len("-----END")
		f := bytes.Index(b[e:], []byte("-----"))
		if f < 0 {
			break
		}
		end := e + f + len("-----")
		blk, _ := pem.Decode(append(append([]byte("\n"), b[:end]...), '\n'))
		b = b[end:]
		if blk == nil {
			break
		}
		enc := string(pem.EncodeToMemory(blk))
		if strings.HasSuffix(blk.Type, "PRIVATE KEY") {
			pe.Key = enc
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, nil, err
		}
		if c.IsCA {
			if pe.CA == "" {
				pe.CA = enc
			}
			if !slices.Contains(pe.CAChain, enc) {
				pe.CAChain = append(pe.CAChain, enc)
			}
			continue
		}
		cert, pe.Cert = c, enc
	}
	return pe, cert, nil
}
