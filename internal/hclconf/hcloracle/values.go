package hcloracle

import (
	"fmt"
	"math/big"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// Value evaluates attr with no variables or functions: configuration
// files hold literals only.
func Value(attr *hcl.Attribute) (cty.Value, hcl.Diagnostics) {
	v, diags := attr.Expr.Value(nil)
	if diags.HasErrors() {
		return cty.NilVal, diags
	}
	if !v.IsWhollyKnown() {
		return cty.NilVal, hcl.Diagnostics{Errorf(attr.Expr.Range(), "invalid value for %q: must be a literal", attr.Name)}
	}
	return v, nil
}

func wrong(attr *hcl.Attribute, want string) hcl.Diagnostics {
	return hcl.Diagnostics{Errorf(attr.Expr.Range(), "invalid value for %q: want %s", attr.Name, want)}
}

// String decodes a string; numbers and booleans are taken as their text,
// as HCL 1 did.
func String(attr *hcl.Attribute) (string, hcl.Diagnostics) {
	v, diags := Value(attr)
	if diags.HasErrors() {
		return "", diags
	}
	if v.IsNull() {
		return "", nil
	}
	s, err := convert.Convert(v, cty.String)
	if err != nil {
		return "", wrong(attr, "a string")
	}
	return s.AsString(), nil
}

// Bool decodes true/false, also written as a string ("true", "1", ...).
func Bool(attr *hcl.Attribute) (bool, hcl.Diagnostics) {
	v, diags := Value(attr)
	if diags.HasErrors() {
		return false, diags
	}
	if v.Type() == cty.Bool {
		return v.True(), nil
	}
	if v.Type() == cty.String {
		if b, err := strconv.ParseBool(strings.TrimSpace(v.AsString())); err == nil {
			return b, nil
		}
	}
	return false, wrong(attr, "true or false")
}

// Int decodes a whole number, also written as a string.
func Int(attr *hcl.Attribute) (int64, hcl.Diagnostics) {
	v, diags := Value(attr)
	if diags.HasErrors() {
		return 0, diags
	}
	n, err := convert.Convert(v, cty.Number)
	if err != nil || n.IsNull() {
		return 0, wrong(attr, "a whole number")
	}
	bf := n.AsBigFloat()
	if !bf.IsInt() {
		return 0, wrong(attr, "a whole number")
	}
	i, acc := bf.Int64()
	if acc != big.Exact {
		return 0, wrong(attr, "a whole number in range")
	}
	return i, nil
}

// Float decodes a number, also written as a string.
func Float(attr *hcl.Attribute) (float64, hcl.Diagnostics) {
	v, diags := Value(attr)
	if diags.HasErrors() {
		return 0, diags
	}
	n, err := convert.Convert(v, cty.Number)
	if err != nil || n.IsNull() {
		return 0, wrong(attr, "a number")
	}
	f, _ := n.AsBigFloat().Float64()
	return f, nil
}

// Duration decodes a Go duration string ("90s", "5m") or a number of
// seconds, the two forms Vault accepts.
func Duration(attr *hcl.Attribute) (time.Duration, hcl.Diagnostics) {
	v, diags := Value(attr)
	if diags.HasErrors() {
		return 0, diags
	}
	switch v.Type() {
	case cty.Number:
		f, _ := v.AsBigFloat().Float64()
		if f < 0 {
			return 0, wrong(attr, "a non-negative duration")
		}
		return time.Duration(f * float64(time.Second)), nil
	case cty.String:
		s := strings.TrimSpace(v.AsString())
		if n, err := strconv.ParseFloat(s, 64); err == nil && n >= 0 {
			return time.Duration(n * float64(time.Second)), nil
		}
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			return 0, wrong(attr, `a duration such as "30s" or "5m"`)
		}
		return d, nil
	}
	return 0, wrong(attr, `a duration such as "30s" or "5m"`)
}

// StringList decodes a list of strings or one comma-separated string, as
// vault-ssh-helper's allowed_roles and allowed_cidr_list are written. Items
// are trimmed of spaces and empty items dropped.
func StringList(attr *hcl.Attribute) ([]string, hcl.Diagnostics) {
	v, diags := Value(attr)
	if diags.HasErrors() {
		return nil, diags
	}
	if v.IsNull() {
		return nil, nil
	}
	var raw []string
	switch {
	case v.Type() == cty.String:
		raw = strings.Split(v.AsString(), ",")
	case v.Type().IsListType() || v.Type().IsTupleType() || v.Type().IsSetType():
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			s, err := convert.Convert(e, cty.String)
			if err != nil || s.IsNull() {
				return nil, wrong(attr, "a list of strings")
			}
			raw = append(raw, s.AsString())
		}
	default:
		return nil, wrong(attr, "a list of strings or a comma-separated string")
	}
	out := make([]string, 0, len(raw))
	for _, s := range raw {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out, nil
}

// isOctalLiteral reports whether s is a 0 followed by octal digits (what
// `^0[0-7]+$` matches), without a regexp compiled at every start-up of the
// programs that import this package.
func isOctalLiteral(s string) bool {
	if len(s) < 2 || s[0] != '0' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '7' {
			return false
		}
	}
	return true
}

// FileMode decodes a permission: in HCL an integer literal with a leading
// zero (mode = 0640) is octal, as in HCL 1 and Vault Agent; a string is
// always octal ("0640", "640"); any other number is decimal (as JSON can only
// write it: 416 == 0640). p is the parser that read the file, to see the
// literal as written.
func FileMode(p *hclparse.Parser, attr *hcl.Attribute) (os.FileMode, hcl.Diagnostics) {
	v, diags := Value(attr)
	if diags.HasErrors() {
		return 0, diags
	}
	var n uint64
	var err error
	switch v.Type() {
	case cty.String:
		n, err = strconv.ParseUint(strings.TrimSpace(v.AsString()), 8, 32)
	case cty.Number:
		lit := strings.TrimSpace(string(sourceOf(p, attr.Expr.Range())))
		if isOctalLiteral(lit) {
			n, err = strconv.ParseUint(lit, 8, 32)
		} else if len(lit) > 1 && lit[0] == '0' {
			return 0, wrong(attr, "a file mode such as 0640")
		} else {
			var i int64
			i, diags = Int(attr)
			if diags.HasErrors() || i < 0 {
				return 0, wrong(attr, "a file mode such as 0640")
			}
			n = uint64(i)
		}
	default:
		return 0, wrong(attr, "a file mode such as 0640")
	}
	if err != nil || n > 0o7777 {
		return 0, wrong(attr, "a file mode such as 0640")
	}
	// Vault Agent (consul-template) drops these bits without a word; a
	// rendered secret or token is never meant to be set-id or sticky.
	if n&0o7000 != 0 {
		return 0, wrong(attr, fmt.Sprintf("a file mode from 0000 to 0777, not %04o: setuid, setgid and sticky bits are not set on written files", n))
	}
	return os.FileMode(n), nil
}

func sourceOf(p *hclparse.Parser, rng hcl.Range) []byte {
	if p == nil {
		return nil
	}
	f := p.Files()[rng.Filename]
	if f == nil {
		return nil
	}
	return rng.SliceBytes(f.Bytes)
}
