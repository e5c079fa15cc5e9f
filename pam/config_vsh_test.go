package pam

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"
)

// vault-ssh-helper 0.2.4 reads its config with api.ParseSSHHelperConfig of
// the very github.com/hashicorp/vault/api this module requires (v1.23.0,
// HCL 1). Every file it accepts, the helper must accept and read the same,
// or refuse for one of the reasons below: a migrating fleet must not be
// locked out, nor let in more widely.

// deliberateRefusals are the files vault-ssh-helper accepts and the helper
// refuses, each with why. An error line of the helper's matches one by a
// piece of its text.
var deliberateRefusals = []struct {
	name, reason string
	texts        []string
}{
	{"address", "a vault_addr that is not http(s)://host[:port] (or blank, or with a query): vault-ssh-helper cannot reach Vault at it, every login fails; " +
		"one with user:password@ would put the password in log lines",
		[]string{"vault_addr: ", `missing key "vault_addr"`}},
	{"CA", "a ca_cert or ca_path that does not load: vault-ssh-helper fails every login on it (go-rootcerts); the helper says so when the config loads",
		[]string{"ca_cert: ", "ca_path: "}},
	{"mount", `an empty ssh_mount_point (or only slashes) or one with a ".." segment: Vault cleans the path and redirects (307) /v1//verify to /v1/verify, above any mount, where no OTP is verified`,
		[]string{"ssh_mount_point: want a mount path"}},
	{"$${", "$${ and %%{ in a string or heredoc: HCL 2, and latchkey's reader before, took them for ${ and %{; vault-ssh-helper keeps them; " +
		"refused rather than read either way (no working value holds one)",
		[]string{"is ambiguous: HCL 2"}},
	{"not text", "a value that is not text: a control character other than tab (raw, or \\x and octal escapes of non-ASCII bytes), a lone surrogate (\\ud800, which " +
		"vault-ssh-helper turns into U+FFFD), an invalid UTF-8 file",
		[]string{"control character in a", "stands for a byte that is not UTF-8", "wants 4 hex digits of a Unicode character",
			"wants 8 hex digits of a Unicode character", "invalid UTF-8"}},
}

// refusalOf names the deliberate refusal every line of err matches, or "".
func refusalOf(err error) string {
	name := ""
	for _, line := range strings.Split(err.Error(), "\n") {
		found := ""
		for _, r := range deliberateRefusals {
			for _, text := range r.texts {
				if strings.Contains(line, text) {
					found = r.name
				}
			}
		}
		if found == "" {
			return ""
		}
		name = found
	}
	return name
}

// vshRead is vault-ssh-helper's reading of src, in its most lenient mode:
// with VAULT_ALLOW_PENDING_REMOVAL_DUPLICATE_HCL_ATTRIBUTES=true (which the
// caller sets) it takes a repeated key's last value, as it does in a JSON
// file; without, it refuses a repeated key of a native file. A panic of
// the HCL 1 decoder (it has some) is a refusal.
func vshRead(src string) (c *api.SSHHelperConfig, err error) {
	defer func() {
		if r := recover(); r != nil {
			c, err = nil, fmt.Errorf("panic: %v", r)
		}
	}()
	return api.ParseSSHHelperConfig(src)
}

// vshRoleAllowed is vault-ssh-helper's validateRoleName.
func vshRoleAllowed(allowed, role string) bool {
	if allowed == "" {
		return false
	}
	if allowed == "*" {
		return true
	}
	role = strings.TrimSpace(role)
	if role == "" {
		return false
	}
	for _, r := range strings.Split(allowed, ",") {
		if strings.TrimSpace(r) == role {
			return true
		}
	}
	return false
}

// vshCIDRs is what vault-ssh-helper's validateIP admits beyond the host's
// addresses, as prefixes: the entries in order up to the first it cannot
// parse (at which it refuses the login), read with the helper's documented
// leniencies: entries trimmed, empty ones skipped, a bare address one
// address.
func vshCIDRs(list string) []netip.Prefix {
	var out []netip.Prefix
	for _, e := range strings.Split(list, ",") {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		if a, err := netip.ParseAddr(e); err == nil && !strings.Contains(e, "/") && a.Zone() == "" {
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		_, n, err := net.ParseCIDR(e)
		if err != nil {
			break
		}
		a, _ := netip.AddrFromSlice(n.IP)
		ones, _ := n.Mask.Size()
		if a.Is4In6() {
			a, ones = a.Unmap(), ones-96
		}
		out = append(out, netip.PrefixFrom(a, ones).Masked())
	}
	return out
}

// sameAsVSH says how c differs from vault-ssh-helper's v ("" when it does
// not). Values are compared trimmed (the helper trims them; vault-ssh-helper
// keeps the blanks, with which an address or a path does not work), the
// mount without its slashes; roles and CIDRs by what they admit.
func sameAsVSH(v *api.SSHHelperConfig, c *Config) string {
	trim := strings.TrimSpace
	var diffs []string
	eq := func(key, want, got string) {
		if want != got {
			diffs = append(diffs, fmt.Sprintf("%s: vault-ssh-helper %q, helper %q", key, want, got))
		}
	}
	if len(c.VaultAddrs) != 1 {
		diffs = append(diffs, fmt.Sprintf("vault addresses %q", c.VaultAddrs))
	} else {
		eq("vault_addr", trim(v.VaultAddr), c.VaultAddrs[0])
	}
	eq("ssh_mount_point", strings.Trim(trim(v.SSHMountPoint), "/"), c.SSHMountPoint)
	eq("namespace", trim(v.Namespace), c.Namespace)
	eq("ca_cert", trim(v.CACert), c.CACert)
	eq("ca_path", trim(v.CAPath), c.CAPath)
	eq("tls_server_name", trim(v.TLSServerName), c.TLSServerName)
	if v.TLSSkipVerify != c.TLSSkipVerify {
		diffs = append(diffs, fmt.Sprintf("tls_skip_verify: %v, %v", v.TLSSkipVerify, c.TLSSkipVerify))
	}
	probes := append([]string{"web", "db", "other", "*", "", " web "}, strings.Split(v.AllowedRoles, ",")...)
	for _, r := range probes {
		if want, got := vshRoleAllowed(v.AllowedRoles, r), c.RoleAllowed(strings.TrimSpace(r)); want != got {
			diffs = append(diffs, fmt.Sprintf("allowed_roles %q: role %q: vault-ssh-helper %v, helper %v", v.AllowedRoles, r, want, got))
		}
	}
	if want := vshCIDRs(trim(v.AllowedCidrList)); !(len(want) == 0 && len(c.AllowedCIDRs) == 0) && !reflect.DeepEqual(want, c.AllowedCIDRs) {
		diffs = append(diffs, fmt.Sprintf("allowed_cidr_list %q: vault-ssh-helper %v, helper %v", v.AllowedCidrList, want, c.AllowedCIDRs))
	}
	return strings.Join(diffs, "; ")
}

// vshAgree feeds src to both readers; whatever vault-ssh-helper accepts,
// the helper reads the same or refuses deliberately. It returns the
// refusal's name ("" when the helper read it, or vault-ssh-helper refused).
func vshAgree(t *testing.T, src string) string {
	t.Helper()
	v, verr := vshRead(src)
	c, err := parseConfig("config.hcl", []byte(src))
	if verr != nil {
		return ""
	}
	if err != nil {
		r := refusalOf(err)
		if r == "" {
			t.Fatalf("vault-ssh-helper reads %q (%+v); the helper refuses it, for no documented reason:\n%v", src, *v, err)
		}
		return r
	}
	if d := sameAsVSH(v, c); d != "" {
		t.Fatalf("for %q: %s", src, d)
	}
	return ""
}

func TestVaultSSHHelperAgrees(t *testing.T) {
	t.Setenv("VAULT_ALLOW_PENDING_REMOVAL_DUPLICATE_HCL_ATTRIBUTES", "true")
	dir := t.TempDir()
	capath := filepath.Join(dir, "cas")
	if err := os.Mkdir(capath, 0o755); err != nil {
		t.Fatal(err)
	}
	ca := tlsSrv.CACert
	a := `vault_addr = "https://v:8200"` + "\n"
	// Each file vault-ssh-helper 0.2.4 reads; "" the helper reads it the
	// same, else the deliberate refusal it meets.
	tests := map[string]struct{ src, refusal string }{
		"sample":           {"vault_addr = \"https://vault.example.com:8200\"\nssh_mount_point = \"ssh\"\nca_cert = \"" + ca + "\"\ntls_skip_verify = false\nallowed_roles = \"*\"\n", ""},
		"every key":        {a + "ssh_mount_point = \"ssh-otp\"\nnamespace = \"team/a\"\nca_cert = \"" + ca + "\"\nca_path = \"" + capath + "\"\nallowed_cidr_list = \"10.0.0.0/8,192.168.0.0/16\"\nallowed_roles = \"web, db\"\ntls_skip_verify = true\ntls_server_name = \"vault\"\n", ""},
		"ca_path alone":    {a + "ca_path = \"" + capath + "\"\n", ""},
		"ca_path ignored":  {a + "ca_cert = \"" + ca + "\"\nca_path = \"/nonexistent\"\n", ""},
		"repeated key":     {a + "vault_addr = \"https://w:8200\"\n", ""},
		"repeated, quoted": {a + "\"vault_addr\" = \"https://w:8200\"\n", ""},
		"quoted key":       {"\"vault_addr\" = \"https://v\"\n\"allowed_roles\" = \"web\"\n", ""},
		"escaped key":      {"\"vault\\u005faddr\" = \"https://v\"\n", ""},
		"one line":         {"vault_addr = \"https://v\" allowed_roles = \"*\"\n", ""},
		"commas":           {"vault_addr = \"https://v\",\nallowed_roles = \"*\",\n", ""},
		"lone comma line":  {a + ",\n", ""},
		"key = on lines":   {"vault_addr\n=\n\"https://v\"\n", ""},
		"block comment":    {"vault_addr = \"https://v\" /* c\n d */ allowed_roles = \"web\"\n", ""},
		"lone CR":          {"vault_addr = \"https://v\"\r\rallowed_roles = \"web\"\r", ""},
		"CRLF":             {"vault_addr = \"https://v\"\r\nallowed_roles = \"web\"\r\n", ""},
		"integer text":     {a + "namespace = 007\n", ""},
		"hex integer":      {a + "namespace = 0X1F\n", ""},
		"negative zero":    {a + "namespace = -0\n", ""},
		"long integer":     {a + "namespace = 99999999999999999999999\n", ""},
		"integer role":     {a + "allowed_roles = 5\n", ""},
		"negative role":    {a + "allowed_roles = -1\n", ""},
		"integer address":  {"vault_addr = 5\n", "address"},
		"HCL 1 escapes":    {a + "namespace = \"\\x41\\101\\a\\v\\f\\b\"\n", ""},
		"template as text": {a + "namespace = \"${x} %{y}\"\n", ""},
		"template quotes":  {a + "namespace = \"${\"a\"}\"\n", ""},
		"template lines":   {a + "namespace = \"${a\nb}\"\n", ""},
		"template escape":  {a + "namespace = \"${a\\nb}\"\n", ""},
		"double dollar":    {a + "namespace = \"$${x}\"\n", "$${"},
		"double percent":   {a + "namespace = \"%%{x}\"\n", "$${"},
		"heredoc":          {"vault_addr = <<EOF\nhttps://v\nEOF\nallowed_roles = <<-EOT\n    web,\n      db\n    EOT\n", ""},
		"heredoc indent":   {a + "namespace = <<-EOF\n    a\n      b\n    EOF\n", ""},
		"heredoc uneven":   {a + "namespace = <<-EOF\n    a\n  b\n    EOF\n", ""},
		"heredoc end":      {"vault_addr = <<EOF\n  https://v\n  EOF\n", ""},
		"heredoc CRLF":     {a + "namespace = <<EOF\r\na\r\nEOF\r\n", ""},
		"heredoc $${":      {a + "namespace = <<EOF\n$${a}\nEOF\n", "$${"},
		"padded values":    {"vault_addr = \" https://v \"\nnamespace = \" n \"\nallowed_roles = \" * \"\n", ""},
		"mount slashes":    {a + "ssh_mount_point = \"/ssh/\"\n", ""},
		"empty mount":      {a + "ssh_mount_point = \"\"\n", "mount"},
		"slash mount":      {a + "ssh_mount_point = \"/\"\n", "mount"},
		"dotdot mount":     {a + "ssh_mount_point = \"ssh/../x\"\n", "mount"},
		"dots in a mount":  {a + "ssh_mount_point = \"ssh..prod\"\n", ""},
		"roles with *":     {a + "allowed_roles = \"web,*\"\n", ""},
		"* and a comma":    {a + "allowed_roles = \"*,\"\n", ""},
		"* heredoc":        {a + "allowed_roles = <<EOF\n*\nEOF\n", ""},
		"* tab":            {a + "allowed_roles = \"*\\t\"\n", ""},
		"roles spaces":     {a + "allowed_roles = \" web , db ,\"\n", ""},
		"bad cidr":         {a + "allowed_cidr_list = \"10.0.0.0/8,nope,192.168.0.0/16\"\n", ""},
		"cidr host bits":   {a + "allowed_cidr_list = \"10.1.2.3/8\"\n", ""},
		"mapped cidr":      {a + "allowed_cidr_list = \"::ffff:10.0.0.0/104\"\n", ""},
		"cidr spaces":      {a + "allowed_cidr_list = \" 10.0.0.0/8 , 192.168.0.0/16\"\n", ""},
		"userinfo":         {"vault_addr = \"https://u:p@v\"\n", "address"},
		"blank address":    {"vault_addr = \" \"\n", "address"},
		"missing CA":       {a + "ca_cert = \"/nonexistent.pem\"\n", "CA"},
		"raw CR":           {a + "namespace = \"a\rb\"\n", "not text"},
		"non-ASCII byte":   {a + "namespace = \"\\xff\"\n", "not text"},
		"lone surrogate":   {a + "namespace = \"\\ud800\"\n", "not text"},
		"empty values":     {a + "namespace = \"\"\nca_cert = \"\"\nallowed_roles = \"\"\n", ""},
		// JSON, by content whatever the name (HCL 1's rule).
		"json":               {`{"vault_addr": "https://v", "allowed_roles": "*", "tls_skip_verify": true}`, ""},
		"json repeated":      {`{"vault_addr": "https://v", "vault_addr": "https://w"}`, ""},
		"json blank first":   {"  \n {\"vault_addr\": \"https://v\"}", ""},
		"json trailing ,":    {`{"vault_addr": "https://v",}`, ""},
		"json after":         {`{"vault_addr": "https://v"} {"allowed_roles": "x"}`, ""},
		"json no comma":      {`{"vault_addr": "https://v" "allowed_roles": "x"}`, ""},
		"json unclosed":      {`{"vault_addr": "https://v"`, ""},
		"json no value":      {`{"vault_addr": "https://v", "namespace":`, ""},
		"json integers":      {`{"vault_addr": "https://v", "namespace": -5, "allowed_roles": 5}`, ""},
		"json null":          {`{"vault_addr": "https://v", "namespace": null, "allowed_roles": null}`, ""},
		"json null mount":    {`{"vault_addr": "https://v", "ssh_mount_point": null}`, "mount"},
		"json HCL 1 escapes": {`{"vault_addr": "https://v\x41", "namespace": "\a\101\t"}`, ""},
		"json raw tab":       {"{\"vault_addr\": \"https://v\", \"namespace\": \"a\tb\"}", ""},
		"json template":      {`{"vault_addr": "https://v", "namespace": "$${x} ${y}"}`, ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := vshRead(tc.src); err != nil {
				t.Fatalf("vault-ssh-helper refuses it: %v", err)
			}
			if got := vshAgree(t, tc.src); got != tc.refusal {
				_, err := parseConfig("config.hcl", []byte(tc.src))
				t.Fatalf("refusal %q, want %q (%v)", got, tc.refusal, err)
			}
		})
	}
}

// Any file: whatever vault-ssh-helper reads, the helper reads the same or
// refuses it for a reason of deliberateRefusals.
func FuzzVaultSSHHelperAgrees(f *testing.F) {
	f.Setenv("VAULT_ALLOW_PENDING_REMOVAL_DUPLICATE_HCL_ATTRIBUTES", "true")
	for _, s := range []string{
		"vault_addr = \"https://v:8200\"\nallowed_roles = \"web,db\"\nallowed_cidr_list = \"10.0.0.0/8\"\n",
		"\"vault_addr\" = \"https://v\", namespace = 007 allowed_roles = \"*\"\nvault_addr = \"https://w\"\n",
		"vault_addr = <<-EOF\n  https://v\n  EOF\nnamespace = \"${a\"b}\\x41\"\ntls_skip_verify = true\n",
		"{\"vault_addr\": \"https://v\", \"namespace\": -0, \"tls_skip_verify\": false,}",
		"{\"vault_addr\": \"https://v\" \"x\"}", "vault_addr = \"https://v\"\nssh_mount_point = \"/a/\"\nallowed_roles = \" * \"\n",
		"/* c */ vault_addr\n= \"https://v\" # x\nallowed_cidr_list = \"10.0.0.0/8,,192.168.1.1\"\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		vshAgree(t, src)
	})
}

// Oddities that work, each read the way vault-ssh-helper reads it, with a
// warning naming file:line:col and the key.
func TestConfigWarnings(t *testing.T) {
	ca := tlsSrv.CACert
	a := `vault_addr = "https://v"` + "\n"
	tests := map[string]struct {
		src   string
		want  []string
		check func(c *Config) bool
	}{
		"repeated key": {a + "vault_addr = \"https://w\"\n",
			[]string{`config.hcl:2:1: key "vault_addr" set again (first on line 1): the last value counts, as in vault-ssh-helper`},
			func(c *Config) bool { return c.VaultAddrs[0] == "https://w" }},
		"json repeated key": {"{\"vault_addr\": \"https://v\",\n \"allowed_roles\": \"a\", \"allowed_roles\": \"b\"}",
			[]string{`config.hcl:2:24: key "allowed_roles" set again (first on line 2): the last value counts, as in vault-ssh-helper`},
			func(c *Config) bool { return c.RoleAllowed("b") && !c.RoleAllowed("a") }},
		"bad cidr": {a + "allowed_cidr_list = \"10.0.0.0/8, nope, 192.168.0.0/16\"\n",
			[]string{`config.hcl:2:21: allowed_cidr_list: "nope" is not a CIDR block or IP address: no address is admitted by it or the entries after it (vault-ssh-helper's rule)`},
			func(c *Config) bool { return len(c.AllowedCIDRs) == 1 && c.AllowedCIDRs[0].String() == "10.0.0.0/8" }},
		"star among roles": {a + "allowed_roles = \"web, *\"\n",
			[]string{`config.hcl:2:17: allowed_roles: "*" admits any role only on its own; among other roles it names a role no OTP has (vault-ssh-helper's rule)`},
			func(c *Config) bool { return c.RoleAllowed("web") && !c.RoleAllowed("db") && !c.AnyRole() }},
		"padded star": {a + "allowed_roles = \" * \"\n",
			[]string{`config.hcl:2:17: allowed_roles: "*" admits any role only as the whole value, without blanks or commas; this one names a role no OTP has, so every login is refused (vault-ssh-helper's rule)`},
			func(c *Config) bool { return !c.AnyRole() && !c.RoleAllowed("web") }},
		"star heredoc": {a + "allowed_roles = <<EOF\n*\nEOF\n",
			[]string{`config.hcl:2:17: allowed_roles: "*" admits any role only as the whole value, without blanks or commas; this one names a role no OTP has, so every login is refused (vault-ssh-helper's rule)`},
			func(c *Config) bool { return !c.AnyRole() && !c.RoleAllowed("web") }},
		"star list": {a + "allowed_roles = [\"*\"]\n", nil,
			func(c *Config) bool { return c.AnyRole() }},
		"template": {a + "namespace = \"${team}\"\ntls_server_name = \"%{x}\"\n",
			[]string{`config.hcl:2:14: namespace: ${ is taken literally, as vault-ssh-helper takes it: nothing is substituted`},
			func(c *Config) bool { return c.Namespace == "${team}" }},
		"ca_path unused": {a + "ca_cert = \"" + ca + "\"\nca_path = \"/nonexistent\"\n",
			[]string{`config.hcl:3:11: ca_path: not used: ca_cert is set, and only its CA is trusted (vault-ssh-helper's rule)`},
			func(c *Config) bool { return c.CAPath == "/nonexistent" }},
		"ca files with http only": {"vault_addr = \"http://127.0.0.1:8200\"\nca_cert = \"/nonexistent/ca.pem\"\nca_path = \"/nonexistent\"\n",
			[]string{
				`config.hcl:2:11: ca_cert: not used, nor checked: every Vault address is http:// (as vault-ssh-helper's -dev drops it)`,
				`config.hcl:3:11: ca_path: not used, nor checked: every Vault address is http:// (as vault-ssh-helper's -dev drops it)`,
			},
			func(c *Config) bool { return c.CheckSchemes(true) == nil }},
		"json after the object": {"{\"vault_addr\": \"https://v\"}\n{\"allowed_roles\": \"*\"}\n",
			[]string{`config.hcl:2:1: content after the JSON object is ignored, as vault-ssh-helper ignores it`},
			func(c *Config) bool { return len(c.AllowedRoles) == 0 }},
		"json no comma": {"{\"vault_addr\": \"https://v\"\n \"allowed_roles\": \"*\"}",
			[]string{`config.hcl:2:2: no comma before '"': the JSON object ends here and the rest of the file is ignored, as vault-ssh-helper ignores it`},
			func(c *Config) bool { return len(c.AllowedRoles) == 0 }},
		"json unclosed": {"{\"vault_addr\": \"https://v\"",
			[]string{`config.hcl:1:27: no closing }: the JSON object ends here and the rest of the file is ignored, as vault-ssh-helper ignores it`},
			func(c *Config) bool { return c.VaultAddrs[0] == "https://v" }},
		"none": {a + "\"allowed_roles\" = \"web\", namespace = 007\n", nil,
			func(c *Config) bool { return c.Namespace == "007" }},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c, err := parseConfig("config.hcl", []byte(tc.src))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(c.Warnings, tc.want) {
				t.Errorf("warnings =\n%q\nwant\n%q", c.Warnings, tc.want)
			}
			if !tc.check(c) {
				t.Errorf("config %+v", c)
			}
		})
	}
}
