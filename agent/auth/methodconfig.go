package auth

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Errorf returns an error located at the method stanza:
// "file:line: auto_auth method "type": <message>".
func (c MethodConfig) Errorf(format string, args ...any) error {
	where := ""
	if c.File != "" {
		where = fmt.Sprintf("%s:%d: ", c.File, c.Line)
	}
	return fmt.Errorf("%sauto_auth method %q: %s", where, c.Type, fmt.Sprintf(format, args...))
}

// CheckKeys returns an error naming the first key of Config (in name order)
// that is not in allowed.
func (c MethodConfig) CheckKeys(allowed ...string) error {
	keys := make([]string, 0, len(c.Config))
	for k := range c.Config {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !contains(allowed, k) {
			return c.Errorf("config: unknown key %q (known: %s)", k, strings.Join(allowed, ", "))
		}
	}
	return nil
}

// String returns Config[key] as a string ("" when absent); numbers and
// booleans are taken as their text, as HCL 1 did.
func (c MethodConfig) String(key string) (string, error) {
	switch v := c.Config[key].(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	case bool, int64, float64:
		return fmt.Sprint(v), nil
	}
	return "", c.Errorf("config: %s must be a string", key)
}

// Bool returns Config[key] as a boolean (also written "true"/"false"), or
// def when absent.
func (c MethodConfig) Bool(key string, def bool) (bool, error) {
	switch v := c.Config[key].(type) {
	case nil:
		return def, nil
	case bool:
		return v, nil
	case string:
		if b, err := strconv.ParseBool(strings.TrimSpace(v)); err == nil {
			return b, nil
		}
	}
	return false, c.Errorf("config: %s must be true or false", key)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
