package pam

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/latchkey/latchkey/internal/hclconf"
)

// The helper reads its config itself instead of with the HCL parser (hcl/v2
// and go-cty), whose linking and package initialisation were a good part of
// a login's cost. The file is vault-ssh-helper's flat format: key = value
// lines, comments (#, //, /* */), values a quoted string (HCL escapes), a
// number, true, false, null, a heredoc (<<EOF, <<-EOF) or a list of those
// ([...], over several lines if need be), read with internal/hclconf's
// Lexer, the agent's reader's own rules for them; a ".json" file is one JSON
// object of the same keys, its strings taken literally. Values convert as
// the HCL reader (internal/hclconf) did:
// numbers and booleans are taken as their text for string keys, booleans
// and durations may be written as strings, lists as one comma-separated
// string. What the HCL parser would evaluate beyond literals (templates
// "${...}", expressions) is refused. TestParserAgreesWithHCL and
// FuzzLoadConfig check that every file this reader accepts, the HCL reader
// reads into the same Config.

// confError is one problem of a config file at line:col (1-based; col
// counts characters).
type confError struct {
	path      string
	line, col int
	msg       string
}

func (e *confError) Error() string { return fmt.Sprintf("%s:%d:%d: %s", e.path, e.line, e.col, e.msg) }

// confErrors are all the problems found, one line each.
type confErrors []*confError

func (es confErrors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

type valueKind int

const (
	vNull valueKind = iota + 1
	vString
	vNumber // s holds the number's canonical text
	vBool
	vList
)

type value struct {
	kind valueKind
	s    string
	b    bool
	list []value
}

// item is one key = value of the file, with the offsets of both.
type item struct {
	key            string
	keyOff, valOff int
	v              value
}

// parsed is a file's items, in file order, and the source for positions.
type parsed struct {
	path  string
	src   []byte
	items map[string]*item
	order []*item
}

// errAt is an error at offset off of the source.
func (p *parsed) errAt(off int, format string, args ...any) *confError {
	line, col := position(p.src, off)
	return &confError{path: p.path, line: line, col: col, msg: fmt.Sprintf(format, args...)}
}

// position is off's line and column (characters, 1-based).
func position(src []byte, off int) (line, col int) {
	off = min(off, len(src))
	before := src[:off]
	line = bytes.Count(before, []byte("\n")) + 1
	if i := bytes.LastIndexByte(before, '\n'); i >= 0 {
		before = before[i+1:]
	}
	return line, utf8.RuneCount(before) + 1
}

// parseFile reads src as HCL or, for a ".json" path, JSON. Unknown and
// repeated keys are errors; a syntax error ends the reading.
func parseFile(path string, src []byte) (*parsed, error) {
	p := &parsed{path: path, src: src, items: make(map[string]*item, 8)}
	if off, bad := hclconf.InvalidUTF8(src); bad {
		return nil, p.errAt(off, "invalid UTF-8 (the file must be UTF-8 text)")
	}
	var errs confErrors
	add := func(it *item) {
		if !knownKey(it.key) {
			errs = append(errs, p.errAt(it.keyOff, "unknown key %q", it.key))
			return
		}
		if first, dup := p.items[it.key]; dup {
			line, _ := position(src, first.keyOff)
			errs = append(errs, p.errAt(it.keyOff, "key %q set twice (first on line %d)", it.key, line))
			return
		}
		p.items[it.key] = it
		p.order = append(p.order, it)
	}
	var err error
	if strings.EqualFold(filepath.Ext(path), ".json") {
		err = p.parseJSON(add)
	} else {
		err = newScanner(p).parse(add)
	}
	if err != nil {
		return nil, err
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return p, nil
}

func knownKey(k string) bool {
	for _, key := range keys {
		if k == key {
			return true
		}
	}
	return false
}

// scanner reads HCL's native syntax, the subset a flat config uses, with
// internal/hclconf's rules for the literals.
type scanner struct {
	p *parsed
	hclconf.Lexer
}

func newScanner(p *parsed) *scanner {
	return &scanner{p: p, Lexer: hclconf.Lexer{Src: p.src, Errf: func(off int, format string, args ...any) error {
		return p.errAt(off, format, args...)
	}}}
}

func isKeyByte(c byte) bool {
	return c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func (s *scanner) parse(add func(*item)) error {
	for {
		if err := s.Skip(true); err != nil {
			return err
		}
		if s.EOF() {
			return nil
		}
		start := s.I
		c := s.Peek(0)
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return s.Errf(start, "want a key (key = value), found %s", s.What())
		}
		key := s.word()
		if err := s.Skip(false); err != nil {
			return err
		}
		if s.Peek(0) != '=' {
			if s.Peek(0) == '{' || s.Peek(0) == '"' {
				return s.Errf(s.I, "%s: blocks are not part of this config; want %s = value", key, key)
			}
			return s.Errf(s.I, "%s: want = after the key, found %s", key, s.What())
		}
		s.I++
		if err := s.Skip(false); err != nil {
			return err
		}
		s.Key = key
		valOff := s.I
		v, err := s.value(false)
		if err != nil {
			return err
		}
		if err := s.Skip(false); err != nil {
			return err
		}
		if !s.EndLine() {
			return s.Errf(s.I, "%s: want a new line after the value, found %s", key, s.What())
		}
		add(&item{key: key, keyOff: start, valOff: valOff, v: v})
	}
}

// value reads one value; inList forbids a nested list.
func (s *scanner) value(inList bool) (value, error) {
	start := s.I
	c := s.Peek(0)
	switch {
	case c == '"':
		str, err := s.Quoted()
		return value{kind: vString, s: str}, err
	case c == '<' && s.Peek(1) == '<':
		str, err := s.Heredoc(s.ident)
		return value{kind: vString, s: str}, err
	case c == '[' && !inList:
		return s.list()
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_':
		switch word := s.word(); word {
		case "true", "false":
			return value{kind: vBool, b: word == "true"}, nil
		case "null":
			return value{kind: vNull}, nil
		default:
			return value{}, s.Errf(start, "%s: %s is not a value; a string is written in double quotes", s.Key, word)
		}
	}
	return value{}, s.Errf(start, "%s: want a value (a quoted string, number, true, false or a list), found %s", s.Key, s.What())
}

// number reads an HCL number literal (a leading - allowed): its value in
// HCL's own precision, kept as the text HCL's string conversion gives.
func (s *scanner) number() (value, error) {
	start := s.I
	ok := s.NumberSyntax()
	if ok && !s.EOF() && (isKeyByte(s.Peek(0)) || s.Peek(0) == '.') {
		ok = false
	}
	if !ok {
		return value{}, s.Errf(start, "%s: malformed number; a string is written in double quotes", s.Key)
	}
	_, text, err := hclconf.Number(string(s.Src[start:s.I]))
	switch {
	case errors.Is(err, hclconf.ErrNumberRange):
		return value{}, s.Errf(start, "%s: %v", s.Key, err)
	case err != nil:
		return value{}, s.Errf(start, "%s: malformed number: %v", s.Key, err)
	}
	return value{kind: vNumber, s: text}, nil
}

// list reads [v, v, ...] over any number of lines; its elements are not
// lists.
func (s *scanner) list() (value, error) {
	l := value{kind: vList, list: []value{}}
	err := s.List(func() error {
		if s.Peek(0) == '[' {
			return s.Errf(s.I, "invalid value for %q: want a list of strings", s.Key)
		}
		v, err := s.value(true)
		l.list = append(l.list, v)
		return err
	})
	if err != nil {
		return value{}, err
	}
	return l, nil
}

// word reads the run of key bytes at the cursor.
func (s *scanner) word() string {
	start := s.I
	for !s.EOF() && isKeyByte(s.Peek(0)) {
		s.I++
	}
	return string(s.Src[start:s.I])
}

// ident reads a heredoc's name (ASCII, as a key), "" when there is none.
func (s *scanner) ident() string {
	if id := s.word(); id != "" && (id[0] == '_' || id[0] >= 'a' && id[0] <= 'z' || id[0] >= 'A' && id[0] <= 'Z') {
		return id
	}
	return ""
}

// parseJSON reads a ".json" config: one object of key: value.
func (p *parsed) parseJSON(add func(*item)) error {
	dec := json.NewDecoder(bytes.NewReader(p.src))
	dec.UseNumber()
	// next is the offset where the token after off starts.
	next := func(off int) int {
		for off < len(p.src) && strings.IndexByte(" \t\r\n,:", p.src[off]) >= 0 {
			off++
		}
		return off
	}
	syntax := func(err error) error {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return p.errAt(int(se.Offset), "invalid JSON: %v", err)
		}
		if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
			return p.errAt(len(p.src), "invalid JSON: unexpected end of the file")
		}
		return p.errAt(int(dec.InputOffset()), "invalid JSON: %v", err)
	}
	tok, err := dec.Token()
	if err != nil {
		return syntax(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return p.errAt(0, "a JSON config is one object of keys")
	}
	for dec.More() {
		keyOff := next(int(dec.InputOffset()))
		tok, err := dec.Token()
		if err != nil {
			return syntax(err)
		}
		key, _ := tok.(string)
		valOff := next(int(dec.InputOffset()))
		v, err := p.jsonValue(dec, key, valOff, false)
		if err != nil {
			return err
		}
		add(&item{key: key, keyOff: keyOff, valOff: valOff, v: v})
	}
	if _, err := dec.Token(); err != nil {
		return syntax(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return p.errAt(next(int(dec.InputOffset())), "content after the JSON object")
	}
	return nil
}

// jsonValue reads one value of key.
func (p *parsed) jsonValue(dec *json.Decoder, key string, off int, inList bool) (value, error) {
	tok, err := dec.Token()
	if err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return value{}, p.errAt(int(se.Offset), "invalid JSON: %v", err)
		}
		return value{}, p.errAt(len(p.src), "invalid JSON: %v", err)
	}
	switch t := tok.(type) {
	case nil:
		return value{kind: vNull}, nil
	case bool:
		return value{kind: vBool, b: t}, nil
	case json.Number:
		_, text, err := hclconf.Number(t.String())
		switch {
		case errors.Is(err, hclconf.ErrNumberRange):
			return value{}, p.errAt(off, "%s: %v", key, err)
		case err != nil:
			return value{}, p.errAt(off, "%s: malformed number", key)
		}
		return value{kind: vNumber, s: text}, nil
	case string:
		// Literally: HCL's JSON reader evaluated no template without a
		// context, and the config never had one.
		return value{kind: vString, s: t}, nil
	case json.Delim:
		if t == '[' && !inList {
			l := value{kind: vList, list: []value{}}
			for dec.More() {
				v, err := p.jsonValue(dec, key, off, true)
				if err != nil {
					return value{}, err
				}
				l.list = append(l.list, v)
			}
			if _, err := dec.Token(); err != nil {
				return value{}, p.errAt(off, "invalid JSON: %v", err)
			}
			return l, nil
		}
		if t == '[' {
			return value{}, p.errAt(off, "invalid value for %q: want a list of strings", key)
		}
		return value{}, p.errAt(off, "invalid value for %q: want a string, number, true, false or a list, not an object", key)
	}
	return value{}, p.errAt(off, "invalid value for %q", key)
}

// The conversions, as internal/hclconf's String, Bool, Duration and
// StringList made them.

func (p *parsed) wrong(it *item, want string) *confError {
	return p.errAt(it.valOff, "invalid value for %q: want %s", it.key, want)
}

// asString takes numbers and booleans as their text; null is "".
func (p *parsed) asString(it *item) (string, *confError) {
	s, ok := scalarText(it.v)
	if !ok {
		return "", p.wrong(it, "a string")
	}
	return s, nil
}

func scalarText(v value) (string, bool) {
	switch v.kind {
	case vNull:
		return "", true
	case vString, vNumber:
		return v.s, true
	case vBool:
		return strconv.FormatBool(v.b), true
	}
	return "", false
}

func (p *parsed) asBool(it *item) (bool, *confError) {
	switch it.v.kind {
	case vBool:
		return it.v.b, nil
	case vString:
		if b, err := strconv.ParseBool(strings.TrimSpace(it.v.s)); err == nil {
			return b, nil
		}
	}
	return false, p.wrong(it, "true or false")
}

// asDuration is a number of seconds or a string holding one or a Go
// duration ("90s", "5m"), never negative.
func (p *parsed) asDuration(it *item) (time.Duration, *confError) {
	switch it.v.kind {
	case vNumber:
		f, _ := strconv.ParseFloat(it.v.s, 64)
		if f < 0 {
			return 0, p.wrong(it, "a non-negative duration")
		}
		return time.Duration(f * float64(time.Second)), nil
	case vString:
		s := strings.TrimSpace(it.v.s)
		if n, err := strconv.ParseFloat(s, 64); err == nil && n >= 0 {
			return time.Duration(n * float64(time.Second)), nil
		}
		if d, err := time.ParseDuration(s); err == nil && d >= 0 {
			return d, nil
		}
	}
	return 0, p.wrong(it, `a duration such as "30s" or "5m"`)
}

// asList is a list of strings or one comma-separated string, items trimmed
// and empty ones dropped; null is no list.
func (p *parsed) asList(it *item) ([]string, *confError) {
	var raw []string
	switch it.v.kind {
	case vNull:
		return nil, nil
	case vString:
		raw = strings.Split(it.v.s, ",")
	case vList:
		for _, e := range it.v.list {
			s, ok := scalarText(e)
			if !ok || e.kind == vNull {
				return nil, p.wrong(it, "a list of strings")
			}
			raw = append(raw, s)
		}
	default:
		return nil, p.wrong(it, "a list of strings or a comma-separated string")
	}
	out := make([]string, 0, len(raw))
	for _, s := range raw {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out, nil
}
