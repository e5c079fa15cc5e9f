package pam

import (
	"fmt"
	"net/netip"
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
// inside allowed_cidr_list; the role must be allowed. It returns nil when all
// hold, else an error saying which did not.
func Check(c *Config, a Answer, user string, host []netip.Addr) error {
	if a.Username != user {
		return fmt.Errorf("OTP was issued for user %q, not %q", a.Username, user)
	}
	ip, err := netip.ParseAddr(a.IP)
	if err != nil {
		return fmt.Errorf("vault returned an IP %q that does not parse", a.IP)
	}
	ip = ip.Unmap().WithZone("")
	if !ipAllowed(ip, host, c.AllowedCIDRs) {
		return fmt.Errorf("OTP was issued for IP %s, which is neither this host's nor in allowed_cidr_list", ip)
	}
	if !c.RoleAllowed(a.Role) {
		return fmt.Errorf("role %q is not in allowed_roles", a.Role)
	}
	return nil
}

func ipAllowed(ip netip.Addr, host []netip.Addr, cidrs []netip.Prefix) bool {
	for _, h := range host {
		if h == ip {
			return true
		}
	}
	for _, p := range cidrs {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
