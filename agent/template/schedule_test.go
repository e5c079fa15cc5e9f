package template

import (
	"testing"
	"time"

	"github.com/latchkey/latchkey/agent/config"
)

// When each kind of secret is looked at again: renewable leases at 2/3,
// non-renewable leases and certificates at lease_renewal_threshold of their
// life minus up to 1/20 of it (jitter, so a fleet does not move in step),
// static secrets every static_secret_render_interval (or their KV ttl).
func TestNextFor(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cfg := config.DefaultTemplateConfig()
	cfg.LeaseRenewalThreshold = 0.9
	cfg.StaticSecretRenderInterval = 5 * time.Minute
	m := &Manager{o: Options{Config: cfg}}
	tests := map[string]struct {
		r        result
		from, to time.Time // inclusive bounds
	}{
		"renewable lease": {
			r:    result{fetched: t0, leaseID: "l", lease: 90 * time.Second, renewable: true},
			from: t0.Add(60 * time.Second), to: t0.Add(60 * time.Second),
		},
		"non-renewable lease": {
			r:    result{fetched: t0, leaseID: "l", lease: 100 * time.Second},
			from: t0.Add(85 * time.Second), to: t0.Add(90 * time.Second),
		},
		"certificate": {
			r:    result{fetched: t0.Add(time.Hour), notBefore: t0, notAfter: t0.Add(100 * time.Hour)},
			from: t0.Add(85 * time.Hour), to: t0.Add(90 * time.Hour),
		},
		"static secret": {
			r:    result{fetched: t0},
			from: t0.Add(5 * time.Minute), to: t0.Add(5 * time.Minute),
		},
		"static secret with a shorter ttl": {
			r:    result{fetched: t0, ttl: time.Minute},
			from: t0.Add(time.Minute), to: t0.Add(time.Minute),
		},
		"static secret with a longer ttl": {
			r:    result{fetched: t0, ttl: time.Hour},
			from: t0.Add(5 * time.Minute), to: t0.Add(5 * time.Minute),
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			seen := map[time.Time]bool{}
			for i := 0; i < 50; i++ {
				got := m.nextFor(tc.r)
				if got.Before(tc.from) || got.After(tc.to) {
					t.Fatalf("nextFor = %s, want within [%s, %s]", got, tc.from, tc.to)
				}
				seen[got] = true
			}
			if jittered := !tc.from.Equal(tc.to); jittered && len(seen) < 2 {
				t.Errorf("50 schedules all at %v: no jitter", seen)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		n    int
		want time.Duration
	}{
		{1, 250 * time.Millisecond},
		{2, 500 * time.Millisecond},
		{3, time.Second},
		{8, 32 * time.Second},
		{9, time.Minute},
		{100, time.Minute},
	}
	for _, tc := range tests {
		if got := backoff(250*time.Millisecond, time.Minute, tc.n); got != tc.want {
			t.Errorf("backoff after %d failures = %s, want %s", tc.n, got, tc.want)
		}
	}
}
