// Package redact removes secrets from text before it reaches a log line or
// an error message: the one place that does it for the helper (the typed
// password in a panic report), the auth methods (credentials that cloud
// APIs echo back) and templates (secret values in execution errors).
package redact

import (
	"cmp"
	"slices"
	"strings"
)

// Mark is what a secret becomes unless a caller names its own mark.
const Mark = "<redacted>"

// String returns s with every occurrence of each non-empty secret replaced
// by mark. Longer secrets are replaced first, so that a secret containing
// another is not left half visible.
func String(s, mark string, secrets ...string) string {
	var keep []string
	for _, v := range secrets {
		if v != "" && strings.Contains(s, v) {
			keep = append(keep, v)
		}
	}
	if len(keep) == 0 {
		return s
	}
	slices.SortFunc(keep, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	pairs := make([]string, 0, 2*len(keep))
	for _, v := range keep {
		pairs = append(pairs, v, mark)
	}
	return strings.NewReplacer(pairs...).Replace(s)
}

// Error returns err with every non-empty secret in its text replaced by
// mark; err itself when none occurs (nil for nil). The result unwraps to
// err, so errors.Is and errors.As still work. Cloud APIs echo parts of a
// refused request back — Alibaba's STS its string to sign, AWS's STS its
// canonical request — and Vault passes that text on in its login error.
func Error(err error, mark string, secrets ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	red := String(msg, mark, secrets...)
	if red == msg {
		return err
	}
	return &redacted{msg: red, err: err}
}

type redacted struct {
	msg string
	err error
}

func (r *redacted) Error() string { return r.msg }
func (r *redacted) Unwrap() error { return r.err }
