package runner

import (
	"errors"
	"reflect"

	"github.com/hashicorp/vault/api"
	"go.uber.org/zap"

	"github.com/latchkey/latchkey/agent/auth"
	"github.com/latchkey/latchkey/agent/config"
	"github.com/latchkey/latchkey/agent/sshtrust"
)

// buildSSHTrust builds the ssh stanza's component (nil, nil without one).
// It reaches Vault through the running instance's client and reads the
// token per round, so that a re-login or a reload that keeps it needs
// nothing.
func (r *Runner) buildSSHTrust(cfg *config.Config, tokens *Tokens, log *zap.Logger) (Component, error) {
	if cfg.SSH == nil {
		return nil, nil
	}
	return sshtrust.New(cfg.SSH.Trust(), sshtrust.Deps{
		Vault: func(tok string) (*api.Client, error) {
			tokens.mu.Lock()
			client := tokens.client
			tokens.mu.Unlock()
			if client == nil {
				return nil, errors.New("no Vault client yet")
			}
			return auth.Clone(client, tok, "")
		},
		Token:        tokens.holder.Token,
		TokenChanged: tokens.holder.Changed,
		Logger:       log,
		Status:       func(s string) { r.notify("STATUS=" + s) },
	})
}

// sameSSH reports whether b's ssh stanza is a's (positions aside).
func sameSSH(a, b *config.Config) bool {
	if a.SSH == nil || b.SSH == nil {
		return a.SSH == nil && b.SSH == nil
	}
	return reflect.DeepEqual(a.SSH.Trust(), b.SSH.Trust())
}
