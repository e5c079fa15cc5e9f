package runner

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"go.uber.org/zap"

	"github.com/latchkey/latchkey/agent/auth"
	"github.com/latchkey/latchkey/agent/config"
	"github.com/latchkey/latchkey/internal/vaultclient"
)

// Component is a part of an instance that runs beside auto-auth and the
// sinks with the agent's token: the templates today (agent/template), SSH
// trust next.
//
// To add one: give Runner a factory field like NewRenderer, and add an
// entry to Runner.components naming the component, the error its failure
// is wrapped in (ErrTemplate for templates, which the CLI maps to exit
// code 5), its build (from the
// config, with no goroutine and no network; nil when the config has none;
// an error is a config error, which refuses a reload), its same (true
// when a reload leaves its config unchanged: the running component is then
// kept, not restarted) and optionally its check (what build would refuse,
// for a config whose component is kept, such as a template source that no
// longer parses). The runner starts it once there is a token, waits
// for Ready before READY=1, hands it from instance to instance across
// reloads that keep it, and stops it with the agent.
type Component interface {
	// Run does the component's work until ctx ends, and then returns nil;
	// any other return stops the agent, with an error wrapping the
	// component's sentinel (see componentSpec.fatal).
	Run(ctx context.Context) error
	// Ready is closed once the component has done its first work (every
	// template rendered once). READY=1 and exit_after_auth wait for it.
	Ready() <-chan struct{}
}

// Successor is implemented by a Component that can carry on from the one
// it replaces: a reload that changes the component's config starts the new
// one only after the old one stopped, and calls Inherit first, so that
// what did not change goes on as it was (agent/template keeps what it
// fetched: unchanged templates are not fetched, issued or written again).
// prev is the replaced component, of the same kind; a component ignores
// one it does not know.
type Successor interface {
	Inherit(prev any)
}

// Adopter is implemented by a Successor that can also take over the work
// left running by a component of its kind that an earlier reload removed
// (a Finisher kept among the instance's leftovers): a reload that brings
// the kind back then waits for that work instead of starting it a second
// time (agent/template: a template removed and restored while its command
// runs). Adopt reports whether it took prev's work over; prev is then no
// longer the runner's to finish. prev of another kind is refused (false).
type Adopter interface {
	Adopt(prev any) bool
}

// Finisher is implemented by a Component whose Run, when its context
// ends, may return with work still running that must not be cut short by
// a reload: agent/template's command of a template, which a reload leaves
// to run to its end and the Successor takes over. When the agent stops,
// the runner calls Finish on each such component once its Run has
// returned; Finish ends that work (a command gets SIGTERM, then SIGKILL
// after a bounded grace period) and returns once it has ended.
type Finisher interface {
	Finish()
}

// Renderer renders a config's templates with the agent's token; the
// template package implements it and cmd/latchkey-agent plugs its factory
// into Runner.NewRenderer. It is never restarted on a re-login: it reads
// the token per request through Tokens. Run returns an error for
// template_config.exit_on_retry_failure, or exit_after_auth.
type Renderer = Component

// RendererFactory builds the Renderer of cfg. It is called only when cfg
// has templates, and must start nothing; an error is a config error.
type RendererFactory func(cfg *config.Config, tokens *Tokens, log *zap.Logger) (Renderer, error)

// componentSpec is one kind of Component (see Component).
type componentSpec struct {
	name string
	// fatal wraps the error that ends Run early (it stops the agent).
	fatal error
	// build returns cfg's component, nil when cfg has none.
	build func(cfg *config.Config, tokens *Tokens, log *zap.Logger) (Component, error)
	// same reports whether b configures the component as a does.
	same func(a, b *config.Config) bool
	// check, when set, returns what build would refuse in cfg without
	// building a component (used when the running one is kept).
	check func(cfg *config.Config) error
}

// components lists every kind of component, in the order they start.
func (r *Runner) components() []componentSpec {
	return []componentSpec{
		{name: "templates", fatal: ErrTemplate, build: r.buildRenderer, same: sameTemplates, check: r.CheckTemplates},
		{name: "ssh", fatal: ErrSSH, build: r.buildSSHTrust, same: sameSSH},
	}
}

func (r *Runner) buildRenderer(cfg *config.Config, tokens *Tokens, log *zap.Logger) (Component, error) {
	if len(cfg.Templates) == 0 {
		return nil, nil
	}
	if r.NewRenderer == nil {
		return nil, errors.New("templates: this build of latchkey-agent cannot render templates")
	}
	return r.NewRenderer(cfg, tokens, log)
}

// part is an instance's slot for one kind of component (spec): comp is built but
// not started; running is started (by launch) or taken over from the
// previous instance (by build, when its config is unchanged). Both are nil
// when the config has no such component.
type part struct {
	spec    componentSpec
	comp    Component
	running *runningComponent
}

// ErrTemplate wraps a Renderer's fatal error returned by Run.
var ErrTemplate = errors.New("templates failed")

// ErrSink wraps the error of a sink that exit_after_auth could not write
// after its retries.
var ErrSink = errors.New("sink failed")

// Tokens is how a component reaches Vault with the agent's current token
// (auth.Tokens: one home for token access, beside auth.Holder).
type Tokens = auth.Tokens

// runningComponent is a started Component. A reload that keeps its config
// hands it from one instance to the next instead of restarting it.
type runningComponent struct {
	fatal  error
	c      Component
	cancel context.CancelFunc
	done   chan struct{}

	mu    sync.Mutex
	owner *instance // told about a fatal error
}

// startComponent runs c under parent once h holds a token (a first render before
// the login would only fail and wait for its retry).
func startComponent(parent context.Context, spec componentSpec, c Component, h *auth.Holder, owner *instance) *runningComponent {
	ctx, cancel := context.WithCancel(parent)
	rc := &runningComponent{fatal: spec.fatal, c: c, cancel: cancel, done: make(chan struct{}), owner: owner}
	go func() {
		defer close(rc.done)
		if !waitToken(ctx, h) {
			return
		}
		if err := c.Run(ctx); err != nil && ctx.Err() == nil {
			rc.mu.Lock()
			owner := rc.owner
			rc.mu.Unlock()
			owner.fail(fmt.Errorf("%w: %w", rc.fatal, err))
		}
	}()
	return rc
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

// adopt makes in the component's owner.
func (rc *runningComponent) adopt(in *instance) {
	rc.mu.Lock()
	rc.owner = in
	rc.mu.Unlock()
}

// stop ends the component and waits for it.
func (rc *runningComponent) stop() {
	rc.cancel()
	<-rc.done
}

// report403 makes every clone of client tell the auth loop about a 403.
// The client's CheckRetry hook sees every attempt's response and is
// inherited by clones made afterwards (renderers and sinks clone per
// request).
func report403(client *vaultclient.Client, denied func()) {
	next := client.CheckRetry()
	if next == nil {
		next = vaultclient.DefaultRetryPolicy
	}
	client.SetCheckRetry(func(ctx context.Context, resp *http.Response, err error) (bool, error) {
		if resp != nil && resp.StatusCode == http.StatusForbidden && resp.Request != nil && resp.Request.Header.Get("X-Vault-Token") != "" {
			denied()
		}
		return next(ctx, resp, err)
	})
}
