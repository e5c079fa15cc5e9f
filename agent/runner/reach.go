package runner

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/latchkey/latchkey/agent/auth"
	"github.com/latchkey/latchkey/internal/vaultclient"
)

// reach tells, once each way, when Vault stops answering the agent and
// when it answers again: one log line and one STATUS= each, however many
// requests fail in between (a failover, an outage). Every request of the
// agent's client and its clones reports to it (see watchReach).
type reach struct {
	log    *zap.Logger
	notify func(string)
	now    func() time.Time

	mu    sync.Mutex
	down  bool
	since time.Time
	// last is the latest STATUS= the agent's parts set, shown again once
	// Vault is back.
	last string
}

// status records a STATUS= line a part of the agent set (auth, ssh, reload)
// and sends it.
func (r *reach) status(s string) {
	r.mu.Lock()
	r.last = s
	r.mu.Unlock()
	r.notify("STATUS=" + s)
}

// failed records that a request to addr got no answer, for reason.
func (r *reach) failed(addr, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.down {
		return
	}
	r.down, r.since = true, r.now()
	line := fmt.Sprintf("vault unreachable: %s: %s; retrying", addr, reason)
	r.log.Warn(line, zap.String("vault_addr", addr))
	r.notify("STATUS=" + auth.OneLine(errors.New(line+" (since "+r.since.UTC().Format(time.TimeOnly)+" UTC)")))
}

// answered records that addr answered a request.
func (r *reach) answered(addr string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.down {
		return
	}
	r.down = false
	took := r.now().Sub(r.since).Round(100 * time.Millisecond)
	r.log.Info(fmt.Sprintf("vault reachable again: %s, after %s", addr, took), zap.String("vault_addr", addr), zap.Duration("unreachable_for", took))
	s := fmt.Sprintf("vault reachable again at %s after %s", addr, took)
	if r.last != "" {
		s = r.last
	}
	r.notify("STATUS=" + s)
}

// observe classifies one request's outcome: no answer (a transport error,
// the request's deadline, a 502/503/504, a standby's 500 "no active node")
// or an answer (any other status). A redirect is neither (its target's
// outcome comes next), nor is a request cancelled by the agent itself.
func (r *reach) observe(resp *http.Response, err error) {
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return
		}
		addr, reason := "vault", err.Error()
		var ue *url.Error
		if errors.As(err, &ue) {
			addr, reason = origin(ue.URL), ue.Err.Error()
		}
		r.failed(addr, reason)
		return
	}
	if resp == nil {
		return
	}
	addr := "vault"
	if resp.Request != nil && resp.Request.URL != nil {
		addr = origin(resp.Request.URL.String())
	}
	if reason, down := vaultclient.Unavailable(resp); down {
		r.failed(addr, reason)
		return
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return
	}
	r.answered(addr)
}

// origin is raw's scheme://host (no path, query or userinfo), for messages.
func origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return strings.SplitN(raw, "?", 2)[0]
	}
	return u.Scheme + "://" + u.Host
}

// watchReach makes every request of client and its clones report to r.
// Like report403 it uses the CheckRetry hook, which sees each attempt's
// outcome (after failover across vault { addresses }) and is shared by
// clones.
func watchReach(client *vaultclient.Client, r *reach) {
	next := client.CheckRetry()
	if next == nil {
		next = vaultclient.DefaultRetryPolicy
	}
	client.SetCheckRetry(func(ctx context.Context, resp *http.Response, err error) (bool, error) {
		r.observe(resp, err)
		return next(ctx, resp, err)
	})
}
