// Package sshtrust keeps a host's SSH trust material current from Vault's SSH
// secrets engine: the file sshd's TrustedUserCAKeys names (the public keys of
// the user CAs, from Vault mounts and pinned offline keys) and the host's
// certificates (HostCertificate), checked before sshd sees them and rolled
// back when the check fails.
//
// New builds a Trust without touching the network or starting goroutines;
// Run keeps the files current until its context ends; Ready is closed after
// the first complete round.
package sshtrust

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Defaults the config's Finalize fills in.
const (
	// DefaultRefreshInterval is how often the user CAs' public keys are read
	// again (a rotation shows within it).
	DefaultRefreshInterval = 5 * time.Minute
	// DefaultHostKeys are the host public keys signed when keys is not set.
	DefaultHostKeys = "/etc/ssh/ssh_host_*_key.pub"
	// CommandTimeout bounds check_command and reload_command.
	CommandTimeout = 30 * time.Second
)

// Config is the ssh { } block, finalized.
type Config struct {
	// TrustedUserCAKeys is the file sshd's TrustedUserCAKeys names ("": no
	// user CA trust is managed).
	TrustedUserCAKeys string
	// UserCAMounts are SSH secrets engine mounts whose CA public key is
	// trusted (GET /v1/<mount>/public_key, no token needed).
	UserCAMounts []string
	// PinnedUserCAKeys is a file of public keys always trusted (an offline
	// break-glass CA, the next CA of a rotation); "" for none.
	PinnedUserCAKeys string
	// RefreshInterval is how often the user CA keys are read again.
	RefreshInterval time.Duration
	// Host, when set, has the host's keys signed as host certificates.
	Host *HostCertificate
	// CheckCommand runs once new files are in place; a failure restores
	// the previous ones. Empty: no check.
	CheckCommand []string
	// ReloadCommand runs after host certificates changed (sshd reads them
	// only at start and on SIGHUP). Empty: no reload.
	ReloadCommand []string
}

// HostCertificate is the host_certificate { } block.
type HostCertificate struct {
	// Mount and Role are where host keys are signed: POST <mount>/sign/<role>.
	Mount, Role string
	// Keys are host public key files or glob patterns; each certificate
	// is written beside its key as *-cert.pub.
	Keys []string
	// Principals are the names in the certificate; empty means the
	// hostname and the FQDN, looked up when Run starts.
	Principals []string
	// TTL is the certificate's asked lifetime (0: the role's).
	TTL time.Duration
}

// KeyError is a config error about one key of the ssh block; Key is its
// dotted name ("host_certificate.role") so that the caller can point at it.
type KeyError struct {
	Key, Msg string
}

func (e *KeyError) Error() string { return "ssh: " + e.Key + ": " + e.Msg }

// Validate returns nil for a usable config, or a *KeyError naming the first
// key that is wrong.
func (c Config) Validate() error {
	bad := func(key, format string, args ...any) error {
		return &KeyError{Key: key, Msg: fmt.Sprintf(format, args...)}
	}
	if c.TrustedUserCAKeys == "" && c.Host == nil {
		return bad("trusted_user_ca_keys", "the ssh block manages nothing: give trusted_user_ca_keys, host_certificate or both")
	}
	if c.TrustedUserCAKeys == "" && (len(c.UserCAMounts) > 0 || c.PinnedUserCAKeys != "") {
		return bad("trusted_user_ca_keys", "user_ca_mounts and pinned_user_ca_keys need the file to write them to (the one sshd's TrustedUserCAKeys names)")
	}
	if c.TrustedUserCAKeys != "" && len(c.UserCAMounts) == 0 && c.PinnedUserCAKeys == "" {
		return bad("trusted_user_ca_keys", "needs user_ca_mounts or pinned_user_ca_keys: the trust file is never written empty")
	}
	for _, m := range c.UserCAMounts {
		if strings.Trim(m, "/") == "" {
			return bad("user_ca_mounts", "a mount path is empty")
		}
	}
	if c.RefreshInterval <= 0 {
		return bad("refresh_interval", "want a positive duration such as \"5m\"")
	}
	if h := c.Host; h != nil {
		if strings.Trim(h.Mount, "/") == "" {
			return bad("host_certificate.mount", "is required (the SSH secrets engine mount that signs host keys)")
		}
		if h.Role == "" {
			return bad("host_certificate.role", "is required (a role with allow_host_certificates=true)")
		}
		if h.TTL < 0 {
			return bad("host_certificate.ttl", "must not be negative")
		}
		if len(h.Keys) == 0 {
			return bad("host_certificate.keys", "lists no key")
		}
		for _, k := range h.Keys {
			if !strings.HasSuffix(k, ".pub") {
				return bad("host_certificate.keys", "%q: want public key files (*.pub); the certificate is written beside each as *-cert.pub", k)
			}
		}
	}
	for key, cmd := range map[string][]string{"check_command": c.CheckCommand, "reload_command": c.ReloadCommand} {
		if len(cmd) > 0 && cmd[0] == "" {
			return bad(key, "the program name is empty")
		}
	}
	return nil
}

// errNoToken is a round that needed a token before the first login.
var errNoToken = errors.New("no Vault token yet")
