package config

import (
	"sort"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"

	"github.com/latchkey/latchkey/internal/hclconf"
)

// block is one stanza, labelled (`method "aws" {}`) or not
// (`method { type = "aws" }`), from HCL or JSON.
type block struct {
	Type     string
	Labels   []string
	Body     hcl.Body
	DefRange hcl.Range
}

// level is one body split into attributes and blocks.
type level struct {
	attrs  map[string]*hcl.Attribute
	blocks []block
}

// split reads body, treating the names in blockTypes as blocks and
// everything else as attributes. Native HCL keeps labels as written; in JSON
// a block is an object (or a list of objects) and carries no labels.
func split(body hcl.Body, blockTypes ...string) (level, hcl.Diagnostics) {
	lv := level{attrs: map[string]*hcl.Attribute{}}
	if sb, ok := body.(*hclsyntax.Body); ok {
		var diags hcl.Diagnostics
		isBlock := set(blockTypes)
		for name, a := range sb.Attributes {
			// HCL 1's `vault = { ... }` is the block `vault { ... }`
			// (Vault reads both): read it as one, never skip it.
			if obj, ok := a.Expr.(*hclsyntax.ObjectConsExpr); ok && isBlock[name] {
				b, d := objectBody(name, obj)
				diags = append(diags, d...)
				lv.blocks = append(lv.blocks, block{Type: name, Body: b, DefRange: a.NameRange})
				continue
			}
			lv.attrs[name] = a.AsHCLAttribute()
		}
		for _, b := range sb.Blocks {
			lv.blocks = append(lv.blocks, block{Type: b.Type, Labels: b.Labels, Body: b.Body, DefRange: b.DefRange()})
		}
		// Map iteration put the object forms in random order; keep the
		// file's (templates render in the order given).
		sort.SliceStable(lv.blocks, func(i, j int) bool { return before(lv.blocks[i].DefRange, lv.blocks[j].DefRange) })
		return lv, diags
	}
	schema := &hcl.BodySchema{}
	for _, t := range blockTypes {
		schema.Blocks = append(schema.Blocks, hcl.BlockHeaderSchema{Type: t})
	}
	content, rest, diags := body.PartialContent(schema)
	for _, b := range content.Blocks {
		// JSON puts a block at its object's opening brace; start it at
		// its key instead, as native HCL does (`"config": {` is 4:5, not
		// 4:15), so that errors point at the name.
		def := b.DefRange
		if b.TypeRange.Filename != "" {
			def = hcl.RangeBetween(b.TypeRange, b.DefRange)
		}
		lv.blocks = append(lv.blocks, block{Type: b.Type, Labels: b.Labels, Body: b.Body, DefRange: def})
	}
	attrs, d := rest.JustAttributes()
	diags = append(diags, d...)
	lv.attrs = attrs
	return lv, diags
}

// objectBody makes the body of a block from the object literal that spells
// it in HCL 1 style, keeping every value's expression (and position).
func objectBody(name string, obj *hclsyntax.ObjectConsExpr) (*hclsyntax.Body, hcl.Diagnostics) {
	body := &hclsyntax.Body{Attributes: hclsyntax.Attributes{}, SrcRange: obj.SrcRange,
		EndRange: hcl.Range{Filename: obj.SrcRange.Filename, Start: obj.SrcRange.End, End: obj.SrcRange.End}}
	var diags hcl.Diagnostics
	for _, item := range obj.Items {
		key, d := item.KeyExpr.Value(nil)
		if d.HasErrors() || key.Type() != cty.String || !key.IsKnown() || key.IsNull() {
			diags = append(diags, hclconf.Errorf(item.KeyExpr.Range(), "%s: keys must be names", name))
			continue
		}
		k := key.AsString()
		if _, dup := body.Attributes[k]; dup {
			diags = append(diags, hclconf.Errorf(item.KeyExpr.Range(), "%s: key %q given twice", name, k))
			continue
		}
		body.Attributes[k] = &hclsyntax.Attribute{Name: k, Expr: item.ValueExpr,
			SrcRange: hcl.RangeBetween(item.KeyExpr.Range(), item.ValueExpr.Range()), NameRange: item.KeyExpr.Range()}
	}
	return body, diags
}

// before orders ranges by file position.
func before(a, b hcl.Range) bool {
	if a.Filename != b.Filename {
		return a.Filename < b.Filename
	}
	return a.Start.Byte < b.Start.Byte
}

// check refuses attributes and blocks not in the allowed lists, and names
// the unsupported Vault Agent stanzas as such.
func (lv level) check(where string, attrs, blocks []string) hcl.Diagnostics {
	var diags hcl.Diagnostics
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
func (lv level) blocksOf(t string) []block {
	var out []block
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
func (lv level) mapAttrs(name string) (map[string]*hcl.Attribute, hcl.Diagnostics) {
	out := map[string]*hcl.Attribute{}
	var diags hcl.Diagnostics
	for _, b := range lv.blocksOf(name) {
		attrs, d := b.Body.JustAttributes()
		diags = append(diags, d...)
		for k, v := range attrs {
			out[k] = v
		}
	}
	return out, diags
}

// goValue turns an HCL value into string, bool, int64, float64, []any or
// map[string]any, the shapes auth methods read.
func goValue(v cty.Value) any {
	if v.IsNull() || !v.IsKnown() {
		return nil
	}
	t := v.Type()
	switch {
	case t == cty.String:
		return v.AsString()
	case t == cty.Bool:
		return v.True()
	case t == cty.Number:
		bf := v.AsBigFloat()
		if i, acc := bf.Int64(); acc == 0 {
			return i
		}
		f, _ := bf.Float64()
		return f
	case t.IsListType() || t.IsTupleType() || t.IsSetType():
		var out []any
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			out = append(out, goValue(e))
		}
		return out
	case t.IsObjectType() || t.IsMapType():
		out := map[string]any{}
		for it := v.ElementIterator(); it.Next(); {
			k, e := it.Element()
			out[k.AsString()] = goValue(e)
		}
		return out
	}
	if s, err := convert.Convert(v, cty.String); err == nil {
		return s.AsString()
	}
	return nil
}
