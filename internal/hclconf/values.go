package hclconf

import (
	"fmt"
	"math/big"
	"os"
	"strconv"
	"strings"
	"time"
)

// The typed decoders, each converting as HCL (go-cty) did and accepting the
// HCL 1 spellings: a problem is "invalid value for "key": want ..." at the
// value.

func wrong(attr *Attribute, want string) Diagnostics {
	return Diagnostics{Errorf(attr.Value.Range, "invalid value for %q: want %s", attr.Name, want)}
}

// scalarText is a string, number or bool as text (null is ""), as go-cty
// converts them to a string.
func scalarText(v *Value) (string, bool) {
	switch v.Kind {
	case KindNull:
		return "", true
	case KindString, KindNumber:
		return v.Str, true
	case KindBool:
		return strconv.FormatBool(v.Bool), true
	}
	return "", false
}

// String decodes a string; numbers and booleans are taken as their text,
// as HCL 1 did.
func String(attr *Attribute) (string, Diagnostics) {
	s, ok := scalarText(attr.Value)
	if !ok {
		return "", wrong(attr, "a string")
	}
	return s, nil
}

// Bool decodes true/false, also written as a string ("true", "1", ...).
func Bool(attr *Attribute) (bool, Diagnostics) {
	switch v := attr.Value; v.Kind {
	case KindBool:
		return v.Bool, nil
	case KindString:
		if b, err := strconv.ParseBool(strings.TrimSpace(v.Str)); err == nil {
			return b, nil
		}
	}
	return false, wrong(attr, "true or false")
}

// number is attr's number, also written as a string (parsed as go-cty
// parses one).
func number(attr *Attribute) (*big.Float, bool) {
	switch v := attr.Value; v.Kind {
	case KindNumber:
		return v.Num, true
	case KindString:
		f, _, err := big.ParseFloat(v.Str, 10, 512, big.ToNearestEven)
		return f, err == nil
	}
	return nil, false
}

// Int decodes a whole number, also written as a string.
func Int(attr *Attribute) (int64, Diagnostics) {
	f, ok := number(attr)
	if !ok || !f.IsInt() {
		return 0, wrong(attr, "a whole number")
	}
	i, acc := f.Int64()
	if acc != big.Exact {
		return 0, wrong(attr, "a whole number in range")
	}
	return i, nil
}

// Float decodes a number, also written as a string.
func Float(attr *Attribute) (float64, Diagnostics) {
	f, ok := number(attr)
	if !ok {
		return 0, wrong(attr, "a number")
	}
	x, _ := f.Float64()
	return x, nil
}

// Duration decodes a Go duration string ("90s", "5m") or a number of
// seconds, the two forms Vault accepts.
func Duration(attr *Attribute) (time.Duration, Diagnostics) {
	switch v := attr.Value; v.Kind {
	case KindNumber:
		f, _ := v.Num.Float64()
		if f < 0 {
			return 0, wrong(attr, "a non-negative duration")
		}
		return time.Duration(f * float64(time.Second)), nil
	case KindString:
		s := strings.TrimSpace(v.Str)
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
func StringList(attr *Attribute) ([]string, Diagnostics) {
	var raw []string
	switch v := attr.Value; v.Kind {
	case KindNull:
		return nil, nil
	case KindString:
		raw = strings.Split(v.Str, ",")
	case KindList:
		for _, e := range v.List {
			s, ok := scalarText(e)
			if !ok || e.Kind == KindNull {
				return nil, wrong(attr, "a list of strings")
			}
			raw = append(raw, s)
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

// isOctalLiteral reports whether s is a 0 followed by octal digits.
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
// write it: 416 == 0640).
func FileMode(attr *Attribute) (os.FileMode, Diagnostics) {
	var n uint64
	var err error
	switch v := attr.Value; v.Kind {
	case KindString:
		n, err = strconv.ParseUint(strings.TrimSpace(v.Str), 8, 32)
	case KindNumber:
		lit := v.Lit
		if isOctalLiteral(lit) {
			n, err = strconv.ParseUint(lit, 8, 32)
		} else if len(lit) > 1 && lit[0] == '0' {
			return 0, wrong(attr, "a file mode such as 0640")
		} else {
			i, diags := Int(attr)
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
