package pam

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// netnsChildEnv marks the re-executed test binary that runs inside its own
// network namespace (see TestHostAddrsReal).
const netnsChildEnv = "LATCHKEY_PAM_NETNS_CHILD"

// The host's real interfaces, as the kernel lists them: in a private network
// namespace (unshare --net; the machine's interfaces are untouched) with lo
// up and one more interface holding two IPv4 and two IPv6 addresses,
// HostAddrs returns exactly those and loopback's, and Check admits an OTP
// issued for each of them and for nothing else, not even a neighbour in the
// same subnet (CVE-2020-24359).
func TestHostAddrsReal(t *testing.T) {
	if os.Getenv(netnsChildEnv) == "" {
		for _, tool := range []string{"unshare", "ip"} {
			if _, err := exec.LookPath(tool); err != nil {
				t.Fatalf("%s is needed (util-linux, iproute2: `make deps` installs them): %v", tool, err)
			}
		}
		args := []string{"--net"}
		if os.Geteuid() != 0 {
			// Without root, a user namespace gives the child CAP_NET_ADMIN
			// over its own network namespace.
			args = []string{"--user", "--map-root-user", "--net"}
		}
		cmd := exec.Command("unshare", append(args, os.Args[0], "-test.run=^TestHostAddrsReal$", "-test.v")...)
		cmd.Env = append(os.Environ(), netnsChildEnv+"=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestHostAddrsReal") {
			t.Fatalf("child in a private network namespace: %v\n%s", err, out)
		}
		t.Logf("child in a private network namespace:\n%s", out)
		return
	}

	// The child: a fresh network namespace holds only a down lo.
	ip := func(args ...string) error {
		out, err := exec.Command("ip", args...).CombinedOutput()
		if err != nil {
			return &ipError{args: args, out: strings.TrimSpace(string(out)), err: err}
		}
		return nil
	}
	mustIP := func(args ...string) {
		t.Helper()
		if err := ip(args...); err != nil {
			t.Fatal(err)
		}
	}
	mustIP("link", "set", "lo", "up")
	// A dummy interface; where the kernel has no dummy driver (some VM
	// kernels), one end of a veth pair, which every container host has.
	const dev = "lk0"
	if err := ip("link", "add", dev, "type", "dummy"); err == nil {
		t.Logf("%s is a dummy interface", dev)
	} else if err2 := ip("link", "add", dev, "type", "veth", "peer", "name", "lk1"); err2 == nil {
		t.Logf("%s is a veth interface (no dummy driver: %v)", dev, err)
	} else {
		t.Fatalf("cannot create a network interface in the test's namespace (neither dummy nor veth):\n%v\n%v", err, err2)
	}
	// No link-local address: the set below is then exact.
	mustIP("link", "set", dev, "addrgenmode", "none")
	mine := []string{"192.0.2.10", "198.51.100.20", "2001:db8::10", "2001:db8:1::20"}
	mustIP("addr", "add", "192.0.2.10/24", "dev", dev)
	mustIP("addr", "add", "198.51.100.20/24", "dev", dev)
	// nodad: usable at once, not "tentative" until duplicate detection ends.
	mustIP("-6", "addr", "add", "2001:db8::10/64", "dev", dev, "nodad")
	mustIP("-6", "addr", "add", "2001:db8:1::20/64", "dev", dev, "nodad")
	mustIP("link", "set", dev, "up")

	host, err := HostAddrs()
	if err != nil {
		t.Fatal(err)
	}
	var got, want []string
	for _, a := range host {
		got = append(got, a.String())
	}
	want = append([]string{"127.0.0.1", "::1"}, mine...)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("HostAddrs = %v, want %v", got, want)
	}

	cfg := &Config{AllowedRoles: []string{"web"}}
	tests := map[string]struct {
		ip    string
		allow bool
	}{
		"first IPv4":               {"192.0.2.10", true},
		"second IPv4":              {"198.51.100.20", true},
		"first IPv6":               {"2001:db8::10", true},
		"second IPv6":              {"2001:db8:1::20", true},
		"IPv6 in another spelling": {"2001:0db8:0000::0010", true},
		"IPv4-mapped IPv6":         {"::ffff:192.0.2.10", true},
		"loopback, from loopback":  {"127.0.0.1", true},
		"same IPv4 subnet":         {"192.0.2.11", false},
		"same IPv6 subnet":         {"2001:db8::11", false},
		"elsewhere":                {"203.0.113.5", false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := Check(cfg, Answer{Username: "alice", IP: tc.ip, Role: "web"}, "alice", "127.0.0.1", host)
			if tc.allow && err != nil {
				t.Fatalf("OTP for %s refused: %v", tc.ip, err)
			}
			if !tc.allow && (err == nil || !strings.Contains(err.Error(), "neither this host's")) {
				t.Fatalf("OTP for %s: error %v, want refused as not this host's", tc.ip, err)
			}
		})
	}
}

type ipError struct {
	args []string
	out  string
	err  error
}

func (e *ipError) Error() string {
	return "ip " + strings.Join(e.args, " ") + ": " + e.err.Error() + ": " + e.out
}
