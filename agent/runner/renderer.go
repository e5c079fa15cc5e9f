package runner

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

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
	// exit code 5 (template_config.exit_on_retry_failure, or exit_after_auth).
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
// It stays valid across re-logins and reloads.
type Tokens struct {
	holder *auth.Holder

	mu     sync.Mutex
	client *api.Client
	denied func()
}

// set points Tokens at the running instance's client and auth loop.
func (t *Tokens) set(client *api.Client, denied func()) {
	t.mu.Lock()
	t.client, t.denied = client, denied
	t.mu.Unlock()
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
	t.mu.Lock()
	client := t.client
	t.mu.Unlock()
	return auth.Clone(client, tok, "")
}

// Login returns the generation of the current token (one more per login).
func (t *Tokens) Login() uint64 {
	_, gen := t.holder.Get()
	return gen
}

// Ended returns when the token of generation gen stops working, once it
// has been given up (see auth.Holder.Retire).
func (t *Tokens) Ended(gen uint64) (time.Time, bool) { return t.holder.Ended(gen) }

// LoginEvents returns a channel closed at the next login or token
// retirement.
func (t *Tokens) LoginEvents() <-chan struct{} { return t.holder.Events() }

// PermissionDenied tells the auth loop that Vault answered 403 with the
// current token (for requests made without Client). The loop checks the
// token with lookup-self and logs in again at once if it was revoked.
func (t *Tokens) PermissionDenied() {
	t.mu.Lock()
	denied := t.denied
	t.mu.Unlock()
	denied()
}

// rendering is a running Renderer. A reload that keeps the templates hands
// it from one instance to the next instead of restarting it.
type rendering struct {
	r      Renderer
	tokens *Tokens
	cancel context.CancelFunc
	done   chan struct{}

	mu    sync.Mutex
	owner *instance // told about a fatal error
}

func startRendering(parent context.Context, r Renderer, tokens *Tokens, owner *instance) *rendering {
	ctx, cancel := context.WithCancel(parent)
	rg := &rendering{r: r, tokens: tokens, cancel: cancel, done: make(chan struct{}), owner: owner}
	go func() {
		defer close(rg.done)
		// Start once there is a token: a first render before the login
		// would only fail and wait for its retry.
		if !waitToken(ctx, tokens.Holder()) {
			return
		}
		if err := r.Run(ctx); err != nil && ctx.Err() == nil {
			rg.mu.Lock()
			owner := rg.owner
			rg.mu.Unlock()
			owner.fail(fmt.Errorf("%w: %w", ErrTemplate, err))
		}
	}()
	return rg
}

// waitToken returns true once h holds a token, false if ctx ends first.
func waitToken(ctx context.Context, h *auth.Holder) bool {
	for {
		changed := h.Changed()
		if h.Token() != "" {
			return true
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return false
		}
	}
}

// adopt makes in the rendering's owner, with its client and auth loop.
func (rg *rendering) adopt(in *instance, client *api.Client, denied func()) {
	rg.tokens.set(client, denied)
	rg.mu.Lock()
	rg.owner = in
	rg.mu.Unlock()
}

// stop ends the renderer and waits for it.
func (rg *rendering) stop() {
	rg.cancel()
	<-rg.done
}

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
