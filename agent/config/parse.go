package config

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"

	"github.com/latchkey/latchkey/internal/hclconf"
	"github.com/latchkey/latchkey/internal/vaultclient"
)

// unsupported are Vault Agent stanzas latchkey refuses rather than ignores:
// a config relying on them would silently do less than its author meant.
var unsupported = map[string]bool{
	"cache": true, "listener": true, "api_proxy": true, "telemetry": true,
	"env_template": true, "exec": true, "api": true, "persist": true,
	"disable_idle_connections": true, "disable_keep_alives": true,
}

// ignored are Vault Agent keys that do not apply to latchkey and are
// accepted so that an existing file runs unchanged.
var ignored = map[string]bool{"disable_mlock": true}

// Load reads every path (a file, or a directory whose *.hcl and *.json
// files are read in name order) and merges them in order. It returns the
// merged, finalized config, or an error: "read config ..." for I/O, or
// hclconf.Diagnostics with file:line:col for bad content. It does not call
// Validate.
func Load(paths ...string) (*Config, error) {
	if len(paths) == 0 {
		return nil, fmt.Errorf("no config given (use -config FILE|DIR)")
	}
	var files []string
	for _, p := range paths {
		fs, err := expand(p)
		if err != nil {
			return nil, err
		}
		files = append(files, fs...)
	}
	parser := hclparse.NewParser()
	var merged Config
	var diags hcl.Diagnostics
	for _, f := range files {
		c, err := parseFile(parser, f)
		if err != nil {
			if ds, ok := hclconf.AsDiagnostics(err); ok {
				diags = append(diags, ds...)
				continue
			}
			return nil, err
		}
		if merged.AutoAuth != nil && merged.AutoAuth.Method != nil && c.AutoAuth != nil && c.AutoAuth.Method != nil {
			diags = append(diags, hclconf.Errorf(c.AutoAuth.Method.Range, "auto_auth method: only one method is supported (another is in %s)", merged.AutoAuth.Method.Range.Filename))
		}
		merged = merged.Merge(*c)
	}
	if err := hclconf.Err(diags); err != nil {
		return nil, err
	}
	merged.Finalize()
	return &merged, nil
}

// expand returns path itself, or a directory's *.hcl and *.json files in
// name order. An empty directory is an error.
func expand(path string) ([]string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read config %s: %w", path, err)
	}
	if !fi.IsDir() {
		return []string{path}, nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, fmt.Errorf("read config %s: %w", path, err)
	}
	var out []string
	for _, e := range entries {
		ext := strings.ToLower(filepath.Ext(e.Name()))
		if e.Type().IsRegular() && (ext == ".hcl" || ext == ".json") {
			out = append(out, filepath.Join(path, e.Name()))
		}
	}
	sort.Strings(out)
	if len(out) == 0 {
		return nil, fmt.Errorf("read config %s: no *.hcl or *.json files in the directory", path)
	}
	return out, nil
}

// Parse reads one file (HCL, or JSON when it ends in .json) into a Config
// that is neither merged nor finalized.
func Parse(path string) (*Config, error) {
	return parseFile(hclparse.NewParser(), path)
}

// ParseBytes is Parse for content in memory; path names it in messages.
func ParseBytes(path string, src []byte) (*Config, error) {
	p := hclparse.NewParser()
	f, err := hclconf.ParseBytes(p, path, src)
	if err != nil {
		return nil, err
	}
	return decodeFile(p, path, f)
}

func parseFile(p *hclparse.Parser, path string) (*Config, error) {
	f, err := hclconf.Parse(p, path)
	if err != nil {
		return nil, err
	}
	return decodeFile(p, path, f)
}

func decodeFile(p *hclparse.Parser, path string, f *hcl.File) (*Config, error) {
	d := &decoder{p: p}
	root, diags := fromBody(f.Body)
	d.diags = append(d.diags, diags...)
	c := &Config{Files: []string{path}}
	if root != nil {
		d.top(c, root)
	}
	if err := hclconf.Err(d.diags); err != nil {
		return nil, err
	}
	return c, nil
}

// decoder collects diagnostics while reading one file.
type decoder struct {
	p     *hclparse.Parser
	diags hcl.Diagnostics
}

func (d *decoder) errorf(rng hcl.Range, format string, args ...any) {
	d.diags = append(d.diags, hclconf.Errorf(rng, format, args...))
}

func (d *decoder) unknown(it *item, where string) {
	if where == "" {
		d.errorf(it.nameRange, "unknown key %q", it.name)
		return
	}
	d.errorf(it.nameRange, "unknown key %q in %s", it.name, where)
}

func (d *decoder) attr(it *item) *hcl.Attribute {
	a, diags := it.attr()
	d.diags = append(d.diags, diags...)
	return a
}

func (d *decoder) str(it *item) string {
	a := d.attr(it)
	if a == nil {
		return ""
	}
	s, diags := hclconf.String(a)
	d.diags = append(d.diags, diags...)
	return s
}

func (d *decoder) boolean(it *item) bool {
	a := d.attr(it)
	if a == nil {
		return false
	}
	b, diags := hclconf.Bool(a)
	d.diags = append(d.diags, diags...)
	return b
}

func (d *decoder) boolPtr(it *item) *bool {
	b := d.boolean(it)
	return &b
}

func (d *decoder) integer(it *item) int64 {
	a := d.attr(it)
	if a == nil {
		return 0
	}
	n, diags := hclconf.Int(a)
	d.diags = append(d.diags, diags...)
	return n
}

func (d *decoder) float(it *item) float64 {
	a := d.attr(it)
	if a == nil {
		return 0
	}
	f, diags := hclconf.Float(a)
	d.diags = append(d.diags, diags...)
	return f
}

func (d *decoder) duration(it *item) time.Duration {
	a := d.attr(it)
	if a == nil {
		return 0
	}
	v, diags := hclconf.Duration(a)
	d.diags = append(d.diags, diags...)
	return v
}

func (d *decoder) mode(it *item) os.FileMode {
	a := d.attr(it)
	if a == nil {
		return 0
	}
	m, diags := hclconf.FileMode(d.p, a)
	d.diags = append(d.diags, diags...)
	return m
}

func (d *decoder) strList(it *item) []string {
	a := d.attr(it)
	if a == nil {
		return nil
	}
	l, diags := hclconf.StringList(a)
	d.diags = append(d.diags, diags...)
	return l
}

func (d *decoder) objects(it *item) []*object {
	objs, diags := it.objects()
	d.diags = append(d.diags, diags...)
	return objs
}

// one returns the single body of a stanza that may not repeat.
func (d *decoder) one(it *item) *object {
	objs := d.objects(it)
	if len(objs) > 1 {
		d.errorf(it.nameRange, "%s: only one stanza is allowed here", it.name)
		return nil
	}
	if len(objs) == 0 {
		return nil
	}
	if len(it.labels) > 0 {
		d.errorf(it.nameRange, "%s takes no label", it.name)
	}
	return objs[0]
}

func (d *decoder) top(c *Config, root *object) {
	for _, it := range root.items {
		switch it.name {
		case "vault":
			for _, o := range d.objects(it) {
				d.vault(&c.Vault, o)
			}
		case "auto_auth":
			if o := d.one(it); o != nil {
				aa := d.autoAuth(o)
				if c.AutoAuth != nil && c.AutoAuth.Method != nil && aa.Method != nil {
					d.errorf(aa.Method.Range, "auto_auth: only one method is supported")
				}
				*c = c.Merge(Config{AutoAuth: aa})
			}
		case "template_config":
			if o := d.one(it); o != nil {
				c.TemplateConfig = d.templateConfig(o)
			}
		case "template":
			for _, o := range d.objects(it) {
				c.Templates = append(c.Templates, d.template(o, it))
			}
		case "latchkey":
			if o := d.one(it); o != nil {
				d.latchkey(&c.Latchkey, o)
			}
		case "pid_file":
			c.PidFile = d.str(it)
		case "exit_after_auth":
			c.ExitAfterAuth = d.boolPtr(it)
		case "log_level":
			c.LogLevel = d.str(it)
		case "log_format":
			c.LogFormat = d.str(it)
		case "log_file":
			c.LogFile = d.str(it)
		default:
			switch {
			case ignored[it.name]:
			case unsupported[it.name]:
				d.errorf(it.nameRange, "%q is not supported by latchkey-agent (it supports vault, auto_auth, template, template_config, pid_file, exit_after_auth, log_level, log_format, log_file and latchkey)", it.name)
			default:
				d.unknown(it, "")
			}
		}
	}
}

func (d *decoder) vault(v *vaultclient.Config, o *object) {
	for _, it := range o.items {
		switch it.name {
		case "address":
			v.Address = d.str(it)
		case "ca_cert":
			v.CACert = d.str(it)
		case "ca_path":
			v.CAPath = d.str(it)
		case "client_cert":
			v.ClientCert = d.str(it)
		case "client_key":
			v.ClientKey = d.str(it)
		case "tls_server_name":
			v.TLSServerName = d.str(it)
		case "tls_skip_verify":
			v.TLSSkipVerify = d.boolPtr(it)
		case "namespace":
			v.Namespace = d.str(it)
		case "retry":
			if r := d.one(it); r != nil {
				d.retry(v, r)
			}
		default:
			d.unknown(it, "vault")
		}
	}
}

// retry reads `retry { num_retries }`: as in Vault Agent, -1 disables
// retries and 0 keeps the default.
func (d *decoder) retry(v *vaultclient.Config, o *object) {
	for _, it := range o.items {
		if it.name != "num_retries" {
			d.unknown(it, "vault.retry")
			continue
		}
		n := d.integer(it)
		switch {
		case n < -1:
			d.errorf(it.expr.Range(), "invalid value for \"num_retries\": want -1 (no retries), 0 (default) or more")
		case n == -1:
			v.MaxRetries = vaultclient.Int(0)
		case n > 0:
			v.MaxRetries = vaultclient.Int(int(n))
		}
	}
}

func (d *decoder) autoAuth(o *object) *AutoAuth {
	aa := &AutoAuth{}
	for _, it := range o.items {
		switch it.name {
		case "method":
			for _, body := range d.objects(it) {
				if aa.Method != nil {
					d.errorf(it.nameRange, "auto_auth: only one method is supported")
					continue
				}
				aa.Method = d.method(it, body)
			}
		case "sink":
			for _, body := range d.objects(it) {
				if s := d.sink(it, body); s != nil {
					aa.Sinks = append(aa.Sinks, *s)
				}
			}
		case "enable_reauth_on_new_credentials":
			// Vault Agent's switch for cloud credential changes; latchkey's
			// methods re-read credentials on every login anyway.
			d.boolean(it)
		default:
			d.unknown(it, "auto_auth")
		}
	}
	return aa
}

func (d *decoder) method(it *item, o *object) *Method {
	typ, body, diags := typed(it, o)
	d.diags = append(d.diags, diags...)
	if body == nil {
		return nil
	}
	m := &Method{Type: typ, Range: it.rng}
	if !it.rng.Empty() {
		m.Range = hcl.Range{Filename: it.rng.Filename, Start: it.nameRange.Start, End: it.nameRange.End}
	}
	for _, k := range body.items {
		switch k.name {
		case "type":
		case "mount_path":
			m.MountPath = strings.TrimSuffix(d.str(k), "/")
		case "namespace":
			m.Namespace = d.str(k)
		case "wrap_ttl":
			m.WrapTTL = d.duration(k)
		case "min_backoff":
			m.MinBackoff = d.duration(k)
		case "max_backoff":
			m.MaxBackoff = d.duration(k)
		case "exit_on_err":
			m.ExitOnErr = d.boolean(k)
		case "config":
			if c := d.one(k); c != nil {
				cfg, diags := goMap(c)
				d.diags = append(d.diags, diags...)
				m.Config = cfg
			}
		default:
			d.unknown(k, fmt.Sprintf("auto_auth method %q", typ))
		}
	}
	return m
}

func (d *decoder) sink(it *item, o *object) *Sink {
	typ, body, diags := typed(it, o)
	d.diags = append(d.diags, diags...)
	if body == nil {
		return nil
	}
	s := &Sink{Type: typ, Range: hcl.Range{Filename: it.nameRange.Filename, Start: it.nameRange.Start, End: it.nameRange.End}}
	for _, k := range body.items {
		switch k.name {
		case "type":
		case "wrap_ttl":
			s.WrapTTL = d.duration(k)
		case "config":
			if c := d.one(k); c != nil {
				d.sinkConfig(s, c)
			}
		case "dh_type", "dh_path", "aad", "aad_env_var", "derive_key":
			d.errorf(k.nameRange, "sink %q: %q is not supported by latchkey-agent (Diffie-Hellman encrypted sinks)", typ, k.name)
		default:
			d.unknown(k, fmt.Sprintf("sink %q", typ))
		}
	}
	return s
}

func (d *decoder) sinkConfig(s *Sink, o *object) {
	for _, k := range o.items {
		switch k.name {
		case "path":
			s.Path = d.str(k)
		case "mode":
			n := len(d.diags)
			s.Mode = d.mode(k)
			if s.Mode == 0 && len(d.diags) == n {
				d.errorf(k.expr.Range(), "invalid value for \"mode\": 0 would make the sink unreadable; want a mode such as 0640")
			}
		case "owner":
			s.Owner = d.str(k)
		case "group":
			s.Group = d.str(k)
		default:
			d.unknown(k, fmt.Sprintf("sink %q config", s.Type))
		}
	}
}

func (d *decoder) templateConfig(o *object) *TemplateConfig {
	tc := DefaultTemplateConfig()
	for _, it := range o.items {
		switch it.name {
		case "exit_on_retry_failure":
			tc.ExitOnRetryFailure = d.boolean(it)
		case "static_secret_render_interval":
			tc.StaticSecretRenderInterval = d.duration(it)
		case "lease_renewal_threshold":
			tc.LeaseRenewalThreshold = d.float(it)
		case "max_connections_per_host":
			tc.MaxConnectionsPerHost = int(d.integer(it))
		default:
			d.unknown(it, "template_config")
		}
	}
	return &tc
}

func (d *decoder) latchkey(l *Latchkey, o *object) {
	for _, it := range o.items {
		switch it.name {
		case "state_dir":
			l.StateDir = d.str(it)
		default:
			d.unknown(it, "latchkey")
		}
	}
}
