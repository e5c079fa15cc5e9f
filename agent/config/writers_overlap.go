package config

import (
	"fmt"
	"path/filepath"

	"github.com/latchkey/latchkey/internal/hclconf"
)

// written is one file the agent writes, by whom and where the config says so.
type written struct {
	path, what string // what: "sink", "template" or "ssh trust file"
	at         hclconf.Range
}

// checkOverlaps refuses a config under which the agent would write over
// its own config file (the next start or reload would read a render), or
// write one file as two different things (a sink and a template, or the
// ssh trust file and either): the file would flip between the token, the
// template's output and the trust file at every write. Templates sharing
// a destination are Vault Agent's semantics (written one after the other)
// and are left alone, as are sinks sharing a path (both hold the token).
func (c *Config) checkOverlaps() error {
	var ws []written
	for _, s := range c.AutoAuth.Sinks {
		ws = append(ws, written{s.Path, "sink", s.KeyRange("path")})
	}
	for _, t := range c.Templates {
		if t.Destination != "" {
			ws = append(ws, written{t.Destination, "template", t.KeyRange("destination")})
		}
	}
	if s := c.SSH; s != nil && s.TrustedUserCAKeys != nil && *s.TrustedUserCAKeys != "" {
		r := s.Range
		if k, ok := s.Keys["trusted_user_ca_keys"]; ok {
			r = k
		}
		ws = append(ws, written{*s.TrustedUserCAKeys, "ssh trust file", r})
	}
	abs := func(p string) string {
		if a, err := filepath.Abs(p); err == nil {
			return a
		}
		return filepath.Clean(p)
	}
	configs := map[string]bool{}
	for _, f := range c.Files {
		configs[abs(f)] = true
	}
	first := map[string]written{}
	for _, w := range ws {
		p := abs(w.path)
		if configs[p] {
			return fmt.Errorf("%s: %s %s is a config file of the agent's own: writing it would replace the config", hclconf.Pos(w.at), w.what, w.path)
		}
		if o, ok := first[p]; ok && o.what != w.what {
			return fmt.Errorf("%s: %s %s is also the %s at %s: the file would flip between the two at every write", hclconf.Pos(w.at), w.what, w.path, o.what, hclconf.Pos(o.at))
		}
		if _, ok := first[p]; !ok {
			first[p] = w
		}
	}
	return nil
}
