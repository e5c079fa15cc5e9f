package pam

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	host := []netip.Addr{
		netip.MustParseAddr("127.0.0.1"),
		netip.MustParseAddr("10.0.0.5"),
		netip.MustParseAddr("10.0.0.6"), // a second IP on one interface
		netip.MustParseAddr("192.168.7.2"),
		netip.MustParseAddr("::1"),
		netip.MustParseAddr("2001:db8::5"),
		netip.MustParseAddr("fe80::1"),
	}
	base := Config{AllowedRoles: []string{"web"}}
	withCIDR := base
	withCIDR.AllowedCIDRs = []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("2001:db8:1::/48")}
	anyRole := base
	anyRole.AllowedRoles = []string{"*"}
	noRoles := base
	noRoles.AllowedRoles = nil

	loopCIDR := base
	loopCIDR.AllowedCIDRs = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	tests := map[string]struct {
		cfg     Config
		ans     Answer
		rhost   string // PAM_RHOST; a remote client when empty
		wantErr string
	}{
		"ipv4 host address":           {cfg: base, ans: Answer{"alice", "10.0.0.5", "web"}},
		"second ip of an interface":   {cfg: base, ans: Answer{"alice", "10.0.0.6", "web"}},
		"ipv6 host address":           {cfg: base, ans: Answer{"alice", "2001:db8::5", "web"}},
		"ipv6 non-canonical spelling": {cfg: base, ans: Answer{"alice", "2001:0db8:0:0::5", "web"}},
		"ipv4-mapped ipv6":            {cfg: base, ans: Answer{"alice", "::ffff:10.0.0.5", "web"}},
		"same subnet is not enough":   {cfg: base, ans: Answer{"alice", "10.0.0.7", "web"}, wantErr: "neither this host's"},
		"in allowed_cidr_list":        {cfg: withCIDR, ans: Answer{"alice", "203.0.113.9", "web"}},
		"ipv6 in allowed_cidr_list":   {cfg: withCIDR, ans: Answer{"alice", "2001:db8:1::9", "web"}},
		"outside allowed_cidr_list":   {cfg: withCIDR, ans: Answer{"alice", "198.51.100.1", "web"}, wantErr: "neither this host's"},
		"other user":                  {cfg: base, ans: Answer{"bob", "10.0.0.5", "web"}, wantErr: `issued for user "bob", not "alice"`},
		"user case matters":           {cfg: base, ans: Answer{"Alice", "10.0.0.5", "web"}, wantErr: "not \"alice\""},
		"role not allowed":            {cfg: base, ans: Answer{"alice", "10.0.0.5", "db"}, wantErr: `role "db" is not in allowed_roles`},
		"any role":                    {cfg: anyRole, ans: Answer{"alice", "10.0.0.5", "db"}},
		"empty allowed_roles refuses": {cfg: noRoles, ans: Answer{"alice", "10.0.0.5", "web"}, wantErr: "not in allowed_roles"},
		"unparsable ip":               {cfg: anyRole, ans: Answer{"alice", "10.0.0", "web"}, wantErr: "does not parse"},
		"empty ip":                    {cfg: anyRole, ans: Answer{"alice", "", "web"}, wantErr: "does not parse"},
		"user checked before ip":      {cfg: base, ans: Answer{"bob", "198.51.100.1", "db"}, wantErr: "user"},
		"ip checked before role":      {cfg: base, ans: Answer{"alice", "198.51.100.1", "db"}, wantErr: "IP"},
		// Loopback is every host's: this host's only for a login from loopback.
		"loopback v4 from a remote client":     {cfg: base, ans: Answer{"alice", "127.0.0.1", "web"}, wantErr: "loopback address 127.0.0.1, which every host has, and the login comes from 198.51.100.7"},
		"loopback v6 from a remote client":     {cfg: base, ans: Answer{"alice", "::1", "web"}, wantErr: "loopback address ::1"},
		"mapped loopback from a remote client": {cfg: base, ans: Answer{"alice", "::ffff:127.0.0.1", "web"}, wantErr: "loopback address 127.0.0.1"},
		"loopback not on this host":            {cfg: base, ans: Answer{"alice", "127.0.0.2", "web"}, wantErr: "neither this host's"},
		"loopback v4 from loopback":            {cfg: base, ans: Answer{"alice", "127.0.0.1", "web"}, rhost: "127.0.0.1"},
		"loopback v6 from loopback":            {cfg: base, ans: Answer{"alice", "::1", "web"}, rhost: "::1"},
		"loopback from a mapped loopback":      {cfg: base, ans: Answer{"alice", "127.0.0.1", "web"}, rhost: "::ffff:127.0.0.1"},
		"loopback from localhost (UseDNS)":     {cfg: base, ans: Answer{"alice", "127.0.0.1", "web"}, rhost: "localhost"},
		"loopback from ip6-localhost":          {cfg: base, ans: Answer{"alice", "::1", "web"}, rhost: "ip6-localhost"},
		"loopback from a name":                 {cfg: base, ans: Answer{"alice", "127.0.0.1", "web"}, rhost: "localhost.example.com", wantErr: "loopback"},
		"loopback with no rhost":               {cfg: base, ans: Answer{"alice", "127.0.0.1", "web"}, rhost: "-", wantErr: "loopback"},
		"loopback in allowed_cidr_list":        {cfg: loopCIDR, ans: Answer{"alice", "127.0.0.1", "web"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			rhost := tc.rhost
			switch rhost {
			case "":
				rhost = "198.51.100.7"
			case "-":
				rhost = ""
			}
			err := Check(&tc.cfg, tc.ans, "alice", rhost, host)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestHostAddrs(t *testing.T) {
	addrs, err := HostAddrs()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, a := range addrs {
		if a == netip.MustParseAddr("127.0.0.1") {
			found = true
		}
		if a.Zone() != "" || a.Is4In6() {
			t.Errorf("address %s not normalized", a)
		}
	}
	if !found {
		t.Errorf("127.0.0.1 not among %v", addrs)
	}
}

func TestTOTPKey(t *testing.T) {
	tests := map[string]struct{ user, want, err string }{
		"plain":      {user: "alice", want: "ssh-alice"},
		"dotted":     {user: "a.b-c_d", want: "ssh-a.b-c_d"},
		"slash":      {user: "a/b", err: "cannot name a TOTP key"},
		"dotdot":     {user: "a..b", err: "cannot name a TOTP key"},
		"leading -":  {user: "-x", err: "cannot name a TOTP key"},
		"empty user": {user: "", err: "cannot name a TOTP key"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := totpKey("ssh-{{user}}", tc.user)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrDenied) {
					t.Fatalf("error = %v", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v", got, err)
			}
		})
	}
}
