package hclconf

import (
	"encoding/json"
	"unicode/utf8"
)

// jsonReader reads a ".json" config: one object, its keys the body's
// attributes (a key may repeat there: HCL's JSON makes each a block of
// that type), values JSON's, strings taken literally (HCL's JSON reader
// evaluates no template without a context, and the config never had one).
type jsonReader struct {
	*source
	i   int
	key string
}

func parseJSON(path string, src []byte) (*Body, error) {
	r := &jsonReader{source: newSource(path, src)}
	if err := r.checkUTF8(); err != nil {
		return nil, err
	}
	r.ws()
	if r.i >= len(r.src) || r.src[r.i] != '{' {
		return nil, r.errAt(r.i, "a JSON config is one object of keys")
	}
	root, err := r.object(0, true)
	if err != nil {
		return nil, err
	}
	r.ws()
	if r.i < len(r.src) {
		return nil, r.errAt(r.i, "invalid JSON: content after the object")
	}
	return root.ObjectBody(true), nil
}

func (r *jsonReader) ws() {
	for r.i < len(r.src) {
		switch r.src[r.i] {
		case ' ', '\t', '\r', '\n':
			r.i++
		default:
			return
		}
	}
}

func (r *jsonReader) what() string {
	if r.i >= len(r.src) {
		return "the end of the file"
	}
	c, _ := utf8.DecodeRune(r.src[r.i:])
	return "'" + string(c) + "'"
}

// value reads one JSON value.
func (r *jsonReader) value(depth int) (*Value, error) {
	if depth > maxDepth {
		return nil, r.errAt(r.i, "%s: lists and objects nested too deep", r.key)
	}
	r.ws()
	start := r.i
	if r.i >= len(r.src) {
		return nil, r.errAt(r.i, "invalid JSON: unexpected end of the file")
	}
	switch c := r.src[r.i]; {
	case c == '{':
		return r.object(depth, false)
	case c == '[':
		r.i++
		l := &Value{Kind: KindList, List: []*Value{}, Range: r.rng(start)}
		r.ws()
		if r.i < len(r.src) && r.src[r.i] == ']' {
			r.i++
			return l, nil
		}
		for {
			v, err := r.value(depth + 1)
			if err != nil {
				return nil, err
			}
			l.List = append(l.List, v)
			r.ws()
			if r.i < len(r.src) && r.src[r.i] == ',' {
				r.i++
				continue
			}
			if r.i < len(r.src) && r.src[r.i] == ']' {
				r.i++
				return l, nil
			}
			return nil, r.errAt(r.i, "invalid JSON: want , or ] in the list, found %s", r.what())
		}
	case c == '"':
		s, err := r.str()
		if err != nil {
			return nil, err
		}
		return &Value{Kind: KindString, Str: s, Range: r.rng(start)}, nil
	case c == '-' || c >= '0' && c <= '9':
		return r.number()
	}
	for _, w := range []struct {
		word string
		v    Value
	}{{"true", Value{Kind: KindBool, Bool: true}}, {"false", Value{Kind: KindBool}}, {"null", Value{Kind: KindNull}}} {
		if len(r.src)-r.i >= len(w.word) && string(r.src[r.i:r.i+len(w.word)]) == w.word {
			r.i += len(w.word)
			v := w.v
			v.Range = r.rng(start)
			return &v, nil
		}
	}
	return nil, r.errAt(start, "invalid JSON: want a value, found %s", r.what())
}

// object reads {"key": value, ...}; keys repeat only in the root (a body).
func (r *jsonReader) object(depth int, root bool) (*Value, error) {
	open := r.i
	outer := r.key
	r.i++
	o := &Value{Kind: KindObject, Range: r.rng(open)}
	seen := map[string]bool{}
	r.ws()
	if r.i < len(r.src) && r.src[r.i] == '}' {
		r.i++
		return o, nil
	}
	for {
		r.ws()
		keyOff := r.i
		if r.i >= len(r.src) || r.src[r.i] != '"' {
			return nil, r.errAt(r.i, "invalid JSON: want a quoted key, found %s", r.what())
		}
		key, err := r.str()
		if err != nil {
			return nil, err
		}
		if seen[key] && !root {
			return nil, r.errAt(keyOff, "%s: key %q given twice", outer, key)
		}
		seen[key] = true
		r.ws()
		if r.i >= len(r.src) || r.src[r.i] != ':' {
			return nil, r.errAt(r.i, "invalid JSON: want : after the key %q, found %s", key, r.what())
		}
		r.i++
		r.key = key
		v, err := r.value(depth + 1)
		if err != nil {
			return nil, err
		}
		r.key = outer
		o.Items = append(o.Items, &Item{Key: key, KeyRange: r.rng(keyOff), Value: v})
		r.ws()
		if r.i < len(r.src) && r.src[r.i] == ',' {
			r.i++
			continue
		}
		if r.i < len(r.src) && r.src[r.i] == '}' {
			r.i++
			return o, nil
		}
		return nil, r.errAt(r.i, "invalid JSON: want , or } in the object, found %s", r.what())
	}
}

// str reads a JSON string; encoding/json decodes its escapes.
func (r *jsonReader) str() (string, error) {
	start := r.i
	j := r.i + 1
	for ; j < len(r.src); j++ {
		c := r.src[j]
		if c == '\\' {
			j++
			continue
		}
		if c == '"' {
			break
		}
		if c < 0x20 {
			return "", r.errAt(j, "invalid JSON: control character in a string")
		}
	}
	if j >= len(r.src) {
		return "", r.errAt(start, "invalid JSON: unterminated string")
	}
	var s string
	if err := json.Unmarshal(r.src[start:j+1], &s); err != nil {
		return "", r.errAt(start, "invalid JSON: %v", err)
	}
	r.i = j + 1
	return s, nil
}

// number reads a JSON number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func (r *jsonReader) number() (*Value, error) {
	start := r.i
	digit := func() bool { return r.i < len(r.src) && r.src[r.i] >= '0' && r.src[r.i] <= '9' }
	digits := func() bool {
		if !digit() {
			return false
		}
		for digit() {
			r.i++
		}
		return true
	}
	if r.src[r.i] == '-' {
		r.i++
	}
	ok := true
	switch {
	case r.i < len(r.src) && r.src[r.i] == '0':
		r.i++
	default:
		ok = digits()
	}
	if ok && r.i < len(r.src) && r.src[r.i] == '.' {
		r.i++
		ok = digits()
	}
	if ok && r.i < len(r.src) && (r.src[r.i] == 'e' || r.src[r.i] == 'E') {
		r.i++
		if r.i < len(r.src) && (r.src[r.i] == '+' || r.src[r.i] == '-') {
			r.i++
		}
		ok = digits()
	}
	if !ok || digit() {
		return nil, r.errAt(start, "invalid JSON: malformed number")
	}
	return numberValue(r.source, start, r.key, string(r.src[start:r.i]))
}
