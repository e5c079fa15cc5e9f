package vaulttest

import (
	"testing"

	"github.com/hashicorp/vault/api"
	"golang.org/x/crypto/ssh"
)

// SSHCAT mounts an SSH secrets engine at mount with a generated CA key for
// the test (unmounted when it ends) and returns the CA's public key.
func (s *Server) SSHCAT(tb testing.TB, mount string) ssh.PublicKey {
	tb.Helper()
	s.MountT(tb, mount, &api.MountInput{Type: "ssh"})
	sec, err := s.Client.Logical().Write(mount+"/config/ca", map[string]any{"generate_signing_key": true, "key_type": "ed25519"})
	if err != nil {
		tb.Fatalf("%s/config/ca: %v", mount, err)
	}
	pub, _ := sec.Data["public_key"].(string)
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(pub))
	if err != nil {
		tb.Fatalf("%s/config/ca: public key %q: %v", mount, pub, err)
	}
	return k
}

// SignSSHT signs pub at mount/sign/role with the root token and returns the
// certificate. params are added to the request (valid_principals, ttl,
// cert_type, ...).
func (s *Server) SignSSHT(tb testing.TB, mount, role string, pub ssh.PublicKey, params map[string]any) *ssh.Certificate {
	tb.Helper()
	body := map[string]any{"public_key": string(ssh.MarshalAuthorizedKey(pub))}
	for k, v := range params {
		body[k] = v
	}
	sec, err := s.Client.Logical().Write(mount+"/sign/"+role, body)
	if err != nil {
		tb.Fatalf("%s/sign/%s: %v", mount, role, err)
	}
	signed, _ := sec.Data["signed_key"].(string)
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(signed))
	if err != nil {
		tb.Fatalf("%s/sign/%s: %v", mount, role, err)
	}
	cert, ok := k.(*ssh.Certificate)
	if !ok {
		tb.Fatalf("%s/sign/%s: not a certificate", mount, role)
	}
	return cert
}
