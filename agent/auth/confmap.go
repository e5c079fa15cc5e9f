package auth

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Settings reads a method's config map with typed accessors. Vault Agent
// accepts booleans and numbers written as strings, so these do too. Errors
// name the key and the stanza's file:line; Err returns the first.
type Settings struct {
	cfg  MethodConfig
	used map[string]bool
	err  error
}

// NewSettings wraps cfg's Config map.
func NewSettings(cfg MethodConfig) *Settings {
	return &Settings{cfg: cfg, used: map[string]bool{}}
}

func (s *Settings) fail(key, want string) {
	if s.err == nil {
		s.err = fmt.Errorf("%s:%d: method %q: config key %q: want %s", s.cfg.File, s.cfg.Line, s.cfg.Type, key, want)
	}
}

// String returns key's value, or def when absent.
func (s *Settings) String(key, def string) string {
	s.used[key] = true
	v, ok := s.cfg.Config[key]
	if !ok || v == nil {
		return def
	}
	switch x := v.(type) {
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case bool:
		return strconv.FormatBool(x)
	}
	s.fail(key, "a string")
	return def
}

// Required returns key's value, recording an error when it is absent or empty.
func (s *Settings) Required(key string) string {
	v := s.String(key, "")
	if v == "" && s.err == nil {
		s.err = fmt.Errorf("%s:%d: method %q: config key %q is required", s.cfg.File, s.cfg.Line, s.cfg.Type, key)
	}
	return v
}

// Bool returns key's value, or def when absent.
func (s *Settings) Bool(key string, def bool) bool {
	s.used[key] = true
	v, ok := s.cfg.Config[key]
	if !ok || v == nil {
		return def
	}
	switch x := v.(type) {
	case bool:
		return x
	case string:
		if b, err := strconv.ParseBool(strings.TrimSpace(x)); err == nil {
			return b
		}
	}
	s.fail(key, "true or false")
	return def
}

// Duration returns key's value (a Go duration or a number of seconds), or
// def when absent.
func (s *Settings) Duration(key string, def time.Duration) time.Duration {
	s.used[key] = true
	v, ok := s.cfg.Config[key]
	if !ok || v == nil {
		return def
	}
	switch x := v.(type) {
	case int64:
		return time.Duration(x) * time.Second
	case float64:
		return time.Duration(x * float64(time.Second))
	case string:
		if n, err := strconv.ParseFloat(x, 64); err == nil {
			return time.Duration(n * float64(time.Second))
		}
		if d, err := time.ParseDuration(x); err == nil {
			return d
		}
	}
	s.fail(key, `a duration such as "30s"`)
	return def
}

// Err returns the first problem met, or one naming keys that no accessor
// asked for (unknown keys are errors, as everywhere in latchkey).
func (s *Settings) Err() error {
	if s.err != nil {
		return s.err
	}
	var unknown []string
	for k := range s.cfg.Config {
		if !s.used[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("%s:%d: method %q: unknown config key %q", s.cfg.File, s.cfg.Line, s.cfg.Type, unknown[0])
	}
	return nil
}
