package config

import (
	"fmt"
	"os"
	"reflect"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/latchkey/latchkey/internal/hclconf"
	"github.com/latchkey/latchkey/internal/vaultclient"
)

// DefaultStateDir is where the agent keeps state across restarts.
const DefaultStateDir = "/var/lib/latchkey"

// DefaultSinkMode is a file sink's mode when the config gives none.
const DefaultSinkMode os.FileMode = 0o640

// Config is the whole agent configuration. Pointer fields are unset when nil,
// so that Merge can layer several files; Finalize fills the defaults.
type Config struct {
	// Vault is the `vault { }` stanza (retry.num_retries becomes MaxRetries).
	Vault vaultclient.Config
	// AutoAuth is the `auto_auth { }` stanza; nil when there is none.
	AutoAuth *AutoAuth
	// TemplateConfig is `template_config { }`; Templates the `template`
	// stanzas in file order.
	TemplateConfig *TemplateConfig
	Templates      []Template

	PidFile       string
	ExitAfterAuth *bool
	LogLevel      string
	LogFormat     string
	LogFile       string

	// Latchkey holds latchkey-only settings.
	Latchkey Latchkey

	// Files are the files read, in order.
	Files []string
}

// AutoAuth is the `auto_auth { method ... sink ... }` stanza.
type AutoAuth struct {
	Method *Method
	Sinks  []Sink
}

// Method is the auto_auth `method` stanza.
type Method struct {
	// Type is the auth method: aws, alicloud, approle or token_file.
	Type string
	// MountPath defaults to "auth/<type>".
	MountPath string
	Namespace string
	// WrapTTL response-wraps the login (0 = off).
	WrapTTL time.Duration
	// MinBackoff and MaxBackoff bound the wait between failed logins
	// (defaults 1s and 5m).
	MinBackoff, MaxBackoff time.Duration
	// ExitOnErr makes a failed login fatal instead of retried forever.
	ExitOnErr bool
	// Config is the method's own `config` map.
	Config map[string]any
	Range  hcl.Range
}

// Sink is one auto_auth `sink` stanza. Only "file" sinks exist.
type Sink struct {
	Type string
	// WrapTTL response-wraps the token written to this sink (0 = off).
	WrapTTL time.Duration
	// Path is the file written.
	Path string
	// Mode is the file's permission bits (default 0640).
	Mode os.FileMode
	// Owner and Group are user/group names or numeric ids; "" keeps the
	// agent's own.
	Owner, Group string
	Range        hcl.Range
}

// Latchkey is the `latchkey { }` stanza: settings Vault Agent has not.
type Latchkey struct {
	// StateDir holds state that must survive restarts (default
	// /var/lib/latchkey); created 0700.
	StateDir string
}

// Default backoff bounds, as Vault Agent.
const (
	DefaultMinBackoff = time.Second
	DefaultMaxBackoff = 5 * time.Minute
)

// Merge returns c with o layered on top: o's set scalars win, templates and
// sinks are appended, o's auth method replaces c's.
func (c Config) Merge(o Config) Config {
	c.Vault = c.Vault.Merge(o.Vault)
	if o.AutoAuth != nil {
		if c.AutoAuth == nil {
			c.AutoAuth = &AutoAuth{}
		} else {
			aa := *c.AutoAuth
			c.AutoAuth = &aa
		}
		if o.AutoAuth.Method != nil {
			c.AutoAuth.Method = o.AutoAuth.Method
		}
		c.AutoAuth.Sinks = append(append([]Sink(nil), c.AutoAuth.Sinks...), o.AutoAuth.Sinks...)
	}
	if o.TemplateConfig != nil {
		c.TemplateConfig = o.TemplateConfig
	}
	c.Templates = append(append([]Template(nil), c.Templates...), o.Templates...)
	str := func(dst *string, src string) {
		if src != "" {
			*dst = src
		}
	}
	str(&c.PidFile, o.PidFile)
	str(&c.LogLevel, o.LogLevel)
	str(&c.LogFormat, o.LogFormat)
	str(&c.LogFile, o.LogFile)
	str(&c.Latchkey.StateDir, o.Latchkey.StateDir)
	if o.ExitAfterAuth != nil {
		c.ExitAfterAuth = o.ExitAfterAuth
	}
	c.Files = append(append([]string(nil), c.Files...), o.Files...)
	return c
}

// Finalize fills every default: mount path, backoff bounds, sink modes,
// template_config, state dir.
func (c *Config) Finalize() {
	if c.AutoAuth != nil && c.AutoAuth.Method != nil {
		m := c.AutoAuth.Method
		if m.MountPath == "" && m.Type != "" {
			m.MountPath = "auth/" + m.Type
		}
		if m.MinBackoff == 0 {
			m.MinBackoff = DefaultMinBackoff
		}
		if m.MaxBackoff == 0 {
			m.MaxBackoff = DefaultMaxBackoff
		}
		if m.Config == nil {
			m.Config = map[string]any{}
		}
	}
	if c.AutoAuth != nil {
		for i := range c.AutoAuth.Sinks {
			if c.AutoAuth.Sinks[i].Mode == 0 {
				c.AutoAuth.Sinks[i].Mode = DefaultSinkMode
			}
		}
	}
	if c.TemplateConfig == nil {
		tc := DefaultTemplateConfig()
		c.TemplateConfig = &tc
	}
	if c.ExitAfterAuth == nil {
		f := false
		c.ExitAfterAuth = &f
	}
	if c.Latchkey.StateDir == "" {
		c.Latchkey.StateDir = DefaultStateDir
	}
}

// SupportedMethods are the auto_auth method types latchkey implements.
var SupportedMethods = []string{"aws", "alicloud", "approle", "token_file"}

// Validate checks a finalized config. It returns nil, or an
// hclconf.Diagnostics error whose lines name the file and line of each
// problem. The Vault address is not checked here: it may come from
// VAULT_ADDR (see vaultclient.Config.Validate).
func (c *Config) Validate() error {
	var diags hcl.Diagnostics
	bad := func(rng hcl.Range, format string, args ...any) {
		diags = append(diags, hclconf.Errorf(rng, format, args...))
	}
	if c.AutoAuth == nil || c.AutoAuth.Method == nil {
		return fmt.Errorf("%s: auto_auth: a method stanza is required", c.filesForMessage())
	}
	m := c.AutoAuth.Method
	if !contains(SupportedMethods, m.Type) {
		bad(m.Range, "auto_auth method %q is not supported (supported: aws, alicloud, approle, token_file)", m.Type)
	}
	if m.MinBackoff > m.MaxBackoff {
		bad(m.Range, "auto_auth method: min_backoff (%s) is greater than max_backoff (%s)", m.MinBackoff, m.MaxBackoff)
	}
	if m.WrapTTL > 0 && len(c.Templates) > 0 {
		bad(m.Range, "auto_auth method: wrap_ttl cannot be used with templates (the agent never sees the wrapped token)")
	}
	paths := map[string]bool{}
	for _, s := range c.AutoAuth.Sinks {
		if s.Type != "file" {
			bad(s.Range, "sink type %q is not supported (supported: file)", s.Type)
			continue
		}
		if s.Path == "" {
			bad(s.Range, `sink "file": config.path is required`)
		} else if paths[s.Path] {
			bad(s.Range, `sink "file": path %s is used by another sink`, s.Path)
		}
		paths[s.Path] = true
	}
	for _, t := range c.Templates {
		switch {
		case t.Source == "" && t.Contents == "":
			bad(t.Range, "template: one of source or contents is required")
		case t.Source != "" && t.Contents != "":
			bad(t.Range, "template: source and contents cannot both be set")
		}
		if t.Destination == "" {
			bad(t.Range, "template: destination is required")
		}
	}
	if tc := c.TemplateConfig; tc != nil {
		if tc.LeaseRenewalThreshold <= 0 || tc.LeaseRenewalThreshold >= 1 {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: fmt.Sprintf("template_config: lease_renewal_threshold %v: want a fraction between 0 and 1", tc.LeaseRenewalThreshold)})
		}
	}
	return hclconf.Err(diags)
}

func (c *Config) filesForMessage() string {
	switch len(c.Files) {
	case 0:
		return "config"
	case 1:
		return c.Files[0]
	}
	return fmt.Sprintf("%s (and %d more)", c.Files[0], len(c.Files)-1)
}

// SameAuth reports whether a and b log in the same way to the same Vault:
// then a reload keeps the current token.
func SameAuth(a, b *Config) bool {
	if !reflect.DeepEqual(a.Vault, b.Vault) || a.Latchkey != b.Latchkey {
		return false
	}
	ma, mb := a.method(), b.method()
	if ma == nil || mb == nil {
		return ma == mb
	}
	x, y := *ma, *mb
	x.Range, y.Range = hcl.Range{}, hcl.Range{}
	return reflect.DeepEqual(x, y)
}

func (c *Config) method() *Method {
	if c.AutoAuth == nil {
		return nil
	}
	return c.AutoAuth.Method
}

// SameSink reports whether two sinks write the same thing to the same file.
func SameSink(a, b Sink) bool {
	a.Range, b.Range = hcl.Range{}, hcl.Range{}
	return a == b
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
