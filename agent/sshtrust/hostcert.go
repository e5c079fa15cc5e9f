package sshtrust

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/latchkey/latchkey/internal/atomicfile"
	"github.com/latchkey/latchkey/internal/vaultclient"
	"go.uber.org/zap"
	"golang.org/x/crypto/ssh"
)

// hostKey is one host public key and its certificate's path.
type hostKey struct {
	Pub, Cert string
}

// certPath is where the certificate of the public key pub goes: beside it,
// as sshd and ssh-keygen name it (ssh_host_ed25519_key-cert.pub).
func certPath(pub string) string { return strings.TrimSuffix(pub, ".pub") + "-cert.pub" }

// hostKeys expands the configured files and patterns, sorted, without
// certificates. A pattern matching nothing is an error: a host without the
// key it was configured for would otherwise go without a certificate.
func hostKeys(patterns []string) ([]hostKey, error) {
	seen := map[string]bool{}
	var out []hostKey
	for _, p := range patterns {
		matches, err := filepath.Glob(p)
		if err != nil {
			return nil, fmt.Errorf("host_certificate.keys %q: %w", p, err)
		}
		if len(matches) == 0 {
			return nil, fmt.Errorf("host_certificate.keys %q: no such host public key", p)
		}
		sort.Strings(matches)
		for _, m := range matches {
			if strings.HasSuffix(m, "-cert.pub") || seen[m] {
				continue
			}
			seen[m] = true
			out = append(out, hostKey{Pub: m, Cert: certPath(m)})
		}
	}
	return out, nil
}

// renewAt is when cert is renewed: at 2/3 of its life, earlier by up to
// 1/20 of its life. The jitter comes from the serial, so that a restart
// computes the same moment and hosts signed together spread out.
func renewAt(cert *ssh.Certificate) time.Time {
	after := time.Unix(int64(cert.ValidAfter), 0)
	if cert.ValidBefore == ssh.CertTimeInfinity {
		return time.Time{}
	}
	life := time.Unix(int64(cert.ValidBefore), 0).Sub(after)
	jitter := time.Duration(float64(life/20) * float64(cert.Serial%1000) / 1000)
	return after.Add(life*2/3 - jitter)
}

// validity is cert's [from, to) as times (to is zero for "forever").
func validity(cert *ssh.Certificate) (time.Time, time.Time) {
	from := time.Unix(int64(cert.ValidAfter), 0)
	if cert.ValidBefore == ssh.CertTimeInfinity {
		return from, time.Time{}
	}
	return from, time.Unix(int64(cert.ValidBefore), 0)
}

// readCert parses the certificate file at path.
func readCert(path string) (*ssh.Certificate, error) {
	b, err := atomicfile.ReadRegular(path)
	if err != nil {
		return nil, err
	}
	k, _, _, _, err := ssh.ParseAuthorizedKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	cert, ok := k.(*ssh.Certificate)
	if !ok {
		return nil, fmt.Errorf("%s: not a certificate", path)
	}
	return cert, nil
}

// needsSigning says why key's current certificate must be replaced, or ""
// when it is still good: it certifies this key as a host, for exactly
// these principals, and now is before its renewal time. Reading it is what
// lets a restart go on with the certificate it has instead of signing again.
// ca, when not nil, is the mount's current CA key: a certificate signed by
// another (the host CA was rotated) is replaced.
func needsSigning(key hostKey, principals []string, ca ssh.PublicKey, now time.Time) (string, error) {
	pubBytes, err := atomicfile.ReadRegular(key.Pub)
	if err != nil {
		return "", err
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(pubBytes)
	if err != nil {
		return "", fmt.Errorf("%s: %w", key.Pub, err)
	}
	cert, err := readCert(key.Cert)
	switch {
	case os.IsNotExist(err):
		return "no certificate yet", nil
	case err != nil:
		return "unreadable certificate (" + err.Error() + ")", nil
	case cert.CertType != ssh.HostCert:
		return "not a host certificate", nil
	case !bytes.Equal(cert.Key.Marshal(), pub.Marshal()):
		return "certifies another key", nil
	case ca != nil && !bytes.Equal(cert.SignatureKey.Marshal(), ca.Marshal()):
		return "signed by another CA than the mount's (" + ssh.FingerprintSHA256(cert.SignatureKey) + ")", nil
	case !samePrincipals(cert.ValidPrincipals, principals):
		return fmt.Sprintf("principals %v, want %v", cert.ValidPrincipals, principals), nil
	case !now.Before(renewAt(cert)) && cert.ValidBefore != ssh.CertTimeInfinity:
		return "due for renewal", nil
	}
	return "", nil
}

func samePrincipals(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	sort.Strings(a)
	sort.Strings(b)
	return slices.Equal(a, b)
}

// sign has Vault sign the host key at pub. It returns the certificate file's
// content, or an error (never holding the token).
func sign(ctx context.Context, client *vaultclient.Client, h *HostCertificate, pub string, principals []string) ([]byte, *ssh.Certificate, error) {
	pubBytes, err := atomicfile.ReadRegular(pub)
	if err != nil {
		return nil, nil, err
	}
	body := map[string]any{
		"public_key":       string(pubBytes),
		"cert_type":        "host",
		"valid_principals": strings.Join(principals, ","),
	}
	if h.TTL > 0 {
		body["ttl"] = h.TTL.String()
	}
	path := strings.Trim(h.Mount, "/") + "/sign/" + h.Role
	s, err := client.Write(ctx, path, body)
	if err != nil {
		return nil, nil, fmt.Errorf("sign %s at %s: %w", pub, path, err)
	}
	signed, _ := func() (string, bool) {
		if s == nil {
			return "", false
		}
		v, ok := s.Data["signed_key"].(string)
		return v, ok
	}()
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(signed))
	if err != nil {
		return nil, nil, fmt.Errorf("sign %s at %s: no certificate in Vault's answer: %w", pub, path, err)
	}
	cert, ok := k.(*ssh.Certificate)
	if !ok {
		return nil, nil, fmt.Errorf("sign %s at %s: Vault's answer is not a certificate", pub, path)
	}
	out := strings.TrimSpace(signed) + "\n"
	return []byte(out), cert, nil
}

// defaultPrincipals are the hostname and, when the resolver knows it, the
// FQDN (as `hostname -f` finds it). Addresses are never added: Vault refuses
// IP principals a role does not allow by name.
func defaultPrincipals() ([]string, error) {
	host, err := os.Hostname()
	if err != nil {
		return nil, fmt.Errorf("hostname: %w", err)
	}
	out := []string{host}
	if !strings.Contains(host, ".") {
		if cname, err := net.LookupCNAME(host); err == nil {
			if fqdn := strings.TrimSuffix(cname, "."); strings.Contains(fqdn, ".") && fqdn != host {
				out = append(out, fqdn)
			}
		}
	}
	return out, nil
}

// dotted returns the names of ps that hold a dot (FQDNs), in order.
func dotted(ps []string) []string {
	var out []string
	for _, p := range ps {
		if strings.Contains(p, ".") {
			out = append(out, p)
		}
	}
	return out
}

// refusedPrincipal reports whether err is Vault's refusal of a principal
// the role does not allow ("... is not a valid value for
// valid_principals").
func refusedPrincipal(err error) bool {
	var re *vaultclient.ResponseError
	return errors.As(err, &re) && re.StatusCode == 400 && strings.Contains(err.Error(), "valid_principals")
}

// hostChanges signs the host keys whose certificate is missing, wrong or
// due, and returns their new files and the earliest renewal time of all.
func (t *Trust) hostChanges(ctx context.Context) ([]change, time.Time, error) {
	h := t.cfg.Host
	if t.principals == nil {
		t.principals = h.Principals
		if len(t.principals) == 0 {
			lookup := defaultPrincipals
			if t.deps.DefaultPrincipals != nil {
				lookup = t.deps.DefaultPrincipals
			}
			p, err := lookup()
			if err != nil {
				return nil, time.Time{}, err
			}
			t.principals = p
			if q := dotted(p); len(q) > 0 && len(q) < len(p) {
				t.fqdnOnly = q
			}
		}
	}
	keys, err := hostKeys(h.Keys)
	if err != nil {
		return nil, time.Time{}, err
	}
	var changes []change
	var next time.Time
	var errs []error
	earliest := func(at time.Time) {
		if !at.IsZero() && (next.IsZero() || at.Before(next)) {
			next = at
		}
	}
	// The host CA's current key, to notice a rotation; unknown (nil) when
	// Vault cannot say, and then a current certificate is kept.
	var ca ssh.PublicKey
	if pc, err := t.deps.Vault(""); err == nil {
		pc.SetMaxRetries(0)
		sctx, cancel := context.WithTimeout(ctx, SourceTimeout)
		ca, _ = mountKey(sctx, pc, h.Mount)
		cancel()
	}
	var client *vaultclient.Client
	for _, k := range keys {
		why, err := needsSigning(k, t.principals, ca, t.deps.Now())
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if why != "" && t.fqdnOnly != nil {
			// A certificate for the FQDN alone, signed after the role
			// refused the short hostname (before a restart), is good.
			if w, err := needsSigning(k, t.fqdnOnly, ca, t.deps.Now()); err == nil && w == "" {
				t.principals, t.fqdnOnly = t.fqdnOnly, nil
				why = ""
			}
		}
		if why == "" {
			if cert, err := readCert(k.Cert); err == nil {
				earliest(renewAt(cert))
			}
			continue
		}
		if client == nil {
			tok := t.deps.Token()
			if tok == "" {
				errs = append(errs, fmt.Errorf("host certificate %s (%s): %w", k.Cert, why, errNoToken))
				continue
			}
			if client, err = t.deps.Vault(tok); err != nil {
				return nil, time.Time{}, err
			}
		}
		data, cert, err := sign(ctx, client, h, k.Pub, t.principals)
		if err != nil && t.fqdnOnly != nil && refusedPrincipal(err) {
			// The default principals hold the short hostname, which a
			// role allowing subdomains only (packaging/terraform's)
			// refuses: sign for the FQDN instead of for nothing.
			t.log.Warn("ssh: Vault's host role refused the default principals; signing for the FQDN only (list host_certificate { principals } to choose)",
				zap.Strings("refused", t.principals), zap.Strings("principals", t.fqdnOnly), zap.Error(err))
			t.principals, t.fqdnOnly = t.fqdnOnly, nil
			data, cert, err = sign(ctx, client, h, k.Pub, t.principals)
		}
		if err != nil {
			t.log.Warn("ssh: host certificate not signed; keeping the current one", zap.String("path", k.Cert), zap.String("reason", why), zap.Error(err))
			errs = append(errs, err)
			continue
		}
		from, to := validity(cert)
		t.log.Info("ssh: host certificate signed", zap.String("path", k.Cert), zap.String("reason", why),
			zap.Strings("principals", cert.ValidPrincipals), zap.Time("valid_after", from), zap.Time("valid_before", to),
			zap.Time("renew_at", renewAt(cert)))
		earliest(renewAt(cert))
		changes = append(changes, change{Path: k.Cert, Data: data, Cert: true})
	}
	return changes, next, errors.Join(errs...)
}
