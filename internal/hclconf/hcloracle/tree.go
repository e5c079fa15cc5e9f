package hcloracle

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/latchkey/latchkey/internal/hclconf"
)

// Tree reads src with hcl/v2 (JSON for a ".json" path) into the tree
// internal/hclconf's reader makes, so that a test can decode both the same
// way and compare: the oracle for hclconf.ParseBytes. A value hcl/v2 cannot
// evaluate without variables or functions is an error.
//
// JSON bodies are read as hcl/v2's JustAttributes reads them, which refuses
// a key given twice even where the agent would take each as a block; tests
// comparing JSON give each key once.
func Tree(path string, src []byte) (*hclconf.Body, error) {
	p := hclparse.NewParser()
	f, err := ParseBytes(p, path, src)
	if err != nil {
		return nil, err
	}
	c := &conv{src: f.Bytes}
	b, err := c.body(f.Body)
	if err != nil {
		return nil, err
	}
	return b, nil
}

type conv struct{ src []byte }

func rng(r hcl.Range) hclconf.Range {
	return hclconf.Range{Filename: r.Filename, Start: hclconf.Position{Line: r.Start.Line, Column: r.Start.Column, Byte: r.Start.Byte}}
}

func (c *conv) body(b hcl.Body) (*hclconf.Body, error) {
	out := &hclconf.Body{}
	if sb, ok := b.(*hclsyntax.Body); ok {
		out.Range = rng(sb.SrcRange)
		attrs := make([]*hclsyntax.Attribute, 0, len(sb.Attributes))
		for _, a := range sb.Attributes {
			attrs = append(attrs, a)
		}
		sort.Slice(attrs, func(i, j int) bool { return attrs[i].NameRange.Start.Byte < attrs[j].NameRange.Start.Byte })
		for _, a := range attrs {
			v, err := c.value(a.Expr)
			if err != nil {
				return nil, err
			}
			out.Attributes = append(out.Attributes, &hclconf.Attribute{Name: a.Name, NameRange: rng(a.NameRange), Value: v})
		}
		for _, blk := range sb.Blocks {
			body, err := c.body(blk.Body)
			if err != nil {
				return nil, err
			}
			out.Blocks = append(out.Blocks, &hclconf.Block{Type: blk.Type, Labels: blk.Labels, Body: body, DefRange: rng(blk.DefRange())})
		}
		return out, nil
	}
	out.JSON = true
	attrs, diags := b.JustAttributes()
	if err := Err(diags); err != nil {
		return nil, err
	}
	list := make([]*hcl.Attribute, 0, len(attrs))
	for _, a := range attrs {
		list = append(list, a)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].NameRange.Start.Byte < list[j].NameRange.Start.Byte })
	for _, a := range list {
		v, err := c.value(a.Expr)
		if err != nil {
			return nil, err
		}
		out.Attributes = append(out.Attributes, &hclconf.Attribute{Name: a.Name, NameRange: rng(a.NameRange), Value: v})
	}
	return out, nil
}

func (c *conv) value(e hcl.Expression) (*hclconf.Value, error) {
	v, diags := e.Value(nil)
	if err := Err(diags); err != nil {
		return nil, err
	}
	r := e.Range()
	out := &hclconf.Value{Range: rng(r)}
	if !v.IsWhollyKnown() {
		return nil, fmt.Errorf("%s: not a literal", Pos(r))
	}
	t := v.Type()
	switch {
	case v.IsNull():
		out.Kind = hclconf.KindNull
	case t == cty.String:
		out.Kind, out.Str = hclconf.KindString, v.AsString()
	case t == cty.Bool:
		out.Kind, out.Bool = hclconf.KindBool, v.True()
	case t == cty.Number:
		out.Kind, out.Num = hclconf.KindNumber, v.AsBigFloat()
		text, err := hclconf.NumberText(out.Num)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", Pos(r), err)
		}
		out.Str = text
		out.Lit = strings.TrimSpace(string(r.SliceBytes(c.src)))
	case t.IsTupleType() || t.IsListType():
		out.Kind, out.List = hclconf.KindList, []*hclconf.Value{}
		elems, diags := hcl.ExprList(e)
		if err := Err(diags); err != nil {
			return nil, err
		}
		for _, el := range elems {
			ev, err := c.value(el)
			if err != nil {
				return nil, err
			}
			out.List = append(out.List, ev)
		}
	case t.IsObjectType() || t.IsMapType():
		out.Kind = hclconf.KindObject
		pairs, diags := hcl.ExprMap(e)
		if err := Err(diags); err != nil {
			return nil, err
		}
		for _, p := range pairs {
			k, diags := p.Key.Value(nil)
			if err := Err(diags); err != nil {
				return nil, err
			}
			if k.Type() != cty.String || k.IsNull() {
				return nil, fmt.Errorf("%s: key not a string", Pos(p.Key.Range()))
			}
			ev, err := c.value(p.Value)
			if err != nil {
				return nil, err
			}
			out.Items = append(out.Items, &hclconf.Item{Key: k.AsString(), KeyRange: rng(p.Key.Range()), Value: ev})
		}
	default:
		return nil, fmt.Errorf("%s: unexpected type %s", Pos(r), t.FriendlyName())
	}
	return out, nil
}
