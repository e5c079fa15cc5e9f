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
// name the key and start with its file:line:col (MethodConfig.KeyAt: the
// key's own position, or the config block's when the key is missing); Err
// returns the first.
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
		s.err = fmt.Errorf("%s: method %q: config key %q: want %s", s.cfg.KeyAt(key), s.cfg.Type, key, want)
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
		s.err = fmt.Errorf("%s: method %q: config key %q is required", s.cfg.KeyAt(key), s.cfg.Type, key)
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

// Errorf returns an error about config key, prefixed with its position and
// the method: "file:line:col: method "aws": config key "region": ...".
func (s *Settings) Errorf(key, format string, args ...any) error {
	return fmt.Errorf("%s: method %q: config key %q: %s", s.cfg.KeyAt(key), s.cfg.Type, key, fmt.Sprintf(format, args...))
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
		// The first in the file (by name when positions are unknown).
		sort.Slice(unknown, func(i, j int) bool {
			a, b := s.cfg.Keys[unknown[i]], s.cfg.Keys[unknown[j]]
			if a.Start.Byte != b.Start.Byte {
				return a.Start.Byte < b.Start.Byte
			}
			return unknown[i] < unknown[j]
		})
		return fmt.Errorf("%s: method %q: unknown config key %q", s.cfg.KeyAt(unknown[0]), s.cfg.Type, unknown[0])
	}
	return nil
}
