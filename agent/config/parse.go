package config

import (
	"strconv"
	"strings"
	"time"

	"github.com/latchkey/latchkey/internal/hclconf"
	"github.com/latchkey/latchkey/internal/vaultclient"
)

// parser holds one file's decoding state: the diagnostics gathered so far.
type parser struct {
	diags hclconf.Diagnostics
}

func (ps *parser) add(d hclconf.Diagnostics) { ps.diags = append(ps.diags, d...) }

func (ps *parser) str(a *hclconf.Attribute, dst *string) {
	if a != nil {
		v, d := hclconf.String(a)
		ps.add(d)
		*dst = v
	}
}

func (ps *parser) boolean(a *hclconf.Attribute, dst *bool) {
	if a != nil {
		v, d := hclconf.Bool(a)
		ps.add(d)
		*dst = v
	}
}

func (ps *parser) duration(a *hclconf.Attribute, dst *time.Duration) {
	if a != nil {
		v, d := hclconf.Duration(a)
		ps.add(d)
		*dst = v
	}
}

func (ps *parser) integer(a *hclconf.Attribute) *int {
	if a == nil {
		return nil
	}
	v, d := hclconf.Int(a)
	ps.add(d)
	i := int(v)
	return &i
}

// id is integer for a uid or gid: one no file can be owned by (negative,
// beyond config.MaxID) is an error at its value.
func (ps *parser) id(a *hclconf.Attribute) *int {
	if a == nil {
		return nil
	}
	v, d := hclconf.Int(a)
	ps.add(d)
	if !d.HasErrors() {
		if err := CheckID(v); err != nil {
			ps.add(hclconf.Diagnostics{hclconf.Errorf(a.Value.Range, "invalid value for %q: %v", a.Name, err)})
		}
	}
	i := int(v)
	return &i
}

var topAttrs = []string{"pid_file", "exit_after_auth", "log_level", "log_format", "log_file"}
var topBlocks = []string{"vault", "auto_auth", "template", "template_config", "latchkey", "ssh"}

// parseFile decodes one file's body.
func parseFile(body *hclconf.Body) (*Config, hclconf.Diagnostics) {
	ps := &parser{}
	c := &Config{}
	lv, d := split(body, append(append([]string{}, topBlocks...), "cache", "listener", "api_proxy", "telemetry", "env_template", "exec", "persist")...)
	ps.add(d)
	ps.add(lv.check("", topAttrs, topBlocks))
	ps.str(lv.attrs["pid_file"], &c.PidFile)
	if a := lv.attrs["exit_after_auth"]; a != nil {
		var v bool
		ps.boolean(a, &v)
		c.set.exitAfterAuth = &v
	}
	ps.str(lv.attrs["log_level"], &c.LogLevel)
	ps.str(lv.attrs["log_format"], &c.LogFormat)
	ps.str(lv.attrs["log_file"], &c.LogFile)
	for _, b := range lv.blocksOf("vault") {
		ps.vault(b, &c.Vault)
	}
	for _, b := range lv.blocksOf("auto_auth") {
		if c.AutoAuth != nil {
			ps.add(hclconf.Diagnostics{hclconf.Errorf(b.DefRange, "auto_auth: only one auto_auth stanza is allowed")})
		}
		c.AutoAuth = ps.autoAuth(b)
	}
	for _, b := range lv.blocksOf("template_config") {
		c.set.templateConfig.merge(ps.templateConfig(b))
	}
	for _, b := range lv.blocksOf("template") {
		c.Templates = append(c.Templates, ps.template(b))
	}
	for _, b := range lv.blocksOf("ssh") {
		c.SSH = c.SSH.Merge(ps.ssh(b))
	}
	for _, b := range lv.blocksOf("latchkey") {
		l, d := split(b.Body)
		ps.add(d)
		ps.add(l.check("latchkey", []string{"state_dir", "login_splay"}, nil))
		ps.str(l.attrs["state_dir"], &c.StateDir)
		if a := l.attrs["login_splay"]; a != nil {
			var d time.Duration
			ps.duration(a, &d)
			if d < 0 || d > MaxLoginSplay {
				ps.add(hclconf.Diagnostics{hclconf.Errorf(a.Value.Range, "login_splay: want a duration from 0s to 10m, not %s", d)})
			}
			c.set.loginSplay = &d
		}
	}
	return c, ps.diags
}

func (ps *parser) vault(b *hclconf.Block, v *Vault) {
	lv, d := split(b.Body, "retry")
	ps.add(d)
	ps.add(lv.check("vault", []string{"address", "ca_cert", "ca_path", "client_cert", "client_key",
		"tls_skip_verify", "tls_server_name", "namespace", "addresses", "timeout"}, []string{"retry"}))
	c := &v.Client
	ps.str(lv.attrs["address"], &c.Address)
	if a := lv.attrs["addresses"]; a != nil {
		list, d := hclconf.StringList(a)
		ps.add(d)
		c.Addresses = list
	}
	ps.duration(lv.attrs["timeout"], &c.Timeout)
	ps.str(lv.attrs["ca_cert"], &c.CACert)
	ps.str(lv.attrs["ca_path"], &c.CAPath)
	ps.str(lv.attrs["client_cert"], &c.ClientCert)
	ps.str(lv.attrs["client_key"], &c.ClientKey)
	ps.str(lv.attrs["tls_server_name"], &c.TLSServerName)
	ps.str(lv.attrs["namespace"], &c.Namespace)
	if a := lv.attrs["tls_skip_verify"]; a != nil {
		var skip bool
		ps.boolean(a, &skip)
		c.TLSSkipVerify = vaultclient.Bool(skip)
	}
	for _, r := range lv.blocksOf("retry") {
		rl, d := split(r.Body)
		ps.add(d)
		ps.add(rl.check("vault.retry", []string{"num_retries"}, nil))
		if a := rl.attrs["num_retries"]; a != nil {
			n := ps.integer(a)
			// Vault Agent's values: -1 (no retries), 0 (the default, 12)
			// or a count; anything below -1 is a typo, not "none".
			if *n < -1 {
				ps.add(hclconf.Diagnostics{hclconf.Errorf(a.Value.Range, "vault.retry.num_retries: want -1 (no retries), 0 (the default, 12 retries) or a number of retries, not %d", *n)})
			}
			v.NumRetries = n
		}
	}
}

func (ps *parser) autoAuth(b *hclconf.Block) *AutoAuth {
	a := &AutoAuth{}
	lv, d := split(b.Body, "method", "sink")
	ps.add(d)
	ps.add(lv.check("auto_auth", nil, []string{"method", "sink"}))
	methods := lv.blocksOf("method")
	if len(methods) != 1 {
		ps.add(hclconf.Diagnostics{hclconf.Errorf(b.DefRange, "auto_auth: want exactly one method stanza, found %d", len(methods))})
	}
	for _, m := range methods {
		ps.method(m, a)
	}
	for _, s := range lv.blocksOf("sink") {
		if sk, ok := ps.sink(s); ok {
			a.Sinks = append(a.Sinks, sk)
		}
	}
	return a
}

func (ps *parser) method(b *hclconf.Block, a *AutoAuth) {
	lv, d := split(b.Body, "config")
	ps.add(d)
	ps.add(lv.check("method", []string{"type", "mount_path", "namespace", "wrap_ttl", "min_backoff",
		"max_backoff", "exit_on_err", "config"}, []string{"config"}))
	m := &a.Method
	m.File, m.Line, m.Range = b.DefRange.Filename, b.DefRange.Start.Line, b.DefRange
	if cb := lv.blocksOf("config"); len(cb) > 0 {
		m.ConfigRange = cb[0].DefRange
	}
	if len(b.Labels) > 0 {
		m.Type = b.Labels[0]
	}
	var typ string
	ps.str(lv.attrs["type"], &typ)
	switch {
	case typ != "" && m.Type != "" && typ != m.Type:
		ps.add(hclconf.Diagnostics{hclconf.Errorf(lv.attrs["type"].Value.Range, "method: type %q contradicts the label %q", typ, m.Type)})
	case typ != "":
		m.Type = typ
	}
	switch m.Type {
	case "aws", "alicloud", "approle", "token_file":
	case "":
		ps.add(hclconf.Diagnostics{hclconf.Errorf(b.DefRange, `method: missing type (method "aws" { ... } or type = "aws")`)})
	default:
		ps.add(hclconf.Diagnostics{hclconf.Errorf(b.DefRange, "method: type %q is not supported (supported: aws, alicloud, approle, token_file)", m.Type)})
	}
	ps.str(lv.attrs["mount_path"], &m.MountPath)
	ps.str(lv.attrs["namespace"], &m.Namespace)
	if a := lv.attrs["wrap_ttl"]; a != nil {
		// A wrapped login hands the agent a token it cannot renew or use
		// for templates; Vault Agent then just parks. Refuse it loudly
		// rather than ignore it.
		ps.add(hclconf.Diagnostics{hclconf.Errorf(a.NameRange, "method: wrap_ttl is not supported by latchkey-agent (wrap the token per sink: sink \"file\" { wrap_ttl = ... })")})
	}
	ps.duration(lv.attrs["min_backoff"], &a.MinBackoff)
	ps.duration(lv.attrs["max_backoff"], &a.MaxBackoff)
	ps.boolean(lv.attrs["exit_on_err"], &a.ExitOnErr)
	attrs, d := lv.mapAttrs("config")
	ps.add(d)
	m.Config = map[string]any{}
	m.Keys = map[string]hclconf.Range{}
	for k, attr := range attrs {
		m.Keys[k] = attr.NameRange
		m.Config[k] = attr.Value.Go()
	}
	if r := lv.attrs["min_backoff"]; r != nil {
		a.MinBackoffRange = r.NameRange
	}
}

func (ps *parser) sink(b *hclconf.Block) (Sink, bool) {
	s := Sink{Mode: DefaultSinkMode, Range: b.DefRange}
	lv, d := split(b.Body, "config")
	ps.add(d)
	ps.add(lv.check("sink", []string{"type", "wrap_ttl", "config"}, []string{"config"}))
	for _, k := range []string{"dh_type", "dh_path", "aad", "aad_env_var", "derive_key"} {
		if a := lv.attrs[k]; a != nil {
			ps.add(hclconf.Diagnostics{hclconf.Errorf(a.NameRange, "sink: %s (encrypted sinks) is not supported; use wrap_ttl or file permissions", k)})
		}
	}
	typ := ""
	if len(b.Labels) > 0 {
		typ = b.Labels[0]
	}
	ps.str(lv.attrs["type"], &typ)
	if typ != "file" {
		ps.add(hclconf.Diagnostics{hclconf.Errorf(b.DefRange, `sink: type %q is not supported (only "file")`, typ)})
	}
	ps.duration(lv.attrs["wrap_ttl"], &s.WrapTTL)
	attrs, d := lv.mapAttrs("config")
	ps.add(d)
	s.Keys = map[string]hclconf.Range{}
	for k, a := range attrs {
		s.Keys[k] = a.NameRange
		switch k {
		case "path":
			ps.str(a, &s.Path)
		case "mode":
			m, d := hclconf.FileMode(a)
			ps.add(d)
			s.Mode = m
		case "owner", "group":
			str := strings.TrimSpace(toString(a.Value.Go()))
			if k == "owner" {
				s.Owner = str
			} else {
				s.Group = str
			}
		default:
			ps.add(hclconf.Diagnostics{hclconf.Errorf(a.NameRange, "unknown key %q in sink config", k)})
		}
	}
	if s.Path == "" {
		ps.add(hclconf.Diagnostics{hclconf.Errorf(b.DefRange, "sink: config.path is required")})
		return s, false
	}
	return s, true
}

// templateConfig returns the keys the stanza sets.
func (ps *parser) templateConfig(b *hclconf.Block) templateConfigSet {
	var tc templateConfigSet
	lv, d := split(b.Body)
	ps.add(d)
	ps.add(lv.check("template_config", []string{"exit_on_retry_failure", "static_secret_render_interval",
		"lease_renewal_threshold", "max_connections_per_host"}, nil))
	if a := lv.attrs["exit_on_retry_failure"]; a != nil {
		tc.ExitOnRetryFailure = new(bool)
		ps.boolean(a, tc.ExitOnRetryFailure)
	}
	if a := lv.attrs["static_secret_render_interval"]; a != nil {
		tc.StaticSecretRenderInterval = new(time.Duration)
		ps.duration(a, tc.StaticSecretRenderInterval)
	}
	if a := lv.attrs["lease_renewal_threshold"]; a != nil {
		f, d := hclconf.Float(a)
		ps.add(d)
		if !d.HasErrors() && (f <= 0 || f >= 1) {
			ps.add(hclconf.Diagnostics{hclconf.Errorf(a.Value.Range, "lease_renewal_threshold: want a fraction between 0 and 1, such as 0.9")})
		}
		tc.LeaseRenewalThreshold = &f
	}
	tc.MaxConnectionsPerHost = ps.integer(lv.attrs["max_connections_per_host"])
	return tc
}

func (ps *parser) template(b *hclconf.Block) Template {
	t := Template{CreateDestDirs: true, Range: b.DefRange}
	lv, d := split(b.Body, "exec", "wait")
	ps.add(d)
	ps.add(lv.check("template", []string{"source", "contents", "destination", "create_dest_dirs", "perms",
		"user", "uid", "group", "gid", "backup", "error_on_missing_key", "left_delimiter", "right_delimiter",
		"command", "command_timeout"}, []string{"exec", "wait"}))
	ps.str(lv.attrs["source"], &t.Source)
	ps.str(lv.attrs["contents"], &t.Contents)
	ps.str(lv.attrs["destination"], &t.Destination)
	ps.boolean(lv.attrs["create_dest_dirs"], &t.CreateDestDirs)
	if a := lv.attrs["perms"]; a != nil {
		m, d := hclconf.FileMode(a)
		ps.add(d)
		// Vault Agent takes perms = 0 for unset (the existing file's mode,
		// else 0644). Taken as a mode it was written 0600 (the writer's
		// zero) and, never 0000, written again at every refresh.
		if m != 0 {
			t.Perms = &m
		}
	}
	ps.str(lv.attrs["user"], &t.User)
	ps.str(lv.attrs["group"], &t.Group)
	t.UID = ps.id(lv.attrs["uid"])
	t.GID = ps.id(lv.attrs["gid"])
	t.Keys = map[string]hclconf.Range{}
	for k, a := range lv.attrs {
		t.Keys[k] = a.NameRange
	}
	ps.boolean(lv.attrs["backup"], &t.Backup)
	ps.boolean(lv.attrs["error_on_missing_key"], &t.ErrorOnMissingKey)
	ps.str(lv.attrs["left_delimiter"], &t.LeftDelim)
	ps.str(lv.attrs["right_delimiter"], &t.RightDelim)
	if a := lv.attrs["command"]; a != nil {
		var cmd string
		ps.str(a, &cmd)
		t.Exec = &Exec{Command: []string{"/bin/sh", "-c", cmd}, Timeout: DefaultCommandTimeout}
		ps.duration(lv.attrs["command_timeout"], &t.Exec.Timeout)
	}
	for _, e := range lv.blocksOf("exec") {
		el, d := split(e.Body)
		ps.add(d)
		ps.add(el.check("template.exec", []string{"command", "timeout"}, nil))
		// As consul-template finalizes it: what exec leaves unset comes from
		// the template's command and command_timeout (so "command = ..."
		// beside "exec { timeout = ... }" runs that command), else the
		// default timeout.
		ex := &Exec{Timeout: DefaultCommandTimeout}
		if t.Exec != nil {
			*ex = *t.Exec
		}
		if a := el.attrs["command"]; a != nil {
			list, d := hclconf.StringList(a)
			ps.add(d)
			// A one-string command is a shell line, as consul-template runs it.
			if a.Value.Kind == hclconf.KindString {
				var s string
				ps.str(a, &s)
				list = []string{"/bin/sh", "-c", s}
			}
			ex.Command = list
		}
		ps.duration(el.attrs["timeout"], &ex.Timeout)
		if len(ex.Command) == 0 {
			ps.add(hclconf.Diagnostics{hclconf.Errorf(e.DefRange, "template.exec: command is required (in exec, or as the template's command)")})
		}
		t.Exec = ex
	}
	waits, d := lv.mapAttrs("wait")
	ps.add(d)
	for k, a := range waits {
		switch k {
		case "min":
			ps.duration(a, &t.Wait.Min)
		case "max":
			ps.duration(a, &t.Wait.Max)
		default:
			ps.add(hclconf.Diagnostics{hclconf.Errorf(a.NameRange, "unknown key %q in template.wait", k)})
		}
	}
	switch {
	case t.Source == "" && t.Contents == "":
		ps.add(hclconf.Diagnostics{hclconf.Errorf(b.DefRange, "template: one of source or contents is required")})
	case t.Source != "" && t.Contents != "":
		ps.add(hclconf.Diagnostics{hclconf.Errorf(b.DefRange, "template: source and contents are mutually exclusive")})
	}
	if t.Destination == "" {
		ps.add(hclconf.Diagnostics{hclconf.Errorf(b.DefRange, "template: destination is required")})
	}
	if (t.User != "" && t.UID != nil) || (t.Group != "" && t.GID != nil) {
		ps.add(hclconf.Diagnostics{hclconf.Errorf(b.DefRange, "template: give user or uid (group or gid), not both")})
	}
	return t
}

func toString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int64:
		return itoa(x)
	case float64:
		return itoa(int64(x))
	}
	return ""
}

func itoa(i int64) string { return strconv.FormatInt(i, 10) }
