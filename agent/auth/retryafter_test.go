package auth

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/latchkey/latchkey/internal/vaultclient"
)

// After waits at least what the server asked, jittered upwards by a
// quarter of it (a second at least), never longer than Max; without a
// Retry-After it is Next.
func TestBackoffAfter(t *testing.T) {
	const s = time.Second
	tests := []struct {
		name       string
		min, max   time.Duration
		retryAfter time.Duration
		lo, hi     time.Duration // the wait's bounds
		capped     bool
	}{
		{"none: Next's wait", s, time.Minute, 0, s, s + s/4, false},
		{"longer than the backoff", s, time.Minute, 5 * s, 5 * s, 5*s + 5*s/4, false},
		{"a second's jitter at least", s, time.Minute, 2 * s, 2 * s, 3 * s, false},
		{"shorter than the backoff", 10 * s, time.Minute, 2 * s, 10 * s, 10*s + 10*s/4, false},
		{"jitter cut at max", s, 5500 * time.Millisecond, 5 * s, 5 * s, 5500 * time.Millisecond, false},
		{"equal to max", s, 5 * s, 5 * s, 5 * s, 5 * s, false},
		{"longer than max", s, 5 * s, time.Hour, 5 * s, 5 * s, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			seen := map[time.Duration]bool{}
			var lo, hi time.Duration
			for round := 0; round < 200; round++ {
				b := &Backoff{Min: tc.min, Max: tc.max}
				got, capped := b.After(tc.retryAfter)
				if got < tc.lo || got > tc.hi || capped != tc.capped {
					t.Fatalf("After(%s) = %s, %t; want %s–%s, %t", tc.retryAfter, got, capped, tc.lo, tc.hi, tc.capped)
				}
				if round == 0 || got < lo {
					lo = got
				}
				hi = max(hi, got)
				seen[got] = true
				// The backoff goes on lengthening as after Next.
				if b.cur != min(tc.min*2, tc.max) {
					t.Fatalf("after After: backoff at %s, want %s", b.cur, min(tc.min*2, tc.max))
				}
			}
			// Jittered: a fleet told the same does not come back at once
			// (only a wait pinned to max is constant).
			if tc.hi-tc.lo >= time.Second && hi-lo < tc.hi-tc.lo-(tc.hi-tc.lo)/4 {
				t.Errorf("waits spread over %s–%s only, want most of %s–%s", lo, hi, tc.lo, tc.hi)
			}
			if tc.hi > tc.lo && len(seen) < 2 {
				t.Errorf("always %v", seen)
			}
		})
	}
}

// vaultLogin is a Method that writes to auth/test/login, wrapping the
// client's error as a method adds its context.
type vaultLogin struct{}

func (vaultLogin) Describe() string { return "test login" }

func (vaultLogin) Login(ctx context.Context, c *vaultclient.Client) (*vaultclient.Secret, error) {
	s, err := c.Write(ctx, "auth/test/login", nil)
	if err != nil {
		return nil, fmt.Errorf("test login: %w", err)
	}
	return s, nil
}

// A login refused with a Retry-After (a rate limit quota's 429, or a 503)
// is tried again no sooner than Vault asked, within max_backoff, and the
// log says both the wait used and what Vault asked; other answers keep
// the operator's backoff.
func TestLoginHonoursRetryAfter(t *testing.T) {
	const ms = time.Millisecond
	tests := []struct {
		name       string
		status     int
		header     string
		max        time.Duration
		retryAfter time.Duration // logged retry_after (0: none)
		lo, hi     time.Duration // bounds of the logged retry_in
		capped     bool
	}{
		{"429 Retry-After", 429, "1", time.Minute, time.Second, time.Second, 2 * time.Second, false},
		{"503 Retry-After", 503, "1", time.Minute, time.Second, time.Second, 2 * time.Second, false},
		{"capped by max_backoff", 429, "3600", 300 * ms, time.Hour, 300 * ms, 300 * ms, true},
		{"429 without Retry-After", 429, "", time.Minute, 0, 10 * ms, 13 * ms, false},
		{"500 Retry-After ignored", 500, "3600", time.Minute, 0, 10 * ms, 13 * ms, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var logins []time.Time
			hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				logins = append(logins, time.Now())
				first := len(logins) == 1
				mu.Unlock()
				if first {
					if tc.header != "" {
						w.Header().Set("Retry-After", tc.header)
					}
					w.WriteHeader(tc.status)
					io.WriteString(w, `{"errors":["request path \"auth/test/login\": rate limit quota exceeded"]}`)
					return
				}
				io.WriteString(w, `{"auth":{"client_token":"hvs.after","accessor":"acc","lease_duration":0}}`)
			}))
			defer hs.Close()
			client, err := vaultclient.New(vaultclient.Config{Address: hs.URL})
			if err != nil {
				t.Fatal(err)
			}
			core, logs := observer.New(zap.DebugLevel)
			h := NewHolder()
			l := &Lifecycle{Method: vaultLogin{}, Client: client, Holder: h, Logger: zap.New(core),
				MinBackoff: 10 * ms, MaxBackoff: tc.max}
			changed := h.Changed()
			cancel, done := run(l, nil)
			defer func() { cancel(); <-done }()
			within(t, "the token", changed)
			mu.Lock()
			n, gap := len(logins), logins[len(logins)-1].Sub(logins[0])
			mu.Unlock()
			if n != 2 {
				t.Fatalf("%d login requests, want 2", n)
			}
			failed := logs.FilterMessage("login failed").All()
			if len(failed) != 1 {
				t.Fatalf("%d \"login failed\" lines, want 1", len(failed))
			}
			fields := failed[0].ContextMap()
			retryIn, _ := fields["retry_in"].(time.Duration)
			if retryIn < tc.lo || retryIn > tc.hi {
				t.Errorf("retry_in = %s, want %s–%s", retryIn, tc.lo, tc.hi)
			}
			if gap < retryIn {
				t.Errorf("the second login came %s after the first, before retry_in %s", gap, retryIn)
			}
			if got, _ := fields["retry_after"].(time.Duration); got != tc.retryAfter {
				t.Errorf("retry_after = %v, want %s", fields["retry_after"], tc.retryAfter)
			}
			if got := logs.FilterMessageSnippet("longer than max_backoff").Len(); got != map[bool]int{true: 1}[tc.capped] {
				t.Errorf("%d lines saying max_backoff cut Vault's Retry-After, want capped %t", got, tc.capped)
			}
		})
	}
}
