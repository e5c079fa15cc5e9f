package runner

import (
	"context"
	"sync"

	"github.com/hashicorp/vault/api"

	"github.com/latchkey/latchkey/agent/auth"
	"github.com/latchkey/latchkey/agent/config"
	"github.com/latchkey/latchkey/agent/sshtrust"
)

// newSSHTrust builds the ssh stanza's component (nil, nil without one). It
// reads the token per round from holder, so that a re-login needs nothing.
func newSSHTrust(cfg *config.Config, client *api.Client, holder *auth.Holder, r *Runner) (*sshtrust.Trust, error) {
	if cfg.SSH == nil {
		return nil, nil
	}
	return sshtrust.New(cfg.SSH.Trust(), sshtrust.Deps{
		Vault:        func(tok string) (*api.Client, error) { return auth.Clone(client, tok, "") },
		Token:        holder.Token,
		TokenChanged: holder.Changed,
		Logger:       r.Logger,
		Status:       func(s string) { r.notify("STATUS=" + s) },
	})
}

// launchSSHTrust runs trust under ctx and holds readiness (READY=1,
// exit_after_auth) until its first complete round. nil does nothing.
func launchSSHTrust(ctx context.Context, trust *sshtrust.Trust, pending, wg *sync.WaitGroup) {
	if trust == nil {
		return
	}
	pending.Add(1)
	wg.Add(2)
	go func() {
		defer wg.Done()
		trust.Run(ctx)
	}()
	go func() {
		defer wg.Done()
		select {
		case <-trust.Ready():
			pending.Done()
		case <-ctx.Done():
		}
	}()
}
