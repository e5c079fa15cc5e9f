package pam

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Answer is what Vault's verify endpoint said about an OTP.
type Answer struct {
	Username string
	IP       string
	Role     string
}

// Check applies vault-ssh-helper's rules, in its order, to a verified OTP:
// the user must be the one logging in; the IP must be exactly one of this
// host's addresses (CVE-2020-24359: never "in the same subnet") or fall
// inside allowed_cidr_list; the role must be allowed. One rule is
// latchkey's own: a loopback address (127.0.0.0/8, ::1), which every host
// has, counts as this host's only for a login from loopback (rhost, sshd's
// PAM_RHOST). vault-ssh-helper accepts it from anywhere, so an OTP asked
// for 127.0.0.1 (a role whose cidr_list is 0.0.0.0/0) opened every host of
// the fleet, those the role's exclude_cidr_list keeps out included.
// allowed_cidr_list may still admit it. It returns nil when all hold, else
// an error saying which did not.
func Check(c *Config, a Answer, user, rhost string, host []netip.Addr) error {
	if a.Username != user {
		return fmt.Errorf("OTP was issued for user %q, not %q", a.Username, user)
	}
	ip, err := netip.ParseAddr(a.IP)
	if err != nil {
		return fmt.Errorf("vault returned an IP %q that does not parse", a.IP)
	}
	ip = ip.Unmap().WithZone("")
	if !ipAllowed(ip, host, c.AllowedCIDRs, loopbackHost(rhost)) {
		if ip.IsLoopback() && slices.Contains(host, ip) {
			from := rhost
			if from == "" {
				from = "an unknown host (no PAM_RHOST)"
			}
			return fmt.Errorf("OTP was issued for the loopback address %s, which every host has, and the login comes from %s, not from loopback", ip, from)
		}
		return fmt.Errorf("OTP was issued for IP %s, which is neither this host's nor in allowed_cidr_list", ip)
	}
	if !c.RoleAllowed(a.Role) {
		return fmt.Errorf("role %q is not in allowed_roles", a.Role)
	}
	return nil
}

func ipAllowed(ip netip.Addr, host []netip.Addr, cidrs []netip.Prefix, fromLoopback bool) bool {
	if !ip.IsLoopback() || fromLoopback {
		for _, h := range host {
			if h == ip {
				return true
			}
		}
	}
	for _, p := range cidrs {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// loopbackHost reports whether rhost (PAM_RHOST: an address, or with
// sshd's UseDNS a name) is this host's loopback: a loopback address, or a
// name /etc/hosts gives loopback on Debian and RHEL.
func loopbackHost(rhost string) bool {
	if a, err := netip.ParseAddr(rhost); err == nil {
		return a.Unmap().IsLoopback()
	}
	switch strings.ToLower(rhost) {
	case "localhost", "localhost.localdomain", "localhost4", "localhost4.localdomain4",
		"localhost6", "localhost6.localdomain6", "ip6-localhost", "ip6-loopback":
		return true
	}
	return false
}
