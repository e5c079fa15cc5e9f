package hclconf

import (
	"math/big"
	"sort"
)

// Body is a file's top level or a block's contents: attributes and blocks
// in file order. A JSON body has only attributes (JSON cannot tell a block
// from an object); which keys are blocks is the reader's to say (see
// Level).
type Body struct {
	Attributes []*Attribute
	Blocks     []*Block
	// JSON is set for a body read from JSON, where a block is an object
	// or a list of objects and has no labels.
	JSON  bool
	Range Range
}

// Attribute is key = value.
type Attribute struct {
	Name      string
	NameRange Range
	Value     *Value
}

// Block is `type "label" ... { body }`.
type Block struct {
	Type     string
	Labels   []string
	Body     *Body
	DefRange Range
}

// Kind is a value's type.
type Kind int

// The kinds of literal.
const (
	KindNull Kind = iota + 1
	KindString
	KindNumber
	KindBool
	KindList
	KindObject
)

// Value is a literal with its position.
type Value struct {
	Kind Kind
	// Str is a string's text; for a number, its canonical decimal text
	// (as HCL converts a number to a string).
	Str string
	// Lit is a number as written (mode = 0640 is octal, see FileMode).
	Lit  string
	Num  *big.Float
	Bool bool
	List []*Value
	// Items are an object's entries, in file order, keys unique.
	Items []*Item
	Range Range
}

// Item is one key = value of an object.
type Item struct {
	Key      string
	KeyRange Range
	Value    *Value
}

// Go turns v into string, bool, int64, float64, []any or map[string]any
// (nil for null), the shapes auth methods read.
func (v *Value) Go() any {
	switch v.Kind {
	case KindString:
		return v.Str
	case KindBool:
		return v.Bool
	case KindNumber:
		if i, acc := v.Num.Int64(); acc == big.Exact {
			return i
		}
		f, _ := v.Num.Float64()
		return f
	case KindList:
		var out []any
		for _, e := range v.List {
			out = append(out, e.Go())
		}
		return out
	case KindObject:
		out := make(map[string]any, len(v.Items))
		for _, it := range v.Items {
			out[it.Key] = it.Value.Go()
		}
		return out
	}
	return nil
}

// ObjectBody is the body an object literal spells in HCL 1 style
// (`vault = { ... }` for `vault { ... }`): its entries become attributes,
// keeping their positions.
func (v *Value) ObjectBody(json bool) *Body {
	b := &Body{JSON: json, Range: v.Range, Attributes: make([]*Attribute, 0, len(v.Items))}
	for _, it := range v.Items {
		b.Attributes = append(b.Attributes, &Attribute{Name: it.Key, NameRange: it.KeyRange, Value: it.Value})
	}
	return b
}

// JustAttributes returns b's attributes by name: a block in it, or a key
// given twice, is an error.
func (b *Body) JustAttributes() (map[string]*Attribute, Diagnostics) {
	out := make(map[string]*Attribute, len(b.Attributes))
	var diags Diagnostics
	for _, a := range b.Attributes {
		if b.JSON && a.Name == "//" {
			continue // a comment, as in HCL's JSON
		}
		if first, dup := out[a.Name]; dup {
			diags = append(diags, Errorf(a.NameRange, "key %q given twice (first at line %d)", a.Name, first.NameRange.Start.Line))
			continue
		}
		out[a.Name] = a
	}
	for _, bl := range b.Blocks {
		diags = append(diags, Errorf(bl.DefRange, "unexpected %q block: blocks are not allowed here", bl.Type))
	}
	return out, diags
}

// Level is one body split into attributes and blocks.
type Level struct {
	Attrs  map[string]*Attribute
	Blocks []*Block
}

// Split reads body, treating the names in blockTypes as blocks and
// everything else as attributes. An HCL 1 object `vault = { ... }` for a
// block type is the block `vault { ... }` (Vault reads both), and in JSON
// a block is an object or a list of objects. Blocks come in file order
// (templates render in the order given).
func Split(body *Body, blockTypes ...string) (Level, Diagnostics) {
	lv := Level{Attrs: make(map[string]*Attribute, len(body.Attributes))}
	var diags Diagnostics
	isBlock := func(name string) bool {
		for _, t := range blockTypes {
			if t == name {
				return true
			}
		}
		return false
	}
	for _, a := range body.Attributes {
		if body.JSON && a.Name == "//" {
			continue
		}
		if isBlock(a.Name) {
			switch v := a.Value; {
			case v.Kind == KindObject:
				lv.Blocks = append(lv.Blocks, &Block{Type: a.Name, Body: v.ObjectBody(body.JSON), DefRange: a.NameRange})
				continue
			case body.JSON && v.Kind == KindList && allObjects(v.List):
				for _, e := range v.List {
					lv.Blocks = append(lv.Blocks, &Block{Type: a.Name, Body: e.ObjectBody(true), DefRange: a.NameRange})
				}
				continue
			}
		}
		if first, dup := lv.Attrs[a.Name]; dup {
			diags = append(diags, Errorf(a.NameRange, "key %q given twice (first at line %d)", a.Name, first.NameRange.Start.Line))
			continue
		}
		lv.Attrs[a.Name] = a
	}
	lv.Blocks = append(lv.Blocks, body.Blocks...)
	sort.SliceStable(lv.Blocks, func(i, j int) bool { return lv.Blocks[i].DefRange.Start.Byte < lv.Blocks[j].DefRange.Start.Byte })
	return lv, diags
}

func allObjects(vs []*Value) bool {
	for _, v := range vs {
		if v.Kind != KindObject {
			return false
		}
	}
	return true
}

// BlocksOf returns lv's blocks of type t.
func (lv Level) BlocksOf(t string) []*Block {
	var out []*Block
	for _, b := range lv.Blocks {
		if b.Type == t {
			out = append(out, b)
		}
	}
	return out
}
