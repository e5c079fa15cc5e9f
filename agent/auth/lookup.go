package auth

import (
	"errors"
	"time"

	"github.com/latchkey/latchkey/internal/vaultclient"
)

// ErrExpiring is a token whose lookup-self gives a TTL of 0 with an
// expire_time: Vault counts whole seconds, so it has less than one left
// (a token that never expires has no expire_time).
var ErrExpiring = errors.New("the token expires within a second")

// LookupTTL reads a lookup-self answer: the token's TTL (0: it never
// expires) and renewability, or ErrExpiring. Without the check, a TTL
// rounded down to 0 read as "never expires", and the agent held a dead
// token, saying so in STATUS=, until the next lookup found it gone.
func LookupTTL(s *vaultclient.Secret) (time.Duration, bool, error) {
	ttl, err := s.TokenTTL()
	if err != nil {
		return 0, false, err
	}
	renewable, _ := s.TokenIsRenewable()
	if ttl <= 0 && s.Data != nil {
		if exp, _ := s.Data["expire_time"].(string); exp != "" {
			return 0, renewable, ErrExpiring
		}
	}
	return ttl, renewable, nil
}
