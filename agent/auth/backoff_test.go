package auth

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	tests := []struct {
		name     string
		min, max time.Duration
		bases    []time.Duration // the unjittered wait of each attempt
	}{
		{"defaults", time.Second, 5 * time.Minute, []time.Duration{1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300}},
		{"runner tests", 100 * time.Millisecond, time.Second, []time.Duration{100, 200, 400, 800, 1000, 1000}},
		{"max not a doubling of min", 3 * time.Second, 10 * time.Second, []time.Duration{3, 6, 10, 10}},
		{"min equals max", 2 * time.Second, 2 * time.Second, []time.Duration{2, 2, 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			unit := time.Second
			if tc.min < time.Second {
				unit = time.Millisecond
			}
			seen := map[int]map[time.Duration]bool{}
			for round := 0; round < 200; round++ {
				b := &Backoff{Min: tc.min, Max: tc.max}
				for i, base := range tc.bases {
					base *= unit
					got := b.Next()
					if got < tc.min || got > tc.max {
						t.Fatalf("attempt %d: wait %s outside [%s, %s]", i, got, tc.min, tc.max)
					}
					if lo, hi := base-base/4, base+base/4; got < lo || got > hi {
						t.Fatalf("attempt %d: wait %s, want %s ±25%%", i, got, base)
					}
					if seen[i] == nil {
						seen[i] = map[time.Duration]bool{}
					}
					seen[i][got] = true
				}
				b.Reset()
				if got := b.Next(); got > tc.min+tc.min/4 {
					t.Fatalf("after Reset: wait %s, want about %s", got, tc.min)
				}
			}
			// Jittered: a fleet restarted together does not retry in step
			// (only a wait pinned to min = max is constant).
			for i := range tc.bases {
				if len(seen[i]) < 2 && tc.min != tc.max {
					t.Errorf("attempt %d: always %v", i, seen[i])
				}
			}
		})
	}
}
