package runner

import (
	"errors"
	"reflect"

	"go.uber.org/zap"

	"github.com/latchkey/latchkey/agent/config"
	"github.com/latchkey/latchkey/agent/sshtrust"
	"github.com/latchkey/latchkey/internal/vaultclient"
)

// ErrSSH wraps an error ending the ssh stanza's component (sshtrust.Trust.Run
// returns none today: a failed round is retried, never fatal).
var ErrSSH = errors.New("ssh trust failed")

// buildSSHTrust builds the ssh stanza's component (nil, nil without one).
// It reaches Vault through the running instance's client and reads the
// token per round, so that a re-login or a reload that keeps it needs
// nothing.
func (r *Runner) buildSSHTrust(cfg *config.Config, tokens *Tokens, log *zap.Logger) (Component, error) {
	if cfg.SSH == nil {
		return nil, nil
	}
	return sshtrust.New(cfg.SSH.Trust(), sshtrust.Deps{
		// Tokens hands out clients with the current token (so a 403 reaches
		// the auth loop); the CA public keys are read with none.
		Vault: func(tok string) (*vaultclient.Client, error) {
			c, err := tokens.Client()
			if err != nil {
				return nil, err
			}
			c.SetToken(tok)
			return c, nil
		},
		Token:        tokens.Holder().Token,
		TokenChanged: tokens.Holder().Changed,
		Logger:       log,
		Status:       r.status,
	})
}

// sameSSH reports whether b's ssh stanza is a's (positions aside).
func sameSSH(a, b *config.Config) bool {
	if a.SSH == nil || b.SSH == nil {
		return a.SSH == nil && b.SSH == nil
	}
	return reflect.DeepEqual(a.SSH.Trust(), b.SSH.Trust())
}
