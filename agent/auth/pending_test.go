package auth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/latchkey/latchkey/internal/vaultclient"
)

// slowMethod is a Method whose logins wait for release (or their ctx) and
// then succeed with token, or fail with fail when it is set. Each login's
// start is sent on started.
type slowMethod struct {
	release chan struct{}
	started chan struct{}
	calls   atomic.Int32
	token   string
	fail    error
}

func newSlowMethod() *slowMethod {
	return &slowMethod{release: make(chan struct{}), started: make(chan struct{}, 16), token: "hvs.test"}
}

func (m *slowMethod) Describe() string { return "slow test method" }

func (m *slowMethod) Login(ctx context.Context, _ *vaultclient.Client) (*vaultclient.Secret, error) {
	m.calls.Add(1)
	m.started <- struct{}{}
	if m.fail != nil {
		return nil, m.fail
	}
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-m.release:
	}
	return &vaultclient.Secret{Auth: &vaultclient.SecretAuth{ClientToken: m.token, Accessor: "acc"}}, nil
}

func lifecycle(t *testing.T, m Method, client *vaultclient.Client, h *Holder, backoff time.Duration) *Lifecycle {
	t.Helper()
	if client == nil {
		var err error
		client, err = vaultclient.New(vaultclient.Config{Address: "http://127.0.0.1:1"})
		if err != nil {
			t.Fatal(err)
		}
	}
	return &Lifecycle{Method: m, Client: client, Holder: h, Logger: zaptest.NewLogger(t), MinBackoff: backoff, MaxBackoff: backoff}
}

// run starts l.Run and returns its cancel and a channel closed when Run
// returned.
func run(l *Lifecycle, p *Pending) (context.CancelFunc, <-chan struct{}) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.Run(ctx, nil, p)
	}()
	return cancel, done
}

func within(t *testing.T, what string, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// A login in flight when its lifecycle stops (a reload) is answered to the
// next lifecycle it is handed to: one request, whose token is held.
func TestPendingLoginInFlightHandedOver(t *testing.T) {
	m := newSlowMethod()
	h := NewHolder()
	l1 := lifecycle(t, m, nil, h, time.Second)
	cancel1, done1 := run(l1, nil)
	within(t, "the first login", m.started)
	cancel1()
	within(t, "the first Run to return", done1)
	p := l1.Pending()
	if !p.InFlight() {
		t.Fatalf("Pending after a stop during the login = %v, want one in flight", p)
	}
	changed := h.Changed()
	l2 := lifecycle(t, m, nil, h, time.Second)
	cancel2, done2 := run(l2, p)
	defer func() { cancel2(); <-done2 }()
	close(m.release)
	within(t, "the token", changed)
	if tok := h.Token(); tok != m.token {
		t.Errorf("holder has %q", tok)
	}
	if n := m.calls.Load(); n != 1 {
		t.Errorf("%d logins, want 1", n)
	}
}

// A stop during the wait after a failed login hands the wait and the
// backoff over: the next lifecycle does not log in before the wait ends.
func TestPendingBackoffHandedOver(t *testing.T) {
	m := newSlowMethod()
	m.fail = errors.New("refused")
	const backoff = time.Second
	l1 := lifecycle(t, m, nil, NewHolder(), backoff)
	cancel1, done1 := run(l1, nil)
	within(t, "the first login", m.started)
	first := time.Now()
	time.Sleep(100 * time.Millisecond) // into the backoff
	cancel1()
	within(t, "the first Run to return", done1)
	p := l1.Pending()
	if p == nil || p.InFlight() || time.Until(p.at) <= 0 {
		t.Fatalf("Pending after a stop in the backoff = %v, want a wait", p)
	}
	l2 := lifecycle(t, m, nil, NewHolder(), backoff)
	cancel2, done2 := run(l2, p)
	within(t, "the second login", m.started)
	if since := time.Since(first); since < backoff-50*time.Millisecond {
		t.Errorf("the handed-over login came %s after the first, before its %s backoff", since, backoff)
	}
	cancel2()
	<-done2
	if p := l2.Pending(); p == nil || p.backoff.cur != backoff {
		t.Errorf("the backoff went on from %s, want %s", p.backoff.cur, backoff)
	}
}

// adjust keeps the backoff within the bounds of the lifecycle it is
// handed to.
func TestPendingAdjust(t *testing.T) {
	p := &Pending{backoff: Backoff{Min: time.Second, Max: time.Minute, cur: 32 * time.Second}, at: time.Now().Add(30 * time.Second)}
	p.adjust(time.Second, 5*time.Second)
	if p.backoff.cur != 5*time.Second || time.Until(p.at) > 5*time.Second {
		t.Errorf("after adjust: backoff %s, wait %s; want at most 5s each", p.backoff.cur, time.Until(p.at))
	}
}

// Abandon with revoke waits for the attempt in flight and revokes the token
// it brings; without, it cancels the attempt at once.
func TestAbandon(t *testing.T) {
	var revoked atomic.Value
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/auth/token/revoke-self" {
			revoked.Store(r.Header.Get("X-Vault-Token"))
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hs.Close()
	client, err := vaultclient.New(vaultclient.Config{Address: hs.URL})
	if err != nil {
		t.Fatal(err)
	}
	stopped := func(t *testing.T, m *slowMethod) (*Lifecycle, *Pending) {
		l := lifecycle(t, m, client, NewHolder(), time.Second)
		cancel, done := run(l, nil)
		within(t, "the login", m.started)
		cancel()
		within(t, "Run to return", done)
		return l, l.Pending()
	}
	t.Run("revoke", func(t *testing.T) {
		m := newSlowMethod()
		l, p := stopped(t, m)
		abandoned := make(chan struct{})
		go func() { defer close(abandoned); l.Abandon(p, true) }()
		close(m.release)
		within(t, "Abandon", abandoned)
		if got, _ := revoked.Load().(string); got != m.token {
			t.Errorf("revoke-self with token %q, want the abandoned login's", got)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		revoked.Store("")
		m := newSlowMethod()
		l, p := stopped(t, m)
		abandoned := make(chan struct{})
		go func() { defer close(abandoned); l.Abandon(p, false) }()
		within(t, "Abandon to cancel the login", abandoned) // m.release never closed
		if got, _ := revoked.Load().(string); got != "" {
			t.Errorf("a cancelled login was revoked (%q)", got)
		}
	})
}
