package hclconf

import (
	"bytes"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"strconv"
	"strings"
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

func newSource(path string, src []byte) *source {
	s := &source{path: path, src: src, lineStarts: []int{0}}
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
	line := sort.Search(len(s.lineStarts), func(i int) bool { return s.lineStarts[i] > off }) - 1
	col := utf8.RuneCount(s.src[s.lineStarts[line]:off]) + 1
	return Range{Filename: s.path, Start: Position{Line: line + 1, Column: col, Byte: off}}
}

func (s *source) errAt(off int, format string, args ...any) error {
	return Diagnostics{Errorf(s.rng(off), format, args...)}
}

// checkUTF8 refuses a file that is not UTF-8 text, at the first bad byte.
func (s *source) checkUTF8() error {
	if utf8.Valid(s.src) {
		return nil
	}
	off := 0
	for off < len(s.src) {
		r, n := utf8.DecodeRune(s.src[off:])
		if r == utf8.RuneError && n <= 1 {
			break
		}
		off += n
	}
	return s.errAt(off, "invalid UTF-8 (the file must be UTF-8 text)")
}

// scanner reads HCL's native syntax, the part of it a config uses.
type scanner struct {
	*source
	i   int
	key string // the key whose value is being read, for messages
}

func parseNative(path string, src []byte) (*Body, error) {
	s := &scanner{source: newSource(path, src)}
	if err := s.checkUTF8(); err != nil {
		return nil, err
	}
	return s.body(-1)
}

func (s *scanner) peek(k int) byte {
	if s.i+k < len(s.src) {
		return s.src[s.i+k]
	}
	return 0
}

func (s *scanner) eof() bool { return s.i >= len(s.src) }

// skip passes blanks and comments; with nl it also passes newlines (and
// block comments holding them), else it stops at a newline or at a block
// comment over several lines.
func (s *scanner) skip(nl bool) error {
	for !s.eof() {
		c := s.peek(0)
		switch {
		case c == ' ' || c == '\t':
			s.i++
		case nl && (c == '\n' || c == '\r' && s.peek(1) == '\n'):
			s.i++
		case c == '#' || c == '/' && s.peek(1) == '/':
			for !s.eof() && s.peek(0) != '\n' && !(s.peek(0) == '\r' && s.peek(1) == '\n') {
				s.i++
			}
		case c == '/' && s.peek(1) == '*':
			end := bytes.Index(s.src[s.i+2:], []byte("*/"))
			if end < 0 {
				return s.errAt(s.i, "unterminated /* comment")
			}
			if !nl && bytes.IndexByte(s.src[s.i:s.i+2+end], '\n') >= 0 {
				return nil
			}
			s.i += 2 + end + 2
		default:
			return nil
		}
	}
	return nil
}

// endLine passes the end of a line (or of the file) after an item.
func (s *scanner) endLine(what string) error {
	if err := s.skip(false); err != nil {
		return err
	}
	switch {
	case s.eof():
	case s.peek(0) == '\n':
		s.i++
	case s.peek(0) == '\r' && s.peek(1) == '\n':
		s.i += 2
	default:
		return s.errAt(s.i, "%s: want a new line after the %s, found %s (the config holds literals only: no expressions)", s.key, what, s.what())
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
	start := s.i
	r, n := utf8.DecodeRune(s.src[s.i:])
	if s.eof() || !isIDStart(r) {
		return ""
	}
	s.i += n
	for !s.eof() {
		r, n := utf8.DecodeRune(s.src[s.i:])
		if !isIDByte(r) {
			break
		}
		s.i += n
	}
	return string(s.src[start:s.i])
}

// what names the character at the cursor for a message.
func (s *scanner) what() string {
	if s.eof() {
		return "the end of the file"
	}
	switch c := s.peek(0); c {
	case '\n', '\r':
		return "the end of the line"
	default:
		r, _ := utf8.DecodeRune(s.src[s.i:])
		return strconv.QuoteRune(r)
	}
}

// body reads items up to the } closing the block opened at open, or to the
// end of the file when open < 0.
func (s *scanner) body(open int) (*Body, error) {
	b := &Body{Range: s.rng(max(open, 0))}
	seen := map[string]*Attribute{}
	for {
		if err := s.skip(true); err != nil {
			return nil, err
		}
		if s.eof() {
			if open >= 0 {
				return nil, s.errAt(open, "unterminated block (no closing })")
			}
			return b, nil
		}
		if open >= 0 && s.peek(0) == '}' {
			s.i++
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
	start := s.i
	name := s.ident()
	if name == "" {
		return nil, nil, s.errAt(start, "want a key (key = value) or a block (name { ... }), found %s", s.what())
	}
	s.key = name
	if err := s.skip(false); err != nil {
		return nil, nil, err
	}
	if s.peek(0) == '=' {
		s.i++
		if err := s.skip(false); err != nil {
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
		case s.peek(0) == '"':
			lab, err := s.quoted()
			if err != nil {
				return nil, nil, err
			}
			blk.Labels = append(blk.Labels, lab)
		case s.peek(0) == '{':
			open := s.i
			s.i++
			body, err := s.blockBody(open)
			if err != nil {
				return nil, nil, err
			}
			blk.Body = body
			s.key = name
			return nil, blk, nil
		default:
			if lab := s.ident(); lab != "" {
				blk.Labels = append(blk.Labels, lab)
				break
			}
			return nil, nil, s.errAt(s.i, "%s: want = (key = value) or a block (%s { ... }), found %s", name, name, s.what())
		}
		if err := s.skip(false); err != nil {
			return nil, nil, err
		}
	}
}

// blockBody reads a block's body after its {: over several lines, or on
// one line holding at most one key = value (as HCL allows).
func (s *scanner) blockBody(open int) (*Body, error) {
	if err := s.skip(false); err != nil {
		return nil, err
	}
	switch {
	case s.eof() || s.peek(0) == '\n' || s.peek(0) == '\r' && s.peek(1) == '\n' || s.peek(0) == '/':
		return s.body(open)
	case s.peek(0) == '}':
		s.i++
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
	if err := s.skip(false); err != nil {
		return nil, err
	}
	if s.peek(0) != '}' {
		return nil, s.errAt(s.i, "%s: a block on one line holds one key = value and ends with }, found %s", a.Name, s.what())
	}
	s.i++
	return b, nil
}

// maxDepth bounds the nesting of lists and objects.
const maxDepth = 64

// value reads one literal.
func (s *scanner) value(depth int) (*Value, error) {
	start := s.i
	if depth > maxDepth {
		return nil, s.errAt(start, "%s: lists and objects nested too deep", s.key)
	}
	at := s.rng(start)
	c := s.peek(0)
	switch {
	case c == '"':
		str, err := s.quoted()
		return &Value{Kind: KindString, Str: str, Range: at}, err
	case c == '<' && s.peek(1) == '<':
		str, err := s.heredoc()
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
			return nil, s.errAt(start, "%s: %s is not a value (the config holds literals only; a string is written in double quotes)", s.key, word)
		}
	}
	return nil, s.errAt(start, "%s: want a value (a quoted string, number, true, false, null, a list or an object), found %s", s.key, s.what())
}

// number reads an HCL number literal, a leading - allowed.
func (s *scanner) number() (*Value, error) {
	start := s.i
	if s.peek(0) == '-' {
		s.i++
	}
	digits := func() int {
		n := 0
		for c := s.peek(0); c >= '0' && c <= '9'; c = s.peek(0) {
			s.i++
			n++
		}
		return n
	}
	ok := digits() > 0
	if ok && s.peek(0) == '.' {
		s.i++
		ok = digits() > 0
	}
	if ok && (s.peek(0) == 'e' || s.peek(0) == 'E') {
		s.i++
		if s.peek(0) == '+' || s.peek(0) == '-' {
			s.i++
		}
		ok = digits() > 0
	}
	if ok && !s.eof() {
		if r, _ := utf8.DecodeRune(s.src[s.i:]); isIDByte(r) || r == '.' {
			ok = false
		}
	}
	if !ok {
		return nil, s.errAt(start, "%s: malformed number (the config holds literals only; a string is written in double quotes)", s.key)
	}
	return numberValue(s.source, start, s.key, string(s.src[start:s.i]))
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

// ErrNumberRange is Number's refusal of a magnitude no config needs.
var ErrNumberRange = errors.New("number out of range (beyond ±1e308, or nearer 0 than 1e-323)")

// Number parses a decimal number literal in HCL's precision (512 bits) and
// gives NumberText's text for it. It returns math/big's error for a
// malformed literal and ErrNumberRange as NumberText does.
func Number(lit string) (*big.Float, string, error) {
	f, _, err := big.ParseFloat(lit, 10, 512, big.ToNearestEven)
	if err != nil {
		return nil, "", err
	}
	text, err := NumberText(f)
	if err != nil {
		return nil, "", err
	}
	return f, text, nil
}

// NumberText writes f out as HCL turns a number into a string. It returns
// ErrNumberRange for a magnitude outside float64's range: no key takes such
// a number, and the decimal text of 1e3000000 takes seconds and megabytes
// to write out (a fuzzed config stalled the reader on one).
func NumberText(f *big.Float) (string, error) {
	if f.IsInf() {
		return "", ErrNumberRange
	}
	if exp := f.MantExp(nil); f.Sign() != 0 && (exp > 1024 || exp < -1073) {
		return "", ErrNumberRange
	}
	return f.Text('f', -1), nil
}

// list reads [v, v, ...] over any number of lines.
func (s *scanner) list(depth int) (*Value, error) {
	open := s.i
	s.i++
	l := &Value{Kind: KindList, List: []*Value{}, Range: s.rng(open)}
	for {
		if err := s.skip(true); err != nil {
			return nil, err
		}
		if s.eof() {
			return nil, s.errAt(open, "%s: unterminated list (no ])", s.key)
		}
		if s.peek(0) == ']' {
			s.i++
			return l, nil
		}
		v, err := s.value(depth + 1)
		if err != nil {
			return nil, err
		}
		l.List = append(l.List, v)
		if err := s.skip(true); err != nil {
			return nil, err
		}
		switch {
		case s.peek(0) == ',':
			s.i++
		case s.peek(0) == ']':
		case s.eof():
			return nil, s.errAt(open, "%s: unterminated list (no ])", s.key)
		default:
			return nil, s.errAt(s.i, "%s: want , or ] in the list, found %s", s.key, s.what())
		}
	}
}

// object reads { key = value ... }, entries separated by commas or new
// lines, keys names or quoted strings, each given once.
func (s *scanner) object(depth int) (*Value, error) {
	open := s.i
	outer := s.key
	s.i++
	o := &Value{Kind: KindObject, Range: s.rng(open)}
	seen := map[string]bool{}
	for {
		if err := s.skip(true); err != nil {
			return nil, err
		}
		if s.eof() {
			return nil, s.errAt(open, "%s: unterminated object (no })", outer)
		}
		if s.peek(0) == '}' {
			s.i++
			s.key = outer
			return o, nil
		}
		keyOff := s.i
		var key string
		if s.peek(0) == '"' {
			k, err := s.quoted()
			if err != nil {
				return nil, err
			}
			key = k
		} else if key = s.ident(); key == "" || key == "true" || key == "false" || key == "null" {
			s.i = keyOff
			return nil, s.errAt(keyOff, "%s: want a key (a name or a quoted string) in the object, found %s", outer, s.what())
		}
		if seen[key] {
			return nil, s.errAt(keyOff, "%s: key %q given twice", outer, key)
		}
		seen[key] = true
		if err := s.skip(false); err != nil {
			return nil, err
		}
		if s.peek(0) != '=' && s.peek(0) != ':' {
			return nil, s.errAt(s.i, "%s: want = after the key %q, found %s", outer, key, s.what())
		}
		s.i++
		if err := s.skip(false); err != nil {
			return nil, err
		}
		s.key = key
		v, err := s.value(depth + 1)
		if err != nil {
			return nil, err
		}
		s.key = outer
		o.Items = append(o.Items, &Item{Key: key, KeyRange: s.rng(keyOff), Value: v})
		if err := s.skip(false); err != nil {
			return nil, err
		}
		switch {
		case s.peek(0) == ',':
			s.i++
		case s.peek(0) == '}' || s.peek(0) == '\n' || s.peek(0) == '\r' && s.peek(1) == '\n':
		case s.eof():
			return nil, s.errAt(open, "%s: unterminated object (no })", outer)
		default:
			return nil, s.errAt(s.i, "%s: want , or a new line after the value of %q, found %s", outer, key, s.what())
		}
	}
}

// quoted reads a "string" on one line with HCL's escapes (\n \r \t \" \\
// \uNNNN \UNNNNNNNN, and $${ %%{ for a literal ${ %{).
func (s *scanner) quoted() (string, error) {
	open := s.i
	s.i++
	var b strings.Builder
	for {
		if s.eof() || s.peek(0) == '\n' || s.peek(0) == '\r' && s.peek(1) == '\n' {
			return "", s.errAt(open, "%s: unterminated string (no closing \" on the line)", s.key)
		}
		c := s.peek(0)
		switch {
		case c == '"':
			s.i++
			return b.String(), nil
		case c == '\\':
			r, n, err := Unescape(s.src[s.i:])
			if err != nil {
				return "", s.errAt(s.i, "%s: %v", s.key, err)
			}
			b.WriteRune(r)
			s.i += n
		case c < 0x20 && c != '\t':
			return "", s.errAt(s.i, "%s: control character in a string", s.key)
		default:
			n, err := TemplateByte(s.src[s.i:])
			if err != nil {
				return "", s.errAt(s.i, "%s: %v", s.key, err)
			}
			WriteLiteral(&b, s.src[s.i:s.i+n])
			s.i += n
		}
	}
}

// TemplateByte, WriteLiteral and Unescape are the string rules both
// config readers share (this one and the helper's, in pam).
//
// TemplateByte is how many bytes at b are one literal character of a
// template: 3 for $${ and %%{ (which stand for ${ and %{), else 1; ${ and
// %{ themselves (interpolation, directives) are refused.
func TemplateByte(b []byte) (int, error) {
	if len(b) >= 2 && (b[0] == '$' || b[0] == '%') {
		if b[1] == '{' {
			return 0, fmt.Errorf("%c{ starts a template, which the config does not evaluate (write %c%c{ for the text %c{)", b[0], b[0], b[0], b[0])
		}
		if len(b) >= 3 && b[1] == b[0] && b[2] == '{' {
			return 3, nil
		}
	}
	return 1, nil
}

// WriteLiteral writes what TemplateByte's bytes stand for.
func WriteLiteral(b *strings.Builder, t []byte) {
	if len(t) == 3 {
		b.WriteByte(t[0])
		b.WriteByte('{')
		return
	}
	b.Write(t)
}

// Unescape reads the escape sequence at the start of b (which is \).
func Unescape(b []byte) (rune, int, error) {
	if len(b) < 2 {
		return 0, 0, errors.New(`invalid escape sequence "\"`)
	}
	switch b[1] {
	case 'n':
		return '\n', 2, nil
	case 'r':
		return '\r', 2, nil
	case 't':
		return '\t', 2, nil
	case '"':
		return '"', 2, nil
	case '\\':
		return '\\', 2, nil
	case 'u', 'U':
		n := 4
		if b[1] == 'U' {
			n = 8
		}
		if len(b) >= 2+n {
			if v, err := strconv.ParseUint(string(b[2:2+n]), 16, 32); err == nil && utf8.ValidRune(rune(v)) {
				return rune(v), 2 + n, nil
			}
		}
		return 0, 0, fmt.Errorf(`invalid escape sequence: \%c wants %d hex digits of a Unicode character`, b[1], n)
	}
	r, _ := utf8.DecodeRune(b[1:])
	return 0, 0, fmt.Errorf("invalid escape sequence %q (known: \\n \\r \\t \\\" \\\\ \\uNNNN \\UNNNNNNNN)", `\`+string(r))
}

// LeadingSpaces is how many space characters l starts with, and whether
// it is a blank line (only spaces up to its newline).
// The helper's reader (pam) strips <<- heredocs with it too.
func LeadingSpaces(l string) (n int, blank bool) {
	rest := strings.TrimLeftFunc(l, unicode.IsSpace)
	if rest == "" && strings.HasSuffix(l, "\n") {
		return 0, true
	}
	return utf8.RuneCountInString(l[:len(l)-len(rest)]), false
}

// heredoc reads <<ID or <<-ID up to a line holding only ID. Its text keeps
// every line's newline; <<- removes the indentation all lines share.
func (s *scanner) heredoc() (string, error) {
	open := s.i
	s.i += 2
	flush := s.peek(0) == '-'
	if flush {
		s.i++
	}
	id := s.ident()
	if id == "" {
		return "", s.errAt(open, "%s: a heredoc starts with <<NAME or <<-NAME and a new line", s.key)
	}
	switch {
	case s.peek(0) == '\n':
		s.i++
	case s.peek(0) == '\r' && s.peek(1) == '\n':
		s.i += 2
	default:
		return "", s.errAt(open, "%s: a heredoc starts with <<NAME or <<-NAME and a new line", s.key)
	}
	var lines []string
	for {
		if s.eof() {
			return "", s.errAt(open, "%s: unterminated heredoc (no line %q)", s.key, id)
		}
		end := bytes.IndexByte(s.src[s.i:], '\n')
		var line []byte
		if end < 0 {
			line = s.src[s.i:]
		} else {
			line = s.src[s.i : s.i+end+1]
		}
		// The closing line ends with a newline, as HCL wants.
		if end >= 0 && string(bytes.TrimSpace(line)) == id {
			// The closing line's own newline ends the attribute.
			s.i += len(bytes.TrimRight(line, "\r\n"))
			break
		}
		for j := 0; j < len(line); j++ {
			if c := line[j]; c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
				return "", s.errAt(s.i+j, "%s: control character in a heredoc", s.key)
			}
			n, err := TemplateByte(line[j:])
			if err != nil {
				return "", s.errAt(s.i+j, "%s: %v", s.key, err)
			}
			j += n - 1
		}
		lines = append(lines, string(line))
		s.i += len(line)
	}
	if flush {
		// As HCL: a blank line (spaces only) neither counts nor changes;
		// the others lose the leading spaces they all share.
		indent := -1
		for _, l := range lines {
			if n, blank := LeadingSpaces(l); !blank && (indent < 0 || n < indent) {
				indent = n
			}
		}
		for i, l := range lines {
			if _, blank := LeadingSpaces(l); !blank {
				for k := 0; k < indent; k++ {
					_, size := utf8.DecodeRuneInString(l)
					l = l[size:]
				}
				lines[i] = l
			}
		}
	}
	text := strings.Join(lines, "")
	return strings.ReplaceAll(strings.ReplaceAll(text, "$${", "${"), "%%{", "%{"), nil
}
