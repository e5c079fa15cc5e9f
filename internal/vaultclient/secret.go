package vaultclient

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"
)

// Secret is Vault's answer to most requests: the JSON shape of
// vault/api.Secret, so that templates and sinks see the same fields.
type Secret struct {
	RequestID     string         `json:"request_id"`
	LeaseID       string         `json:"lease_id"`
	LeaseDuration int            `json:"lease_duration"`
	Renewable     bool           `json:"renewable"`
	Data          map[string]any `json:"data"`
	Warnings      []string       `json:"warnings"`
	Auth          *SecretAuth    `json:"auth,omitempty"`
	WrapInfo      *WrapInfo      `json:"wrap_info,omitempty"`
}

// SecretAuth is a login's (or a renewal's) token.
type SecretAuth struct {
	ClientToken      string            `json:"client_token"`
	Accessor         string            `json:"accessor"`
	Policies         []string          `json:"policies"`
	TokenPolicies    []string          `json:"token_policies"`
	IdentityPolicies []string          `json:"identity_policies"`
	Metadata         map[string]string `json:"metadata"`
	Orphan           bool              `json:"orphan"`
	EntityID         string            `json:"entity_id"`
	LeaseDuration    int               `json:"lease_duration"`
	Renewable        bool              `json:"renewable"`
	NumUses          int               `json:"num_uses"`
}

// WrapInfo is a response-wrapping token's description.
type WrapInfo struct {
	Token           string    `json:"token"`
	Accessor        string    `json:"accessor"`
	TTL             int       `json:"ttl"`
	CreationTime    time.Time `json:"creation_time"`
	CreationPath    string    `json:"creation_path"`
	WrappedAccessor string    `json:"wrapped_accessor"`
}

// ParseSecret decodes a Secret from r; an empty body is (nil, nil). Numbers
// in Data stay json.Number, as the api package leaves them.
func ParseSecret(r io.Reader) (*Secret, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var s Secret
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("decoding vault's answer: %w", err)
	}
	return &s, nil
}

// TokenID returns the token a login response or a lookup holds.
func (s *Secret) TokenID() (string, error) {
	if s == nil {
		return "", nil
	}
	if s.Auth != nil && s.Auth.ClientToken != "" {
		return s.Auth.ClientToken, nil
	}
	if s.Data == nil || s.Data["id"] == nil {
		return "", nil
	}
	id, ok := s.Data["id"].(string)
	if !ok {
		return "", fmt.Errorf("token found but in the wrong format")
	}
	return id, nil
}

// TokenAccessor returns the token's accessor, from a login or a lookup.
func (s *Secret) TokenAccessor() (string, error) {
	if s == nil {
		return "", nil
	}
	if s.Auth != nil && s.Auth.Accessor != "" {
		return s.Auth.Accessor, nil
	}
	if s.Data == nil || s.Data["accessor"] == nil {
		return "", nil
	}
	a, ok := s.Data["accessor"].(string)
	if !ok {
		return "", fmt.Errorf("token accessor found but in the wrong format")
	}
	return a, nil
}

// TokenTTL returns the token's time to live: the login's lease, or a
// lookup's "ttl".
func (s *Secret) TokenTTL() (time.Duration, error) {
	if s == nil {
		return 0, nil
	}
	if s.Auth != nil && s.Auth.LeaseDuration > 0 {
		return time.Duration(s.Auth.LeaseDuration) * time.Second, nil
	}
	if s.Data == nil || s.Data["ttl"] == nil {
		return 0, nil
	}
	return durationSecond(s.Data["ttl"])
}

// TokenIsRenewable reports whether the token can be renewed.
func (s *Secret) TokenIsRenewable() (bool, error) {
	if s == nil {
		return false, nil
	}
	if s.Auth != nil && s.Auth.Renewable {
		return true, nil
	}
	if s.Data == nil || s.Data["renewable"] == nil {
		return false, nil
	}
	switch v := s.Data["renewable"].(type) {
	case bool:
		return v, nil
	case string:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return false, fmt.Errorf("could not convert renewable value to a boolean: %w", err)
		}
		return b, nil
	}
	return false, fmt.Errorf("could not convert renewable value to a boolean")
}

// TokenPolicies returns the token's policies (token and identity ones).
func (s *Secret) TokenPolicies() ([]string, error) {
	if s == nil {
		return nil, nil
	}
	if s.Auth != nil && len(s.Auth.Policies) > 0 {
		return s.Auth.Policies, nil
	}
	if s.Data == nil {
		return nil, nil
	}
	var out []string
	for _, k := range []string{"policies", "identity_policies"} {
		list, ok := s.Data[k].([]any)
		if !ok {
			if s.Data[k] != nil {
				return nil, fmt.Errorf("unable to convert token %s to expected format", k)
			}
			continue
		}
		for _, p := range list {
			ps, ok := p.(string)
			if !ok {
				return nil, fmt.Errorf("unable to convert token %s to expected format", k)
			}
			out = append(out, ps)
		}
	}
	return out, nil
}

// durationSecond reads a TTL Vault gives as seconds (json.Number, number
// or numeric string) or as a Go duration string.
func durationSecond(v any) (time.Duration, error) {
	switch t := v.(type) {
	case json.Number:
		n, err := t.Int64()
		if err != nil {
			return 0, fmt.Errorf("ttl %q: %w", t, err)
		}
		return time.Duration(n) * time.Second, nil
	case float64:
		return time.Duration(t) * time.Second, nil
	case int:
		return time.Duration(t) * time.Second, nil
	case int64:
		return time.Duration(t) * time.Second, nil
	case string:
		if n, err := strconv.ParseInt(t, 10, 64); err == nil {
			return time.Duration(n) * time.Second, nil
		}
		return time.ParseDuration(t)
	}
	return 0, fmt.Errorf("ttl of type %T", v)
}
