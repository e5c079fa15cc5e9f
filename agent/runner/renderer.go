package runner

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/hashicorp/vault/api"
	"go.uber.org/zap"

	"github.com/latchkey/latchkey/agent/auth"
	"github.com/latchkey/latchkey/agent/config"
)

// Renderer renders a config's templates with the agent's token; the
// template package implements it and cmd/latchkey-agent plugs its factory
// into Runner.NewRenderer. The runner starts one per configuration (a
// SIGHUP reload starts a new one) and never restarts it on a re-login: the
// renderer reads the token per request through Tokens.
type Renderer interface {
	// Run renders every template and keeps them current until ctx ends.
	// It returns nil when ctx ends; any other return stops the agent with
	// exit code 5 (template_config.exit_on_retry_failure).
	Run(ctx context.Context) error
	// Ready is closed once every template has been rendered once. READY=1
	// (and exit_after_auth's exit) waits for it.
	Ready() <-chan struct{}
}

// RendererFactory builds the Renderer of cfg. It is called only when cfg
// has templates, before anything starts; an error is a config error.
type RendererFactory func(cfg *config.Config, tokens *Tokens, log *zap.Logger) (Renderer, error)

// ErrTemplate wraps a Renderer's fatal error returned by Run.
var ErrTemplate = errors.New("templates failed")

// Tokens is how a Renderer reaches Vault with the agent's current token.
type Tokens struct {
	holder *auth.Holder
	client *api.Client
	denied func()
}

// Holder is the token holder: Get/Token for the current token ("" before
// the first login), Changed for a channel closed at the next login.
func (t *Tokens) Holder() *auth.Holder { return t.holder }

// Client returns a new client holding the current token. Call it per round
// of requests, not once: a re-login replaces the token. A 403 answer to any
// request of this client is reported to the auth loop by itself.
func (t *Tokens) Client() (*api.Client, error) {
	tok := t.holder.Token()
	if tok == "" {
		return nil, errors.New("no Vault token yet")
	}
	c, err := t.client.Clone()
	if err != nil {
		return nil, fmt.Errorf("vault client: %w", err)
	}
	c.SetToken(tok)
	c.ClearNamespace() // Clone re-reads VAULT_NAMESPACE; the agent's own client says which
	if ns := t.client.Namespace(); ns != "" {
		c.SetNamespace(ns)
	}
	return c, nil
}

// PermissionDenied tells the auth loop that Vault answered 403 with the
// current token (for requests made without Client). The loop checks the
// token with lookup-self and logs in again at once if it was revoked.
func (t *Tokens) PermissionDenied() { t.denied() }

// report403 makes every clone of client tell the auth loop about a 403.
// The api client's CheckRetry hook sees every response and is shared by
// clones (Clone shares the config; a wrapped transport would not be).
func report403(client *api.Client, denied func()) {
	next := client.CheckRetry()
	if next == nil {
		next = api.DefaultRetryPolicy
	}
	client.SetCheckRetry(func(ctx context.Context, resp *http.Response, err error) (bool, error) {
		if resp != nil && resp.StatusCode == http.StatusForbidden && resp.Request != nil && resp.Request.Header.Get("X-Vault-Token") != "" {
			denied()
		}
		return next(ctx, resp, err)
	})
}
