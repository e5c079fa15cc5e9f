package sshtrust

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// WriteStatus prints what sshd trusts and serves, from the files alone (it
// never asks Vault, so it works when Vault is down): each key of the trust
// file with its SHA256 fingerprint and source, then each host certificate
// with its principals, validity and renewal time. It returns an error only
// when w fails; a missing or unreadable file is reported in the output.
func WriteStatus(w io.Writer, cfg Config, now time.Time) error {
	var b strings.Builder
	if p := cfg.TrustedUserCAKeys; p != "" {
		fmt.Fprintf(&b, "trusted user CA keys (%s):\n", p)
		keys, err := readTrustFile(p)
		switch {
		case err != nil:
			fmt.Fprintf(&b, "  unreadable: %v\n", err)
		case len(keys) == 0:
			fmt.Fprintf(&b, "  none\n")
		}
		for _, k := range keys {
			fmt.Fprintf(&b, "  %s %s %s\n", ssh.FingerprintSHA256(k.Key), k.Key.Type(), sourceLabel(k.Source))
		}
	}
	if h := cfg.Host; h != nil {
		fmt.Fprintf(&b, "host certificates (%s/sign/%s):\n", strings.Trim(h.Mount, "/"), h.Role)
		keys, err := hostKeys(h.Keys)
		if err != nil {
			fmt.Fprintf(&b, "  %v\n", err)
		}
		for _, k := range keys {
			cert, err := readCert(k.Cert)
			if err != nil {
				fmt.Fprintf(&b, "  %s: none (%v)\n", k.Cert, shortErr(err))
				continue
			}
			from, to := validity(cert)
			state := "valid"
			switch {
			case now.Before(from):
				state = "not yet valid"
			case !to.IsZero() && !now.Before(to):
				state = "EXPIRED"
			}
			fmt.Fprintf(&b, "  %s: %s, principals %s, valid %s to %s (%s), CA %s, next renewal %s\n",
				k.Cert, ssh.FingerprintSHA256(cert.Key), strings.Join(cert.ValidPrincipals, ","),
				from.UTC().Format(time.RFC3339), stamp(to), state, ssh.FingerprintSHA256(cert.SignatureKey), stamp(renewAt(cert)))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// sourceLabel spells a trust file comment as status shows it.
func sourceLabel(src string) string {
	switch {
	case strings.HasPrefix(src, "mount:"):
		return "mount " + strings.TrimPrefix(src, "mount:")
	case strings.HasPrefix(src, "pinned:"):
		return "pinned " + strings.TrimPrefix(src, "pinned:")
	case src == "":
		return "unknown source (no comment)"
	}
	return "unknown source (" + src + ")"
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}

func shortErr(err error) string {
	if os.IsNotExist(err) {
		return "no such file"
	}
	return err.Error()
}
