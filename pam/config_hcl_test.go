package pam

import (
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2/hclparse"

	"github.com/latchkey/latchkey/internal/hclconf/hcloracle"
)

// loadHCL is the reader the helper used before configparse.go: the HCL
// parser with internal/hclconf/hcloracle's conversions. Tests keep it as the oracle
// that the helper's own reader must agree with (TestParserAgreesWithHCL,
// FuzzLoadConfig); the helper binary no longer links it.
func loadHCL(path string, src []byte) (*Config, error) {
	p := hclparse.NewParser()
	// The syntax by content, as HCL 1 and the helper choose it (isJSON):
	// HCL 2 goes by the file's name.
	name := "config.hcl"
	if isJSON(src) {
		name = "config.json"
	}
	f, err := hcloracle.ParseBytes(p, name, src)
	if err != nil {
		return nil, err
	}
	attrs, diags := hcloracle.Flat(f.Body, keys...)
	if err := hcloracle.Err(diags); err != nil {
		return nil, err
	}
	var errs []string
	note := func(e error) {
		if e != nil {
			errs = append(errs, e.Error())
		}
	}
	c := newConfig(path)
	str := func(key string, dst *string) {
		if a := attrs[key]; a != nil {
			v, d := hcloracle.String(a)
			note(hcloracle.Err(d))
			*dst = strings.TrimSpace(v)
		}
	}
	var addr string
	for _, f := range c.stringFields(&addr) {
		str(f.key, f.dst)
	}
	if a := attrs["tls_skip_verify"]; a != nil {
		v, d := hcloracle.Bool(a)
		note(hcloracle.Err(d))
		c.TLSSkipVerify = v
	}
	if a := attrs["timeout"]; a != nil {
		v, d := hcloracle.Duration(a)
		note(hcloracle.Err(d))
		if !d.HasErrors() && v <= 0 {
			errs = append(errs, "timeout: want a positive duration")
		}
		c.Timeout = v
	}
	if a := attrs["vault_addrs"]; a != nil {
		v, d := hcloracle.StringList(a)
		note(hcloracle.Err(d))
		c.VaultAddrs = v
	}
	if addr != "" {
		c.VaultAddrs = append([]string{addr}, c.VaultAddrs...)
	}
	if a := attrs["allowed_roles"]; a != nil {
		v, d := hcloracle.StringList(a)
		note(hcloracle.Err(d))
		c.AllowedRoles = v
	}
	if a := attrs["allowed_cidr_list"]; a != nil {
		v, d := hcloracle.StringList(a)
		note(hcloracle.Err(d))
		// As the helper: the entries up to the first that is no CIDR (which
		// draws a warning, not compared here).
		for _, s := range v {
			pfx, err := parsePrefix(s)
			if err != nil {
				break
			}
			c.AllowedCIDRs = append(c.AllowedCIDRs, pfx)
		}
	}
	for _, e := range c.validate(func(key, format string, args ...any) *confError {
		return &confError{path: path, msg: fmt.Sprintf(format, args...)}
	}, func(key string) bool { return attrs[key] != nil }) {
		errs = append(errs, e.msg)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	return c, nil
}
