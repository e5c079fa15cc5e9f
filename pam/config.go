package pam

import (
	"crypto/x509"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"time"
)

// Modes of verification.
const (
	ModeOTP  = "otp"  // Vault SSH secrets engine one-time passwords (the default)
	ModeTOTP = "totp" // time-based codes checked by Vault's TOTP engine
)

// Audit destinations.
const (
	AuditAuto    = "auto"    // the journal when its socket exists, else syslog, else FallbackFile
	AuditJournal = "journal" // the systemd journal only
	AuditSyslog  = "syslog"  // syslog (/dev/log) only
	AuditOff     = "off"     // no system record (audit_file still works)
)

// DefaultTimeout bounds a whole run: well under sshd's LoginGraceTime (120 s)
// and under a person's patience, yet room for TLS, a retry and failover.
const DefaultTimeout = 10 * time.Second

// Config is the helper's configuration file: vault-ssh-helper's keys, which
// keep their meaning, plus latchkey's.
type Config struct {
	// VaultAddrs are tried in order (vault_addrs, or vault_addr alone).
	VaultAddrs    []string
	SSHMountPoint string
	Namespace     string
	CACert        string
	CAPath        string
	TLSSkipVerify bool
	TLSServerName string
	// ProxyAddr, when set, is the HTTP(S) proxy Vault is reached through;
	// the environment's HTTP_PROXY and friends are never used.
	ProxyAddr string
	// AllowedCIDRs admits a returned IP that is not one of the host's own
	// (NAT, load balancers). Empty: only the host's addresses.
	AllowedCIDRs []netip.Prefix
	// AllowedRoles lists role names; "*" alone admits any; empty refuses
	// all.
	AllowedRoles []string
	// starIsRole is set when the file's allowed_roles holds "*" but is not
	// exactly "*" (" * ", "*,", a heredoc): vault-ssh-helper then matches
	// "*" as a role name, which no OTP has, and so does the helper.
	starIsRole bool

	// Timeout bounds the whole run (default 10s).
	Timeout time.Duration
	// Mode is ModeOTP or ModeTOTP.
	Mode string
	// TOTPMount is the TOTP engine's mount (default "totp"); TOTPKeyPattern
	// names the key from the user: "{{user}}" is replaced by PAM_USER
	// (default "{{user}}").
	TOTPMount      string
	TOTPKeyPattern string
	// TokenFile holds the Vault token TOTP mode uses (typically the agent's
	// sink); never read from the environment.
	TokenFile string
	// Audit is where the per-attempt record goes (default auto); AuditFile,
	// when set, also appends it as a JSON line (for fail2ban and friends).
	Audit     string
	AuditFile string

	// Path is the file the config came from.
	Path string
	// fileInfo is the config file's, from the descriptor LoadConfig read
	// it through (nil for a config parsed from bytes); see CheckWriters.
	fileInfo os.FileInfo
	// caPath is ca_path's pool as CheckWriters read and checked it (nil
	// until then); rootCAs trusts these bytes, not a second read.
	caPath *caPathPool
	// Warnings are what the file holds that works, but probably not as
	// meant (a repeated key, an allowed_cidr_list entry that is no CIDR,
	// ...), each "file:line:col: message" naming the key. The helper logs
	// them, doctor prints them.
	Warnings []string
}

// keys are every key the file may hold; anything else is an error.
var keys = []string{
	"vault_addr", "vault_addrs", "ssh_mount_point", "namespace", "ca_cert", "ca_path",
	"tls_skip_verify", "tls_server_name", "proxy_addr", "allowed_cidr_list", "allowed_roles",
	"timeout", "mode", "totp_mount", "totp_key_pattern", "token_file", "audit", "audit_file",
}

// LoadConfig reads and validates the config file at path. A missing or
// unreadable file, one that is not a regular file (a FIFO would hang the
// login) or one over 1 MiB says so ("read config <path>: ..."); any other
// problem is reported as "<file>:<line>:<col>: <message>" naming the key,
// one line per problem.
func LoadConfig(path string) (*Config, error) {
	src, fi, err := readRegularInfo(path, maxConfigSize)
	if err != nil {
		return nil, fmt.Errorf("read config %s: %w", path, err)
	}
	c, err := parseConfig(path, src)
	if err != nil {
		return nil, err
	}
	c.fileInfo = fi
	return c, nil
}

// newConfig is a Config with every default, read from path.
func newConfig(path string) *Config {
	return &Config{
		SSHMountPoint:  "ssh",
		Timeout:        DefaultTimeout,
		Mode:           ModeOTP,
		TOTPMount:      "totp",
		TOTPKeyPattern: "{{user}}",
		Audit:          AuditAuto,
		Path:           path,
	}
}

// stringField is a key whose value is one string, trimmed, and where it goes.
type stringField struct {
	key string
	dst *string
}

// stringFields lists the config's string keys (vault_addr into addr), in
// one place for the helper's reader and the test oracle.
func (c *Config) stringFields(addr *string) []stringField {
	return []stringField{
		{"vault_addr", addr},
		{"ssh_mount_point", &c.SSHMountPoint},
		{"namespace", &c.Namespace},
		{"ca_cert", &c.CACert},
		{"ca_path", &c.CAPath},
		{"tls_server_name", &c.TLSServerName},
		{"proxy_addr", &c.ProxyAddr},
		{"mode", &c.Mode},
		{"totp_mount", &c.TOTPMount},
		{"totp_key_pattern", &c.TOTPKeyPattern},
		{"token_file", &c.TokenFile},
		{"audit", &c.Audit},
		{"audit_file", &c.AuditFile},
	}
}

// parseConfig reads src (configparse.go) into a Config and validates it.
func parseConfig(path string, src []byte) (*Config, error) {
	p, err := parseFile(path, src)
	if err != nil {
		return nil, err
	}
	var errs confErrors
	c := newConfig(path)
	str := func(key string, dst *string) {
		if it := p.items[key]; it != nil {
			v, e := p.asString(it)
			if e != nil {
				errs = append(errs, e)
				return
			}
			*dst = strings.TrimSpace(v)
		}
	}
	var addr string
	for _, f := range c.stringFields(&addr) {
		str(f.key, f.dst)
	}
	if it := p.items["tls_skip_verify"]; it != nil {
		v, e := p.asBool(it)
		if e != nil {
			errs = append(errs, e)
		}
		c.TLSSkipVerify = v
	}
	if it := p.items["timeout"]; it != nil {
		d, e := p.asDuration(it)
		if e != nil {
			errs = append(errs, e)
		} else {
			c.Timeout = d
		}
		if e == nil && c.Timeout <= 0 {
			errs = append(errs, p.errAt(it.valOff, `timeout: want a positive duration such as "10s"`))
		}
	}
	list := func(key string) []string {
		it := p.items[key]
		if it == nil {
			return nil
		}
		v, e := p.asList(it)
		if e != nil {
			errs = append(errs, e)
		}
		return v
	}
	if _, ok := p.items["vault_addrs"]; ok {
		c.VaultAddrs = list("vault_addrs")
	}
	if addr != "" {
		// vault_addr comes first: it is the address the file always named.
		c.VaultAddrs = append([]string{addr}, c.VaultAddrs...)
	}
	if it, ok := p.items["allowed_roles"]; ok {
		c.AllowedRoles = list("allowed_roles")
		c.starIsRole = slices.Contains(c.AllowedRoles, "*") && !p.isExactly(it, "*")
	}
	switch {
	case len(c.AllowedRoles) > 1 && slices.Contains(c.AllowedRoles, "*"):
		p.warnAt(p.items["allowed_roles"].valOff, `allowed_roles: "*" admits any role only on its own; among other roles it names a role no OTP has (vault-ssh-helper's rule)`)
	case c.starIsRole:
		p.warnAt(p.items["allowed_roles"].valOff, `allowed_roles: "*" admits any role only as the whole value, without blanks or commas; this one names a role no OTP has, so every login is refused (vault-ssh-helper's rule)`)
	}
	for _, s := range list("allowed_cidr_list") {
		pfx, err := parsePrefix(s)
		if err != nil {
			// vault-ssh-helper reads the list only at a login from an
			// address not the host's own, in order, and refuses the login at
			// the first entry it cannot read: so a login from the host's
			// addresses or an earlier entry's still works, and none other.
			p.warnAt(p.items["allowed_cidr_list"].valOff, "allowed_cidr_list: %v: no address is admitted by it or the entries after it (vault-ssh-helper's rule)", err)
			break
		}
		c.AllowedCIDRs = append(c.AllowedCIDRs, pfx)
	}
	switch {
	case len(c.VaultAddrs) > 0 && !c.hasHTTPS():
		for k, v := range map[string]string{"ca_cert": c.CACert, "ca_path": c.CAPath} {
			if v != "" {
				p.warnAt(p.items[k].valOff, "%s: not used, nor checked: every Vault address is http:// (as vault-ssh-helper's -dev drops it)", k)
			}
		}
	case c.CACert != "" && c.CAPath != "":
		p.warnAt(p.items["ca_path"].valOff, "ca_path: not used: ca_cert is set, and only its CA is trusted (vault-ssh-helper's rule)")
	}
	errs = append(errs, c.validate(func(key, format string, args ...any) *confError {
		off := 0
		if it := p.items[key]; it != nil {
			off = it.valOff
		}
		return p.errAt(off, format, args...)
	}, func(key string) bool { return p.items[key] != nil })...)
	if len(errs) > 0 {
		byPosition(errs)
		return nil, errs
	}
	byPosition(p.warnings)
	for _, w := range p.warnings {
		c.Warnings = append(c.Warnings, w.Error())
	}
	return c, nil
}

// byPosition sorts es by line and column, in file order.
func byPosition(es confErrors) {
	sort.SliceStable(es, func(i, j int) bool {
		return es[i].line < es[j].line || es[i].line == es[j].line && es[i].col < es[j].col
	})
}

// parsePrefix reads a CIDR, or a bare address as a one-address prefix.
func parsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR block or IP address", s)
		}
		return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
	}
	// net.ParseCIDR, as vault-ssh-helper: it takes "/08", which netip
	// refuses.
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR block", s)
	}
	a, _ := netip.AddrFromSlice(n.IP)
	bits, _ := n.Mask.Size()
	if a.Is4In6() {
		a, bits = a.Unmap(), bits-96
	}
	return netip.PrefixFrom(a, bits).Masked(), nil
}

// validate checks the combinations; each message names its key and, where
// the key is present, its position (else the file's start).
// errAt makes an error at a key's position; has tells whether the file set it.
func (c *Config) validate(errAt func(key, format string, args ...any) *confError, has func(key string) bool) confErrors {
	var diags confErrors
	if len(c.VaultAddrs) == 0 {
		diags = append(diags, errAt("vault_addr", `missing key "vault_addr" (or "vault_addrs")`))
	}
	for _, a := range c.VaultAddrs {
		if err := checkAddr(a); err != nil {
			key := "vault_addrs"
			if !has("vault_addrs") {
				key = "vault_addr"
			}
			diags = append(diags, errAt(key, "%s: %v", key, err))
		}
	}
	if c.ProxyAddr != "" {
		if err := checkAddr(c.ProxyAddr); err != nil {
			diags = append(diags, errAt("proxy_addr", "proxy_addr: %v", err))
		}
	}
	// The CA is checked now, so that a typo reads as a config error naming
	// the key (exit 3), not as every Vault being unreachable. Not with
	// only http:// addresses (-dev), which never use it: vault-ssh-helper's
	// -dev drops ca_cert and ca_path unread.
	if c.hasHTTPS() && c.CACert != "" {
		if b, err := readRegular(c.CACert, maxCASize); err != nil {
			diags = append(diags, errAt("ca_cert", "ca_cert: %v", err))
		} else if !x509.NewCertPool().AppendCertsFromPEM(b) {
			diags = append(diags, errAt("ca_cert", "ca_cert: %s holds no PEM certificate", c.CACert))
		}
	}
	// With ca_cert set, vault-ssh-helper never looks at ca_path.
	if c.hasHTTPS() && c.CAPath != "" && c.CACert == "" {
		if fi, err := os.Stat(c.CAPath); err != nil {
			diags = append(diags, errAt("ca_path", "ca_path: %v", err))
		} else if !fi.IsDir() {
			diags = append(diags, errAt("ca_path", "ca_path: %s is not a directory (use ca_cert for a file)", c.CAPath))
		}
	}
	// Vault cleans a path before routing it: at "" or a ".." segment the
	// verify request lands above the mount ("ssh..prod" is a name).
	if strings.Trim(c.SSHMountPoint, "/") == "" || slices.Contains(strings.Split(c.SSHMountPoint, "/"), "..") {
		diags = append(diags, errAt("ssh_mount_point", "ssh_mount_point: want a mount path such as \"ssh\""))
	}
	c.SSHMountPoint = strings.Trim(c.SSHMountPoint, "/")
	c.TOTPMount = strings.Trim(c.TOTPMount, "/")
	switch c.Mode {
	case ModeOTP:
	case ModeTOTP:
		if c.TokenFile == "" {
			diags = append(diags, errAt("token_file", `token_file: required when mode = "totp" (the helper never reads a token from the environment)`))
		}
		if !strings.Contains(c.TOTPKeyPattern, "{{user}}") {
			diags = append(diags, errAt("totp_key_pattern", `totp_key_pattern: must contain "{{user}}"`))
		}
	default:
		diags = append(diags, errAt("mode", `mode: want "otp" or "totp", not %q`, c.Mode))
	}
	switch c.Audit {
	case AuditAuto, AuditJournal, AuditSyslog, AuditOff:
	default:
		diags = append(diags, errAt("audit", `audit: want "auto", "journal", "syslog" or "off", not %q`, c.Audit))
	}
	return diags
}

// CheckSchemes applies vault-ssh-helper's -dev rule: in dev mode only
// http:// addresses are allowed; otherwise http:// is refused, so that a
// production login never crosses the network in clear text.
func (c *Config) CheckSchemes(dev bool) error {
	for _, a := range c.VaultAddrs {
		isHTTP := strings.HasPrefix(strings.ToLower(a), "http://")
		switch {
		case dev && !isHTTP:
			return fmt.Errorf("%s: vault address %q: -dev allows only http:// addresses", c.Path, a)
		case !dev && isHTTP:
			return fmt.Errorf("%s: vault address %q: http:// is refused without -dev; use https://", c.Path, a)
		}
	}
	return nil
}

// checkAddr accepts an absolute http(s)://host[:port] URL without userinfo:
// a password in an address would be printed wherever the address is (logs,
// audit records), so it is refused rather than stripped.
func checkAddr(a string) error {
	u, err := url.Parse(a)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		// The parser's error repeats the address, which may hold a password.
		if strings.Contains(a, "@") {
			return fmt.Errorf("want http(s)://host[:port]")
		}
		return fmt.Errorf("vault address %q: want http(s)://host[:port]", a)
	}
	if u.User != nil {
		return fmt.Errorf("address holds a user name or password (user@host), refused: it would be logged")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("address %q: want http(s)://host[:port] without a query", redactURL(u))
	}
	return nil
}

// AnyRole reports whether AllowedRoles admits every role: it is "*" alone,
// and the file wrote it so, exactly. Among other roles, or written with
// blanks or commas, "*" names a role, which no OTP has (a Vault role name
// has no *): vault-ssh-helper's rule, which latchkey keeps rather than
// admit more than the file did.
func (c *Config) AnyRole() bool {
	return !c.starIsRole && len(c.AllowedRoles) == 1 && c.AllowedRoles[0] == "*"
}

// RoleAllowed reports whether role is admitted by AllowedRoles.
func (c *Config) RoleAllowed(role string) bool {
	return c.AnyRole() || role != "" && slices.Contains(c.AllowedRoles, role)
}
