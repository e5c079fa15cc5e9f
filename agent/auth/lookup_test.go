package auth

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/vaultclient"
)

// A TTL Vault rounded down to 0 is not "never expires" when the token has
// an expire_time.
func TestLookupTTL(t *testing.T) {
	tests := map[string]struct {
		data    map[string]any
		ttl     time.Duration
		wantErr error
	}{
		"expires":             {data: map[string]any{"ttl": json.Number("42"), "expire_time": "2026-12-06T22:11:08Z", "renewable": true}, ttl: 42 * time.Second},
		"never expires":       {data: map[string]any{"ttl": json.Number("0"), "expire_time": nil}, ttl: 0},
		"under a second left": {data: map[string]any{"ttl": json.Number("0"), "expire_time": "2026-12-06T22:11:08Z"}, wantErr: ErrExpiring},
		"no ttl, no expiry":   {data: map[string]any{}, ttl: 0},
		"empty expire_time":   {data: map[string]any{"ttl": json.Number("0"), "expire_time": ""}, ttl: 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ttl, _, err := LookupTTL(&vaultclient.Secret{Data: tc.data})
			if !errors.Is(err, tc.wantErr) || ttl != tc.ttl {
				t.Errorf("LookupTTL = %s, %v; want %s, %v", ttl, err, tc.ttl, tc.wantErr)
			}
		})
	}
}
