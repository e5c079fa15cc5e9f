package pam

import (
	"fmt"
	"net"
	"net/netip"
)

// HostAddrs returns every address of every interface of this host, IPv4 and
// IPv6, several per interface included, with IPv4-mapped forms unmapped and
// zones dropped so that they compare equal to what Vault returns.
func HostAddrs() ([]netip.Addr, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("list interface addresses: %w", err)
	}
	out := make([]netip.Addr, 0, len(addrs))
	for _, a := range addrs {
		var ip net.IP
		switch v := a.(type) {
		case *net.IPNet:
			ip = v.IP
		case *net.IPAddr:
			ip = v.IP
		default:
			continue
		}
		if na, ok := netip.AddrFromSlice(ip); ok {
			out = append(out, na.Unmap().WithZone(""))
		}
	}
	return out, nil
}
