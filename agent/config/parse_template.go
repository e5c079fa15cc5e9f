package config

import (
	"strings"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/latchkey/latchkey/internal/hclconf"
)

// DefaultCommandTimeout bounds a template's command, as Vault Agent.
const DefaultCommandTimeout = 30 * time.Second

func (d *decoder) template(o *object, it *item) Template {
	// Point at the `template` keyword of a block, or at the JSON object.
	t := Template{CreateDestDirs: true, Range: o.rng}
	if it.body != nil {
		t.Range = it.nameRange
	}
	var timeout time.Duration
	for _, it := range o.items {
		switch it.name {
		case "source":
			t.Source = d.str(it)
		case "contents":
			t.Contents = d.str(it)
		case "destination":
			t.Destination = d.str(it)
		case "create_dest_dirs":
			t.CreateDestDirs = d.boolean(it)
		case "perms":
			m := d.mode(it)
			t.Perms = &m
		case "user":
			t.User = d.str(it)
		case "uid":
			n := int(d.integer(it))
			t.UID = &n
		case "group":
			t.Group = d.str(it)
		case "gid":
			n := int(d.integer(it))
			t.GID = &n
		case "backup":
			t.Backup = d.boolean(it)
		case "error_on_missing_key":
			t.ErrorOnMissingKey = d.boolean(it)
		case "left_delimiter":
			t.LeftDelim = d.str(it)
		case "right_delimiter":
			t.RightDelim = d.str(it)
		case "command":
			if argv := d.command(it); argv != nil {
				t.Exec = &Exec{Command: argv}
			}
		case "command_timeout":
			timeout = d.duration(it)
		case "exec":
			if e := d.one(it); e != nil {
				t.Exec = d.exec(e)
			}
		case "wait":
			t.Wait = d.wait(it)
		case "function_denylist", "function_blacklist", "sandbox_path", "error_fatal", "map_to_environment_variable":
			d.errorf(it.nameRange, "template: %q is not supported by latchkey-agent", it.name)
		default:
			d.unknown(it, "template")
		}
	}
	if t.Exec != nil {
		if t.Exec.Timeout == 0 {
			t.Exec.Timeout = timeout
		}
		if t.Exec.Timeout == 0 {
			t.Exec.Timeout = DefaultCommandTimeout
		}
	}
	return t
}

// command reads a command given as a string (run by /bin/sh -c, as
// consul-template does) or as a list (the argv itself).
func (d *decoder) command(it *item) []string {
	a := d.attr(it)
	if a == nil {
		return nil
	}
	v, diags := hclconf.Value(a)
	d.diags = append(d.diags, diags...)
	if diags.HasErrors() || v.IsNull() {
		return nil
	}
	if v.Type() == cty.String {
		s := strings.TrimSpace(v.AsString())
		if s == "" {
			return nil
		}
		return []string{"/bin/sh", "-c", s}
	}
	argv := d.strList(it)
	if len(argv) == 0 {
		d.errorf(it.expr.Range(), "invalid value for %q: want a command", it.name)
		return nil
	}
	return argv
}

func (d *decoder) exec(o *object) *Exec {
	e := &Exec{}
	for _, it := range o.items {
		switch it.name {
		case "command":
			e.Command = d.command(it)
		case "timeout":
			e.Timeout = d.duration(it)
		default:
			d.unknown(it, "template exec")
		}
	}
	if e.Command == nil {
		d.errorf(o.rng, "template exec: command is required")
		return nil
	}
	return e
}

// wait reads `wait { min, max }` or consul-template's "min[:max]" string.
func (d *decoder) wait(it *item) Wait {
	var w Wait
	if it.expr != nil {
		if v, diags := it.expr.Value(nil); !diags.HasErrors() && v.Type() == cty.String {
			parts := strings.SplitN(v.AsString(), ":", 2)
			var err error
			if w.Min, err = time.ParseDuration(strings.TrimSpace(parts[0])); err != nil {
				d.errorf(it.expr.Range(), `invalid value for "wait": want "min:max" durations`)
				return Wait{}
			}
			w.Max = 4 * w.Min
			if len(parts) == 2 {
				if w.Max, err = time.ParseDuration(strings.TrimSpace(parts[1])); err != nil {
					d.errorf(it.expr.Range(), `invalid value for "wait": want "min:max" durations`)
					return Wait{}
				}
			}
			return w
		}
	}
	o := d.one(it)
	if o == nil {
		return w
	}
	for _, k := range o.items {
		switch k.name {
		case "min":
			w.Min = d.duration(k)
		case "max":
			w.Max = d.duration(k)
		default:
			d.unknown(k, "template wait")
		}
	}
	if w.Max == 0 {
		w.Max = 4 * w.Min
	}
	if w.Max < w.Min {
		d.errorf(it.nameRange, "template wait: max (%s) is less than min (%s)", w.Max, w.Min)
	}
	return w
}
