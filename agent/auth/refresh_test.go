package auth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/latchkey/latchkey/internal/vaultclient"
)

// A lifecycle going on with a kept token (a reload) that is replaced or
// stopped while it looks the token up (a burst of SIGHUPs) logs no
// "lookup-self failed" — nothing failed; its context ended — and sends no
// STATUS= after its successor's.
func TestKeptTokenLookupCutShortIsNoFailure(t *testing.T) {
	asked := make(chan struct{})
	var once sync.Once
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { close(asked) })
		<-r.Context().Done() // answers nothing until the agent gives up
	}))
	defer hs.Close()
	client, err := vaultclient.New(vaultclient.Config{Address: hs.URL})
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.DebugLevel)
	var mu sync.Mutex
	var statuses []string
	l := &Lifecycle{Method: vaultLogin{}, Client: client, Holder: NewHolder(), Logger: zap.New(core),
		Status: func(s string) { mu.Lock(); statuses = append(statuses, s); mu.Unlock() }}
	kept := &vaultclient.Secret{Auth: &vaultclient.SecretAuth{ClientToken: "hvs.kept", Accessor: "acc", LeaseDuration: 3600, Renewable: true}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.Run(ctx, kept, nil)
	}()
	within(t, "the lookup-self", asked)
	cancel()
	within(t, "Run's end", done)
	if n := logs.FilterLevelExact(zap.WarnLevel).Len() + logs.FilterLevelExact(zap.ErrorLevel).Len(); n != 0 {
		t.Errorf("%d warnings or errors for a lookup its own end cut short: %v", n, logs.All())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(statuses) != 0 {
		t.Errorf("STATUS= after the lifecycle ended: %q", statuses)
	}
}
