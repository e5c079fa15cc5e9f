package config

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/latchkey/latchkey/agent/auth"
	"github.com/latchkey/latchkey/internal/hclconf"
	"github.com/latchkey/latchkey/internal/vaultclient"
)

// Config is the agent's whole configuration.
type Config struct {
	Vault          Vault
	AutoAuth       *AutoAuth
	TemplateConfig TemplateConfig
	Templates      []Template
	PidFile        string
	ExitAfterAuth  bool
	LogLevel       string
	LogFormat      string
	LogFile        string
	// StateDir is latchkey { state_dir } (default /var/lib/latchkey).
	StateDir string
	// LoginSplay is latchkey { login_splay } (default 0): the first login
	// of a run waits a random time up to it, so that a fleet started at
	// once does not log in as one herd.
	LoginSplay time.Duration
	// SSH is the ssh stanza (nil without one).
	SSH *SSH
	// Files are the files read, in order.
	Files []string

	// set holds what the files set of the keys whose defaults finalize
	// applies, nil meaning "not set": merging goes key by key.
	set settings
}

// settings are the keys merged one by one across files.
type settings struct {
	templateConfig templateConfigSet
	exitAfterAuth  *bool
	loginSplay     *time.Duration
}

// Vault is the `vault { ... }` stanza.
type Vault struct {
	Client vaultclient.Config
	// NumRetries is retry { num_retries } as written until finalize, then
	// the number of retries it means, as in Vault Agent: unset or 0 is the
	// default (12), -1 is none (0); below -1 is refused when parsed.
	NumRetries *int
}

// AutoAuth is the `auto_auth { ... }` stanza.
type AutoAuth struct {
	Method auth.MethodConfig
	// MinBackoff and MaxBackoff bound the wait between failed logins
	// (defaults 1s and 5m).
	MinBackoff, MaxBackoff time.Duration
	// MinBackoffRange is min_backoff's position (zero when not given).
	MinBackoffRange hclconf.Range
	// ExitOnErr stops the agent when a login fails, instead of retrying.
	ExitOnErr bool
	Sinks     []Sink
}

// Sink is a `sink "file" { ... }` stanza.
type Sink struct {
	Path string
	// Mode is config.mode (default 0640).
	Mode os.FileMode
	// Owner and Group are names or numbers; "" leaves the agent's own.
	Owner, Group string
	// WrapTTL response-wraps the token written to this sink.
	WrapTTL time.Duration
	// Range is the stanza's position; Keys holds each config key's, so
	// that an error about owner or group points at it.
	Range hclconf.Range
	Keys  map[string]hclconf.Range
}

// KeyRange returns config key's position, or the stanza's when the key's
// is unknown.
func (s Sink) KeyRange(key string) hclconf.Range {
	if r, ok := s.Keys[key]; ok && r.Filename != "" {
		return r
	}
	return s.Range
}

// Load reads the files and directories in paths (a directory contributes
// its *.hcl and *.json files in name order, not those whose name starts
// with a dot: an editor's lock or swap file such as emacs's dangling
// .#agent.hcl symlink), merges them in order and validates the result.
// Every error names file:line:col, or the file that could not be read.
func Load(paths ...string) (*Config, error) {
	var files []string
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("read config %s: %w", p, err)
		}
		if !fi.IsDir() {
			files = append(files, p)
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			return nil, fmt.Errorf("read config directory %s: %w", p, err)
		}
		var names []string
		for _, e := range entries {
			ext := strings.ToLower(filepath.Ext(e.Name()))
			if !e.IsDir() && !strings.HasPrefix(e.Name(), ".") && (ext == ".hcl" || ext == ".json") {
				names = append(names, filepath.Join(p, e.Name()))
			}
		}
		sort.Strings(names)
		if len(names) == 0 {
			return nil, fmt.Errorf("config directory %s holds no .hcl or .json file (dotfiles are skipped)", p)
		}
		files = append(files, names...)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no config file given (-config)")
	}
	return load(files, hclconf.ParseBytes)
}

// load reads files with parse (hclconf.ParseBytes; tests give hcl/v2's
// reader as the oracle, see oracle_test.go), merges and validates them.
func load(files []string, parse func(path string, src []byte) (*hclconf.Body, error)) (*Config, error) {
	c := &Config{}
	var diags hclconf.Diagnostics
	for _, f := range files {
		src, err := readTrusted(f)
		if err != nil {
			return nil, err
		}
		body, err := parse(f, src)
		if err != nil {
			return nil, err
		}
		one, d := parseFile(body)
		diags = append(diags, d...)
		c.merge(one)
		c.Files = append(c.Files, f)
	}
	if err := hclconf.Err(diags); err != nil {
		return nil, err
	}
	c.finalize()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// merge lays o over c key by key: a value o sets wins, one it leaves unset
// keeps c's; templates add up. (auto_auth is one stanza: a later one
// replaces it whole.)
func (c *Config) merge(o *Config) {
	c.Vault.Client = c.Vault.Client.Merge(o.Vault.Client)
	if o.Vault.NumRetries != nil {
		c.Vault.NumRetries = o.Vault.NumRetries
	}
	if o.AutoAuth != nil {
		c.AutoAuth = o.AutoAuth
	}
	c.set.templateConfig.merge(o.set.templateConfig)
	if o.set.exitAfterAuth != nil {
		c.set.exitAfterAuth = o.set.exitAfterAuth
	}
	if o.set.loginSplay != nil {
		c.set.loginSplay = o.set.loginSplay
	}
	c.Templates = append(c.Templates, o.Templates...)
	c.SSH = c.SSH.Merge(o.SSH)
	for _, kv := range []struct {
		dst *string
		v   string
	}{
		{&c.PidFile, o.PidFile}, {&c.LogLevel, o.LogLevel}, {&c.LogFormat, o.LogFormat},
		{&c.LogFile, o.LogFile}, {&c.StateDir, o.StateDir},
	} {
		if kv.v != "" {
			*kv.dst = kv.v
		}
	}
}

// finalize applies every default (see defaults.go) to what no file set.
func (c *Config) finalize() {
	if c.StateDir == "" {
		c.StateDir = DefaultStateDir
	}
	c.SSH.Finalize()
	c.Vault.NumRetries = ptr(NumRetries(c.Vault.NumRetries))
	c.TemplateConfig = c.set.templateConfig.finalize()
	// A failing template is tried once, then retried num_retries times,
	// before its retries count as exhausted (consul-template's Attempts,
	// which Vault Agent sets to num_retries).
	c.TemplateConfig.RetryAttempts = *c.Vault.NumRetries + 1
	if c.set.exitAfterAuth != nil {
		c.ExitAfterAuth = *c.set.exitAfterAuth
	}
	if c.set.loginSplay != nil {
		c.LoginSplay = *c.set.loginSplay
	}
	if a := c.AutoAuth; a != nil {
		if a.Method.MountPath == "" {
			a.Method.MountPath = "auth/" + a.Method.Type
		}
		a.Method.MountPath = strings.Trim(a.Method.MountPath, "/")
		if a.MinBackoff == 0 {
			a.MinBackoff = DefaultMinBackoff
		}
		if a.MaxBackoff == 0 {
			a.MaxBackoff = DefaultMaxBackoff
		}
	}
}

// Validate checks what the parser alone cannot: an auto_auth stanza to run
// with, backoff bounds in order, and a destination for every template.
func (c *Config) Validate() error {
	if c.AutoAuth == nil {
		return fmt.Errorf("%s: no auto_auth stanza: latchkey-agent needs one method to log in with", strings.Join(c.Files, ", "))
	}
	a := c.AutoAuth
	if a.MinBackoff > a.MaxBackoff {
		at := a.Method.At()
		if r := a.MinBackoffRange; r.Filename != "" {
			at = hclconf.Pos(r)
		}
		return fmt.Errorf("%s: auto_auth: min_backoff (%s) is greater than max_backoff (%s)", at, a.MinBackoff, a.MaxBackoff)
	}
	if err := c.SSH.Validate(); err != nil {
		return err
	}
	if err := c.checkOverlaps(); err != nil {
		return err
	}
	switch c.LogFormat {
	case "", "standard", "json", "console", "auto":
	default:
		return fmt.Errorf("log_format %q: want standard or json", c.LogFormat)
	}
	return nil
}
