// Package cloud holds what the cloud auth methods share; the metadata
// clients are in its subpackages (awsmeta, alimeta).
package cloud

import "strings"

// Redact returns err with every occurrence of each non-empty secret in its
// text replaced by "<redacted>", or err itself when none occurs (nil for
// nil). Cloud APIs echo parts of a refused request back — Alibaba's STS
// its string to sign, AWS's STS its canonical request — and Vault passes
// that text on in its login error, session tokens included; the agent logs
// login errors. The result unwraps to err, so errors.Is/As still work.
func Redact(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	changed := false
	for _, s := range secrets {
		if s != "" && strings.Contains(msg, s) {
			msg = strings.ReplaceAll(msg, s, "<redacted>")
			changed = true
		}
	}
	if !changed {
		return err
	}
	return &redacted{msg: msg, err: err}
}

type redacted struct {
	msg string
	err error
}

func (r *redacted) Error() string { return r.msg }
func (r *redacted) Unwrap() error { return r.err }
