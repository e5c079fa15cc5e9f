package pam

import (
	"bytes"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// loadSimple reads the config files people write — vault-ssh-helper's flat
// format: blank lines, whole-line # or // comments, and key = value with
// value a plain "string", true, false or a one-line ["list", "of",
// "strings"] — without the HCL parser, whose first run in a fresh process
// is a good part of a login's cost. ok is false for anything else
// (numbers, escapes, templates, non-ASCII, JSON, unknown or repeated keys,
// any value or combination the config refuses): LoadConfig then reads the
// file with the HCL parser, so that results and error messages are exactly
// the HCL parser's. TestSimpleLoaderAgreesWithHCL and FuzzLoadConfig check
// that both readers agree on every file loadSimple accepts.
func loadSimple(path string, src []byte) (*Config, bool) {
	if strings.EqualFold(filepath.Ext(path), ".json") {
		return nil, false
	}
	vals := make(map[string]simpleValue, 8)
	for len(src) > 0 {
		var line []byte
		line, src, _ = bytes.Cut(src, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		for _, b := range line {
			if (b < 0x20 && b != '\t') || b >= 0x7f {
				return nil, false
			}
		}
		line = bytes.Trim(line, " \t")
		if len(line) == 0 || line[0] == '#' || bytes.HasPrefix(line, []byte("//")) {
			continue
		}
		k, v, found := bytes.Cut(line, []byte("="))
		if !found {
			return nil, false
		}
		key := string(bytes.TrimRight(k, " \t"))
		if !knownKey(key) {
			return nil, false
		}
		if _, dup := vals[key]; dup {
			return nil, false
		}
		sv, ok := parseSimpleValue(bytes.TrimLeft(v, " \t"))
		if !ok {
			return nil, false
		}
		vals[key] = sv
	}
	c := newConfig(path)
	str := func(key string, dst *string) bool {
		v, ok := vals[key]
		switch {
		case !ok:
		case v.kind == simpleString:
			*dst = strings.TrimSpace(v.s)
		case v.kind == simpleBool:
			*dst = strconv.FormatBool(v.b)
		default:
			return false
		}
		return true
	}
	var addr string
	for key, dst := range map[string]*string{
		"vault_addr": &addr, "ssh_mount_point": &c.SSHMountPoint, "namespace": &c.Namespace,
		"ca_cert": &c.CACert, "ca_path": &c.CAPath, "tls_server_name": &c.TLSServerName,
		"proxy_addr": &c.ProxyAddr, "mode": &c.Mode, "totp_mount": &c.TOTPMount,
		"totp_key_pattern": &c.TOTPKeyPattern, "token_file": &c.TokenFile, "audit": &c.Audit,
		"audit_file": &c.AuditFile,
	} {
		if !str(key, dst) {
			return nil, false
		}
	}
	if v, ok := vals["tls_skip_verify"]; ok {
		switch v.kind {
		case simpleBool:
			c.TLSSkipVerify = v.b
		case simpleString:
			b, err := strconv.ParseBool(strings.TrimSpace(v.s))
			if err != nil {
				return nil, false
			}
			c.TLSSkipVerify = b
		default:
			return nil, false
		}
	}
	if v, ok := vals["timeout"]; ok {
		if v.kind != simpleString {
			return nil, false
		}
		s := strings.TrimSpace(v.s)
		if n, err := strconv.ParseFloat(s, 64); err == nil && n >= 0 {
			c.Timeout = time.Duration(n * float64(time.Second))
		} else if d, err := time.ParseDuration(s); err == nil && d >= 0 {
			c.Timeout = d
		} else {
			return nil, false
		}
		if c.Timeout <= 0 {
			return nil, false
		}
	}
	list := func(key string) ([]string, bool, bool) {
		v, ok := vals[key]
		if !ok {
			return nil, false, true
		}
		var raw []string
		switch v.kind {
		case simpleString:
			raw = strings.Split(v.s, ",")
		case simpleList:
			raw = v.list
		default:
			return nil, true, false
		}
		out := make([]string, 0, len(raw))
		for _, s := range raw {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
		return out, true, true
	}
	addrs, set, ok := list("vault_addrs")
	if !ok {
		return nil, false
	}
	if set {
		c.VaultAddrs = addrs
	}
	if addr != "" {
		c.VaultAddrs = append([]string{addr}, c.VaultAddrs...)
	}
	roles, set, ok := list("allowed_roles")
	if !ok {
		return nil, false
	}
	if set {
		c.AllowedRoles = roles
	}
	cidrs, _, ok := list("allowed_cidr_list")
	if !ok {
		return nil, false
	}
	for _, s := range cidrs {
		pfx, err := parsePrefix(s)
		if err != nil {
			return nil, false
		}
		c.AllowedCIDRs = append(c.AllowedCIDRs, pfx)
	}
	diags := c.validate(func(string) hcl.Range { return hcl.Range{} }, func(key string) bool { _, ok := vals[key]; return ok })
	if len(diags) > 0 {
		return nil, false
	}
	return c, true
}

func knownKey(k string) bool {
	for _, key := range keys {
		if k == key {
			return true
		}
	}
	return false
}

type simpleKind int

const (
	simpleString simpleKind = iota + 1
	simpleBool
	simpleList
)

type simpleValue struct {
	kind simpleKind
	s    string
	b    bool
	list []string
}

// parseSimpleValue reads the value part of a line (trailing blanks already
// trimmed): a plain string, true, false, or a list of plain strings.
func parseSimpleValue(v []byte) (simpleValue, bool) {
	switch string(v) {
	case "true":
		return simpleValue{kind: simpleBool, b: true}, true
	case "false":
		return simpleValue{kind: simpleBool}, true
	}
	if len(v) > 0 && v[0] == '"' {
		s, rest, ok := plainString(v)
		if !ok || len(rest) != 0 {
			return simpleValue{}, false
		}
		return simpleValue{kind: simpleString, s: s}, true
	}
	if len(v) < 2 || v[0] != '[' || v[len(v)-1] != ']' {
		return simpleValue{}, false
	}
	rest := bytes.Trim(v[1:len(v)-1], " \t")
	list := []string{}
	for len(rest) > 0 {
		s, r, ok := plainString(rest)
		if !ok {
			return simpleValue{}, false
		}
		list = append(list, s)
		r = bytes.TrimLeft(r, " \t")
		if len(r) == 0 {
			break
		}
		if r[0] != ',' {
			return simpleValue{}, false
		}
		rest = bytes.TrimLeft(r[1:], " \t")
	}
	return simpleValue{kind: simpleList, list: list}, true
}

// plainString reads a quoted string at the start of b that holds no escape
// and no template sequence ("${", "%{"), and returns it and what follows.
func plainString(b []byte) (string, []byte, bool) {
	if len(b) == 0 || b[0] != '"' {
		return "", nil, false
	}
	end := bytes.IndexByte(b[1:], '"')
	if end < 0 {
		return "", nil, false
	}
	s := b[1 : 1+end]
	if bytes.ContainsAny(s, "\\\t") || bytes.Contains(s, []byte("${")) || bytes.Contains(s, []byte("%{")) {
		return "", nil, false
	}
	return string(s), b[2+end:], true
}
