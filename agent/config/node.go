package config

import (
	"sort"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/latchkey/latchkey/internal/hclconf"
)

// The agent's config can say the same thing in several shapes: HCL blocks
// (`config { }`), HCL attributes holding objects (`config = { }`), JSON
// objects, and JSON arrays of objects for repeated stanzas. hcl/v2 needs a
// schema to read JSON, and a schema fixes the number of labels, which
// Vault's files do not (`method "aws" { }` and `method { type = "aws" }`).
// So the parser walks this small tree instead, built the same way from
// native bodies and from object expressions, keeping every source range.

// item is one key of an object: a block (body set) or an attribute (expr set).
type item struct {
	name      string
	nameRange hcl.Range
	labels    []string
	body      *object
	expr      hcl.Expression
	rng       hcl.Range
}

// object is a block body or an object value.
type object struct {
	items []*item
	rng   hcl.Range
	// fromExpr is true when the object is a value (JSON or `key = { }`):
	// its labels, if any, are the keys of nested objects.
	fromExpr bool
}

// fromBody builds an object from a file's or a block's body.
func fromBody(body hcl.Body) (*object, hcl.Diagnostics) {
	if sb, ok := body.(*hclsyntax.Body); ok {
		return fromSyntaxBody(sb), nil
	}
	// JSON: every property is an attribute; nested objects are read
	// through their expressions.
	attrs, diags := body.JustAttributes()
	o := &object{fromExpr: true, rng: body.MissingItemRange()}
	for _, a := range attrs {
		o.items = append(o.items, &item{name: a.Name, nameRange: a.NameRange, expr: a.Expr, rng: a.Range})
	}
	sortItems(o.items)
	return o, diags
}

func fromSyntaxBody(sb *hclsyntax.Body) *object {
	o := &object{rng: sb.Range()}
	for _, a := range sb.Attributes {
		o.items = append(o.items, &item{name: a.Name, nameRange: a.NameRange, expr: a.Expr, rng: a.Range()})
	}
	for _, b := range sb.Blocks {
		o.items = append(o.items, &item{name: b.Type, nameRange: b.TypeRange, labels: b.Labels, body: fromSyntaxBody(b.Body), rng: b.Range()})
	}
	sortItems(o.items)
	return o
}

func sortItems(items []*item) {
	sort.SliceStable(items, func(i, j int) bool { return items[i].nameRange.Start.Byte < items[j].nameRange.Start.Byte })
}

// fromExpr builds an object from an object value.
func fromExpr(expr hcl.Expression) (*object, hcl.Diagnostics) {
	pairs, diags := hcl.ExprMap(expr)
	if diags.HasErrors() {
		return nil, hcl.Diagnostics{hclconf.Errorf(expr.Range(), "want an object")}
	}
	o := &object{fromExpr: true, rng: expr.Range()}
	for _, p := range pairs {
		k, kd := p.Key.Value(nil)
		if kd.HasErrors() || k.Type() != cty.String || !k.IsKnown() || k.IsNull() {
			diags = append(diags, hclconf.Errorf(p.Key.Range(), "object keys must be plain names"))
			continue
		}
		r := hcl.RangeBetween(p.Key.Range(), p.Value.Range())
		o.items = append(o.items, &item{name: k.AsString(), nameRange: p.Key.Range(), expr: p.Value, rng: r})
	}
	sortItems(o.items)
	return o, diags
}

// objects returns the bodies an item stands for: a block's body, an object
// value, or each object of a list value (JSON's way to repeat a stanza).
func (it *item) objects() ([]*object, hcl.Diagnostics) {
	if it.body != nil {
		return []*object{it.body}, nil
	}
	v, diags := it.expr.Value(nil)
	if diags.HasErrors() {
		return nil, diags
	}
	t := v.Type()
	if t.IsTupleType() || t.IsListType() {
		elems, diags := hcl.ExprList(it.expr)
		if diags.HasErrors() {
			return nil, diags
		}
		var out []*object
		for _, e := range elems {
			o, d := fromExpr(e)
			diags = append(diags, d...)
			if o != nil {
				out = append(out, o)
			}
		}
		return out, diags
	}
	if t.IsObjectType() || t.IsMapType() {
		o, d := fromExpr(it.expr)
		if o == nil {
			return nil, d
		}
		return []*object{o}, d
	}
	return nil, hcl.Diagnostics{hclconf.Errorf(it.nameRange, "%q must be a block", it.name)}
}

// attr returns the item as an attribute for the hclconf decoders, or an
// error when it is a block.
func (it *item) attr() (*hcl.Attribute, hcl.Diagnostics) {
	if it.expr == nil {
		return nil, hcl.Diagnostics{hclconf.Errorf(it.nameRange, "%q must be a value, not a block", it.name)}
	}
	return &hcl.Attribute{Name: it.name, Expr: it.expr, Range: it.rng, NameRange: it.nameRange}, nil
}

// get returns the first item named name, or nil.
func (o *object) get(name string) *item {
	for _, it := range o.items {
		if it.name == name {
			return it
		}
	}
	return nil
}

// typed resolves a stanza that names its type either as a label
// (`method "aws" { }`, `"method": {"aws": { }}`) or as a `type` key
// (`method { type = "aws" }`). It returns the type, the body with `type`
// still in it (callers skip it), and diagnostics.
func typed(it *item, o *object) (string, *object, hcl.Diagnostics) {
	typeItem := o.get("type")
	var typ string
	if typeItem != nil {
		a, diags := typeItem.attr()
		if diags.HasErrors() {
			return "", nil, diags
		}
		s, diags := hclconf.String(a)
		if diags.HasErrors() {
			return "", nil, diags
		}
		typ = s
	}
	switch {
	case len(it.labels) > 1:
		return "", nil, hcl.Diagnostics{hclconf.Errorf(it.nameRange, "%s: want one label, the type", it.name)}
	case len(it.labels) == 1:
		if typeItem != nil && typ != it.labels[0] {
			return "", nil, hcl.Diagnostics{hclconf.Errorf(typeItem.nameRange, "%s %q: type %q contradicts the label", it.name, it.labels[0], typ)}
		}
		return it.labels[0], o, nil
	case typeItem != nil:
		return typ, o, nil
	case o.fromExpr && len(o.items) == 1:
		// JSON's label form: {"aws": { ... }}.
		inner := o.items[0]
		objs, diags := inner.objects()
		if diags.HasErrors() || len(objs) != 1 {
			return "", nil, hcl.Diagnostics{hclconf.Errorf(it.nameRange, "%s: missing type", it.name)}
		}
		return inner.name, objs[0], nil
	}
	return "", nil, hcl.Diagnostics{hclconf.Errorf(it.nameRange, "%s: missing type (write %s \"<type>\" { ... } or type = \"<type>\")", it.name, it.name)}
}

// goValue turns a config value into plain Go values: string, bool, int64
// or float64, []any and map[string]any.
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
		if bf.IsInt() {
			if i, acc := bf.Int64(); acc == 0 {
				return i
			}
		}
		f, _ := bf.Float64()
		return f
	case t.IsListType() || t.IsTupleType() || t.IsSetType():
		out := []any{}
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			out = append(out, goValue(e))
		}
		return out
	case t.IsMapType() || t.IsObjectType():
		out := map[string]any{}
		for it := v.ElementIterator(); it.Next(); {
			k, e := it.Element()
			out[k.AsString()] = goValue(e)
		}
		return out
	}
	return nil
}

// goMap turns an object (block or value) into a map of plain Go values.
func goMap(o *object) (map[string]any, hcl.Diagnostics) {
	out := map[string]any{}
	var diags hcl.Diagnostics
	for _, it := range o.items {
		if it.body != nil {
			m, d := goMap(it.body)
			diags = append(diags, d...)
			out[it.name] = m
			continue
		}
		a, _ := it.attr()
		v, d := hclconf.Value(a)
		diags = append(diags, d...)
		if !d.HasErrors() {
			out[it.name] = goValue(v)
		}
	}
	return out, diags
}
