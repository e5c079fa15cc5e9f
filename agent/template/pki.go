package template

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"
)

// PemEncoded is what `pkiCert` returns (consul-template's field names).
type PemEncoded struct {
	Cert    string
	Key     string
	CA      string
	CAChain []string
}

// fetchPKI issues a certificate — unless the destination already holds
// one that is still before its renewal point (a restart must not re-issue).
func (q *query) fetchPKI(ctx context.Context, c *api.Client, now time.Time, threshold float64, first bool) result {
	if first {
		if pe, cert, ok := fromDisk(q.dest); ok && now.Before(renewAt(cert.NotBefore, cert.NotAfter, threshold)) {
			return result{value: pe, fetched: now, notBefore: cert.NotBefore, notAfter: cert.NotAfter}
		}
	}
	s, err := c.Logical().WriteWithContext(ctx, q.path, q.data)
	if err != nil {
		return result{err: fmt.Errorf("%s: %w", q, err), fetched: now}
	}
	if s == nil || s.Data == nil {
		return result{err: fmt.Errorf("%s: no certificate in Vault's answer", q), fetched: now}
	}
	str := func(k string) string { v, _ := s.Data[k].(string); return v }
	pe := &PemEncoded{Cert: str("certificate"), Key: str("private_key"), CA: str("issuing_ca")}
	if chain, ok := s.Data["ca_chain"].([]any); ok {
		for _, x := range chain {
			if cs, ok := x.(string); ok {
				pe.CAChain = append(pe.CAChain, cs)
			}
		}
	}
	cert, err := parseCert(pe.Cert)
	if err != nil {
		return result{err: fmt.Errorf("%s: %w", q, err), fetched: now}
	}
	return result{value: pe, fetched: now, notBefore: cert.NotBefore, notAfter: cert.NotAfter}
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

// fromDisk reads a rendered destination back: its first certificate, its
// private key and the certificates after it (the CA).
func fromDisk(dest string) (*PemEncoded, *x509.Certificate, bool) {
	b, err := os.ReadFile(dest)
	if err != nil {
		return nil, nil, false
	}
	pe := &PemEncoded{}
	var cert *x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		// Not trimmed: consul-template re-encodes blocks read back from disk
		// with their trailing newline, and output must match Vault Agent's.
		enc := string(pem.EncodeToMemory(blk))
		switch {
		case blk.Type == "CERTIFICATE" && cert == nil:
			c, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				return nil, nil, false
			}
			cert, pe.Cert = c, enc
		case blk.Type == "CERTIFICATE":
			if pe.CA == "" {
				pe.CA = enc
			}
			pe.CAChain = append(pe.CAChain, enc)
		case strings.HasSuffix(blk.Type, "PRIVATE KEY"):
			pe.Key = enc
		}
	}
	if cert == nil || pe.Key == "" || time.Now().After(cert.NotAfter) {
		return nil, nil, false
	}
	return pe, cert, true
}
