package config

import (
	"sort"

	"github.com/latchkey/latchkey/internal/hclconf"
)

// level is one body split into attributes and blocks (see hclconf.Split:
// HCL 1's `vault = { ... }` is the block `vault { ... }`, and in JSON a
// block is an object or a list of objects with no labels).
type level struct {
	attrs  map[string]*hclconf.Attribute
	blocks []*hclconf.Block
}

// split reads body, treating the names in blockTypes as blocks and
// everything else as attributes.
func split(body *hclconf.Body, blockTypes ...string) (level, hclconf.Diagnostics) {
	lv, diags := hclconf.Split(body, blockTypes...)
	return level{attrs: lv.Attrs, blocks: lv.Blocks}, diags
}

// check refuses attributes and blocks not in the allowed lists, and names
// the unsupported Vault Agent stanzas as such.
func (lv level) check(where string, attrs, blocks []string) hclconf.Diagnostics {
	var diags hclconf.Diagnostics
	okA := set(attrs)
	okB := set(blocks)
	names := make([]string, 0, len(lv.attrs))
	for n := range lv.attrs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		a := lv.attrs[n]
		switch {
		case okA[n]:
		case okB[n]:
			// An object literal became a block in split; anything
			// else cannot be one.
			diags = append(diags, hclconf.Errorf(a.NameRange, "%s: want a block (%s { ... }) or an object (%s = { ... })", n, n, n))
		case where == "" && unsupported[n]:
			diags = append(diags, hclconf.Errorf(a.NameRange, "%q is a Vault Agent stanza latchkey-agent does not support (supported: vault, auto_auth, template, template_config, ssh, pid_file, exit_after_auth, log_*, latchkey)", n))
		default:
			diags = append(diags, hclconf.Errorf(a.NameRange, "unknown key %q%s", n, in(where)))
		}
	}
	for _, b := range lv.blocks {
		switch {
		case okB[b.Type]:
		case where == "" && unsupported[b.Type]:
			diags = append(diags, hclconf.Errorf(b.DefRange, "%q is a Vault Agent stanza latchkey-agent does not support (supported: vault, auto_auth, template, template_config, ssh, pid_file, exit_after_auth, log_*, latchkey)", b.Type))
		default:
			diags = append(diags, hclconf.Errorf(b.DefRange, "unknown block %q%s", b.Type, in(where)))
		}
	}
	return diags
}

func in(where string) string {
	if where == "" {
		return ""
	}
	return " in " + where
}

// unsupported are Vault Agent's stanzas latchkey refuses by name.
var unsupported = set([]string{"cache", "listener", "api_proxy", "telemetry", "env_template", "exec", "persist"})

func set(xs []string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}

// blocksOf returns lv's blocks of type t.
func (lv level) blocksOf(t string) []*hclconf.Block {
	var out []*hclconf.Block
	for _, b := range lv.blocks {
		if b.Type == t {
			out = append(out, b)
		}
	}
	return out
}

// mapAttrs returns the entries of lv's `name { ... }` blocks (an HCL 1
// `name = { ... }` is one too, see split) as attributes, so that values
// keep their positions (and octal literals their spelling).
func (lv level) mapAttrs(name string) (map[string]*hclconf.Attribute, hclconf.Diagnostics) {
	out := map[string]*hclconf.Attribute{}
	var diags hclconf.Diagnostics
	for _, b := range lv.blocksOf(name) {
		attrs, d := b.Body.JustAttributes()
		diags = append(diags, d...)
		for k, v := range attrs {
			out[k] = v
		}
	}
	return out, diags
}
