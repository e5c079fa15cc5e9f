package pam

import (
	"crypto/x509"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"

	"github.com/latchkey/latchkey/internal/hclconf"
)

// Modes of verification.
const (
	ModeOTP  = "otp"  // Vault SSH secrets engine one-time passwords (the default)
	ModeTOTP = "totp" // time-based codes checked by Vault's TOTP engine
)

// Audit destinations.
const (
	AuditAuto    = "auto"    // the journal when its socket exists, else syslog, else stderr
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
	// AllowedRoles lists role names; "*" admits any; empty refuses all.
	AllowedRoles []string

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
// problem is reported as "<file>:<line>:<col>: <message>" naming the key.
func LoadConfig(path string) (*Config, error) {
	src, err := readRegular(path, maxConfigSize)
	if err != nil {
		return nil, fmt.Errorf("read config %s: %w", path, err)
	}
	if c, ok := loadSimple(path, src); ok {
		return c, nil
	}
	return loadHCL(path, src)
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

// loadHCL reads src with the HCL parser: every file, and the only reader
// of one that is wrong (its errors name file, line, column and key).
func loadHCL(path string, src []byte) (*Config, error) {
	p := hclparse.NewParser()
	f, err := hclconf.ParseBytes(p, path, src)
	if err != nil {
		return nil, err
	}
	attrs, diags := hclconf.Flat(f.Body, keys...)
	c := newConfig(path)
	str := func(key string, dst *string) {
		if a := attrs[key]; a != nil {
			v, d := hclconf.String(a)
			diags = append(diags, d...)
			*dst = strings.TrimSpace(v)
		}
	}
	var addr string
	str("vault_addr", &addr)
	str("ssh_mount_point", &c.SSHMountPoint)
	str("namespace", &c.Namespace)
	str("ca_cert", &c.CACert)
	str("ca_path", &c.CAPath)
	str("tls_server_name", &c.TLSServerName)
	str("proxy_addr", &c.ProxyAddr)
	str("mode", &c.Mode)
	str("totp_mount", &c.TOTPMount)
	str("totp_key_pattern", &c.TOTPKeyPattern)
	str("token_file", &c.TokenFile)
	str("audit", &c.Audit)
	str("audit_file", &c.AuditFile)
	if a := attrs["tls_skip_verify"]; a != nil {
		v, d := hclconf.Bool(a)
		diags = append(diags, d...)
		c.TLSSkipVerify = v
	}
	if a := attrs["timeout"]; a != nil {
		v, d := hclconf.Duration(a)
		diags = append(diags, d...)
		if !d.HasErrors() && v <= 0 {
			diags = append(diags, hclconf.Errorf(a.Expr.Range(), `timeout: want a positive duration such as "10s"`))
		}
		c.Timeout = v
	}
	if a := attrs["vault_addrs"]; a != nil {
		v, d := hclconf.StringList(a)
		diags = append(diags, d...)
		c.VaultAddrs = v
	}
	if addr != "" {
		// vault_addr comes first: it is the address the file always named.
		c.VaultAddrs = append([]string{addr}, c.VaultAddrs...)
	}
	if a := attrs["allowed_roles"]; a != nil {
		v, d := hclconf.StringList(a)
		diags = append(diags, d...)
		c.AllowedRoles = v
	}
	if a := attrs["allowed_cidr_list"]; a != nil {
		v, d := hclconf.StringList(a)
		diags = append(diags, d...)
		for _, s := range v {
			pfx, err := parsePrefix(s)
			if err != nil {
				diags = append(diags, hclconf.Errorf(a.Expr.Range(), "allowed_cidr_list: %v", err))
				continue
			}
			c.AllowedCIDRs = append(c.AllowedCIDRs, pfx)
		}
	}
	diags = append(diags, c.validate(func(key string) hcl.Range {
		if a := attrs[key]; a != nil {
			return a.Expr.Range()
		}
		return f.Body.MissingItemRange()
	}, func(key string) bool { return attrs[key] != nil })...)
	if err := hclconf.Err(diags); err != nil {
		return nil, err
	}
	return c, nil
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
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR block", s)
	}
	if p.Addr().Is4In6() {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// validate checks the combinations; each message names its key and, where
// the key is present, its position (else the file's).
// at gives a key's position; has, whether the file set it.
func (c *Config) validate(at func(key string) hcl.Range, has func(key string) bool) hcl.Diagnostics {
	var diags hcl.Diagnostics
	if len(c.VaultAddrs) == 0 {
		diags = append(diags, hclconf.Errorf(at("vault_addr"), `missing key "vault_addr" (or "vault_addrs")`))
	}
	for _, a := range c.VaultAddrs {
		if err := checkAddr(a); err != nil {
			key := "vault_addrs"
			if !has("vault_addrs") {
				key = "vault_addr"
			}
			diags = append(diags, hclconf.Errorf(at(key), "%s: %v", key, err))
		}
	}
	if c.ProxyAddr != "" {
		if err := checkAddr(c.ProxyAddr); err != nil {
			diags = append(diags, hclconf.Errorf(at("proxy_addr"), "proxy_addr: %v", err))
		}
	}
	// The CA is checked now, so that a typo reads as a config error naming
	// the key (exit 3), not as every Vault being unreachable.
	if c.CACert != "" {
		if b, err := readRegular(c.CACert, maxCASize); err != nil {
			diags = append(diags, hclconf.Errorf(at("ca_cert"), "ca_cert: %v", err))
		} else if !x509.NewCertPool().AppendCertsFromPEM(b) {
			diags = append(diags, hclconf.Errorf(at("ca_cert"), "ca_cert: %s holds no PEM certificate", c.CACert))
		}
	}
	if c.CAPath != "" {
		if fi, err := os.Stat(c.CAPath); err != nil {
			diags = append(diags, hclconf.Errorf(at("ca_path"), "ca_path: %v", err))
		} else if !fi.IsDir() {
			diags = append(diags, hclconf.Errorf(at("ca_path"), "ca_path: %s is not a directory (use ca_cert for a file)", c.CAPath))
		}
	}
	if c.SSHMountPoint == "" || strings.Contains(c.SSHMountPoint, "..") {
		diags = append(diags, hclconf.Errorf(at("ssh_mount_point"), "ssh_mount_point: want a mount path such as \"ssh\""))
	}
	c.SSHMountPoint = strings.Trim(c.SSHMountPoint, "/")
	c.TOTPMount = strings.Trim(c.TOTPMount, "/")
	switch c.Mode {
	case ModeOTP:
	case ModeTOTP:
		if c.TokenFile == "" {
			diags = append(diags, hclconf.Errorf(at("token_file"), `token_file: required when mode = "totp" (the helper never reads a token from the environment)`))
		}
		if !strings.Contains(c.TOTPKeyPattern, "{{user}}") {
			diags = append(diags, hclconf.Errorf(at("totp_key_pattern"), `totp_key_pattern: must contain "{{user}}"`))
		}
	default:
		diags = append(diags, hclconf.Errorf(at("mode"), `mode: want "otp" or "totp", not %q`, c.Mode))
	}
	switch c.Audit {
	case AuditAuto, AuditJournal, AuditSyslog, AuditOff:
	default:
		diags = append(diags, hclconf.Errorf(at("audit"), `audit: want "auto", "journal", "syslog" or "off", not %q`, c.Audit))
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

// RoleAllowed reports whether role is admitted by AllowedRoles.
func (c *Config) RoleAllowed(role string) bool {
	for _, r := range c.AllowedRoles {
		if r == "*" || r == role {
			return true
		}
	}
	return false
}
