package hclconf

import (
	"bytes"
	"errors"
	"math/big"
	"sort"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// source is a file being read: its bytes and where its lines start, to
// turn offsets into positions.
type source struct {
	path       string
	src        []byte
	lineStarts []int
}

// bom is UTF-8's byte order mark, which Notepad and some other editors
// write at the start of a file. HCL 2 skips it there: so does this reader,
// counting columns after it and byte offsets from the file's first byte,
// as hcl/v2 does. Anywhere else it is refused (Rune names it).
var bom = []byte("\ufeff")

func newSource(path string, src []byte) *source {
	s := &source{path: path, src: src, lineStarts: []int{0}}
	if bytes.HasPrefix(src, bom) {
		s.lineStarts[0] = len(bom)
	}
	for i, c := range src {
		if c == '\n' {
			s.lineStarts = append(s.lineStarts, i+1)
		}
	}
	return s
}

// rng is the range starting at off.
func (s *source) rng(off int) Range {
	off = min(off, len(s.src))
	off = max(off, s.lineStarts[0])
	line := sort.Search(len(s.lineStarts), func(i int) bool { return s.lineStarts[i] > off }) - 1
	col := utf8.RuneCount(s.src[s.lineStarts[line]:off]) + 1
	return Range{Filename: s.path, Start: Position{Line: line + 1, Column: col, Byte: off}}
}

func (s *source) errAt(off int, format string, args ...any) error {
	return Diagnostics{Errorf(s.rng(off), format, args...)}
}

// checkUTF8 refuses a file that is not UTF-8 text, at the first bad byte.
func (s *source) checkUTF8() error {
	if off, bad := InvalidUTF8(s.src); bad {
		return s.errAt(off, "invalid UTF-8 (the file must be UTF-8 text)")
	}
	return nil
}

// scanner reads HCL's native syntax, the part of it a config uses.
type scanner struct {
	*source
	Lexer
}

func parseNative(path string, src []byte) (*Body, error) {
	s := &scanner{source: newSource(path, src)}
	s.Lexer = Lexer{Src: src, I: s.lineStarts[0], Errf: s.errAt}
	if err := s.checkUTF8(); err != nil {
		return nil, err
	}
	return s.body(-1)
}

// endLine passes the end of a line (or of the file) after an item.
func (s *scanner) endLine(what string) error {
	if err := s.Skip(false); err != nil {
		return err
	}
	if !s.EndLine() {
		return s.errAt(s.I, "%s: want a new line after the %s, found %s (the config holds literals only: no expressions)", s.Key, what, s.What())
	}
	return nil
}

func isIDStart(r rune) bool { return r == '_' || unicode.IsLetter(r) }

func isIDByte(r rune) bool {
	return r == '_' || r == '-' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r) || unicode.Is(unicode.Mc, r)
}

// ident reads a name (letters, digits, _ and -, not starting with a digit
// or -), or returns "" when there is none at the cursor.
func (s *scanner) ident() string {
	start := s.I
	r, n := utf8.DecodeRune(s.src[s.I:])
	if s.EOF() || !isIDStart(r) {
		return ""
	}
	s.I += n
	for !s.EOF() {
		r, n := utf8.DecodeRune(s.src[s.I:])
		if !isIDByte(r) {
			break
		}
		s.I += n
	}
	return string(s.src[start:s.I])
}

// body reads items up to the } closing the block opened at open, or to the
// end of the file when open < 0.
func (s *scanner) body(open int) (*Body, error) {
	b := &Body{Range: s.rng(max(open, 0))}
	seen := map[string]*Attribute{}
	for {
		if err := s.Skip(true); err != nil {
			return nil, err
		}
		if s.EOF() {
			if open >= 0 {
				return nil, s.errAt(open, "unterminated block (no closing })")
			}
			return b, nil
		}
		if open >= 0 && s.Peek(0) == '}' {
			s.I++
			return b, nil
		}
		a, blk, err := s.item(seen)
		if err != nil {
			return nil, err
		}
		what := "value"
		if a != nil {
			b.Attributes = append(b.Attributes, a)
		} else {
			b.Blocks = append(b.Blocks, blk)
			what = "block's }"
		}
		if err := s.endLine(what); err != nil {
			return nil, err
		}
	}
}

// item reads key = value or a block at the cursor; seen holds the body's
// attributes so far, to refuse one given twice.
func (s *scanner) item(seen map[string]*Attribute) (*Attribute, *Block, error) {
	start := s.I
	name := s.ident()
	if name == "" {
		return nil, nil, s.errAt(start, "want a key (key = value) or a block (name { ... }), found %s", s.What())
	}
	s.Key = name
	if err := s.Skip(false); err != nil {
		return nil, nil, err
	}
	if s.Peek(0) == '=' {
		s.I++
		if err := s.Skip(false); err != nil {
			return nil, nil, err
		}
		a := &Attribute{Name: name, NameRange: s.rng(start)}
		if first, dup := seen[name]; dup {
			return nil, nil, s.errAt(start, "key %q given twice (first at line %d)", name, first.NameRange.Start.Line)
		}
		seen[name] = a
		v, err := s.value(0)
		if err != nil {
			return nil, nil, err
		}
		a.Value = v
		return a, nil, nil
	}
	blk := &Block{Type: name, DefRange: s.rng(start)}
	for {
		switch {
		case s.Peek(0) == '"':
			lab, err := s.Quoted()
			if err != nil {
				return nil, nil, err
			}
			blk.Labels = append(blk.Labels, lab)
		case s.Peek(0) == '{':
			open := s.I
			s.I++
			body, err := s.blockBody(open)
			if err != nil {
				return nil, nil, err
			}
			blk.Body = body
			s.Key = name
			return nil, blk, nil
		default:
			if lab := s.ident(); lab != "" {
				blk.Labels = append(blk.Labels, lab)
				break
			}
			return nil, nil, s.errAt(s.I, "%s: want = (key = value) or a block (%s { ... }), found %s", name, name, s.What())
		}
		if err := s.Skip(false); err != nil {
			return nil, nil, err
		}
	}
}

// blockBody reads a block's body after its {: over several lines, or on
// one line holding at most one key = value (as HCL allows).
func (s *scanner) blockBody(open int) (*Body, error) {
	if err := s.Skip(false); err != nil {
		return nil, err
	}
	switch {
	case s.EOF() || s.AtNewline() || s.Peek(0) == '/':
		return s.body(open)
	case s.Peek(0) == '}':
		s.I++
		return &Body{Range: s.rng(open)}, nil
	}
	b := &Body{Range: s.rng(open)}
	a, blk, err := s.item(map[string]*Attribute{})
	if err != nil {
		return nil, err
	}
	if blk != nil {
		return nil, s.errAt(blk.DefRange.Start.Byte, "%s: a block on one line holds at most one key = value, not a block", blk.Type)
	}
	b.Attributes = append(b.Attributes, a)
	if err := s.Skip(false); err != nil {
		return nil, err
	}
	if s.Peek(0) != '}' {
		return nil, s.errAt(s.I, "%s: a block on one line holds one key = value and ends with }, found %s", a.Name, s.What())
	}
	s.I++
	return b, nil
}

// maxDepth bounds the nesting of lists and objects.
const maxDepth = 64

// value reads one literal.
func (s *scanner) value(depth int) (*Value, error) {
	start := s.I
	if depth > maxDepth {
		return nil, s.errAt(start, "%s: lists and objects nested too deep", s.Key)
	}
	at := s.rng(start)
	c := s.Peek(0)
	switch {
	case c == '"':
		str, err := s.Quoted()
		return &Value{Kind: KindString, Str: str, Range: at}, err
	case c == '<' && s.Peek(1) == '<':
		str, err := s.Heredoc(s.ident)
		return &Value{Kind: KindString, Str: str, Range: at}, err
	case c == '[':
		return s.list(depth)
	case c == '{':
		return s.object(depth)
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	}
	if word := s.ident(); word != "" {
		switch word {
		case "true", "false":
			return &Value{Kind: KindBool, Bool: word == "true", Range: at}, nil
		case "null":
			return &Value{Kind: KindNull, Range: at}, nil
		default:
			return nil, s.errAt(start, "%s: %s is not a value (the config holds literals only; a string is written in double quotes)", s.Key, word)
		}
	}
	return nil, s.errAt(start, "%s: want a value (a quoted string, number, true, false, null, a list or an object), found %s", s.Key, s.What())
}

// number reads an HCL number literal, a leading - allowed.
func (s *scanner) number() (*Value, error) {
	start := s.I
	ok := s.NumberSyntax()
	if ok && !s.EOF() {
		if r, _ := utf8.DecodeRune(s.src[s.I:]); isIDByte(r) || r == '.' {
			ok = false
		}
	}
	if !ok {
		return nil, s.errAt(start, "%s: malformed number (the config holds literals only; a string is written in double quotes)", s.Key)
	}
	return numberValue(s.source, start, s.Key, string(s.src[start:s.I]))
}

// numberValue is the number lit at off, the value of key, in HCL's own
// precision.
func numberValue(src *source, off int, key, lit string) (*Value, error) {
	// Most numbers are small integers: skip big.Float's shortest-decimal
	// formatting for them, the bulk of reading a config otherwise.
	if i, err := strconv.ParseInt(lit, 10, 64); err == nil && (i != 0 || lit[0] != '-') {
		f := new(big.Float).SetPrec(512).SetInt64(i)
		return &Value{Kind: KindNumber, Num: f, Str: strconv.FormatInt(i, 10), Lit: lit, Range: src.rng(off)}, nil
	}
	f, text, err := Number(lit)
	switch {
	case errors.Is(err, ErrNumberRange):
		return nil, src.errAt(off, "%s: %v", key, err)
	case err != nil:
		return nil, src.errAt(off, "malformed number %s: %v", lit, err)
	}
	return &Value{Kind: KindNumber, Num: f, Str: text, Lit: lit, Range: src.rng(off)}, nil
}

var ErrNumberRange = errors.New("number out of range (beyond ±1e308, or nearer 0 than 1e-323)")

// list reads [v, v, ...] over any number of lines.
func (s *scanner) list(depth int) (*Value, error) {
	l := &Value{Kind: KindList, List: []*Value{}, Range: s.rng(s.I)}
	err := s.List(func() error {
		v, err := s.value(depth + 1)
		l.List = append(l.List, v)
		return err
	})
	if err != nil {
		return nil, err
	}
	return l, nil
}

// object reads { key = value ... }, entries separated by commas or new
// lines, keys names or quoted strings, each given once.
func (s *scanner) object(depth int) (*Value, error) {
	open := s.I
	outer := s.Key
	s.I++
	o := &Value{Kind: KindObject, Range: s.rng(open)}
	seen := map[string]bool{}
	for {
		if err := s.Skip(true); err != nil {
			return nil, err
		}
		if s.EOF() {
			return nil, s.errAt(open, "%s: unterminated object (no })", outer)
		}
		if s.Peek(0) == '}' {
			s.I++
			s.Key = outer
			return o, nil
		}
		keyOff := s.I
		var key string
		if s.Peek(0) == '"' {
			k, err := s.Quoted()
			if err != nil {
				return nil, err
			}
			key = k
		} else if key = s.ident(); key == "" || key == "true" || key == "false" || key == "null" {
			s.I = keyOff
			return nil, s.errAt(keyOff, "%s: want a key (a name or a quoted string) in the object, found %s", outer, s.What())
		}
		if seen[key] {
			return nil, s.errAt(keyOff, "%s: key %q given twice", outer, key)
		}
		seen[key] = true
		if err := s.Skip(false); err != nil {
			return nil, err
		}
		if s.Peek(0) != '=' && s.Peek(0) != ':' {
			return nil, s.errAt(s.I, "%s: want = after the key %q, found %s", outer, key, s.What())
		}
		s.I++
		if err := s.Skip(false); err != nil {
			return nil, err
		}
		s.Key = key
		v, err := s.value(depth + 1)
		if err != nil {
			return nil, err
		}
		s.Key = outer
		o.Items = append(o.Items, &Item{Key: key, KeyRange: s.rng(keyOff), Value: v})
		if err := s.Skip(false); err != nil {
			return nil, err
		}
		switch {
		case s.Peek(0) == ',':
			s.I++
		case s.Peek(0) == '}' || s.Peek(0) == '\n' || s.Peek(0) == '\r' && s.Peek(1) == '\n':
		case s.EOF():
			return nil, s.errAt(open, "%s: unterminated object (no })", outer)
		default:
			return nil, s.errAt(s.I, "%s: want , or a new line after the value of %q, found %s", outer, key, s.What())
		}
	}
}

// TemplateByte, WriteLiteral and Unescape are the string rules both
// config readers share (this one and the helper's, in pam).
//
