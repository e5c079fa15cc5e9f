package pam

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/latchkey/latchkey/internal/hclconf"
)

// The helper reads its config itself instead of with an HCL parser (hcl/v2
// and go-cty, or HCL 1), whose linking and package initialisation were a
// good part of a login's cost. The file is vault-ssh-helper's, read as
// vault-ssh-helper 0.2.4 reads it (HCL 1, through Vault's
// api.ParseSSHHelperConfig; configlex.go has the native syntax's rules): a
// file whose first non-blank character is { is JSON (HCL 1's rule, whatever
// the file's name), anything else native. Values convert as the HCL 2
// reader (internal/hclconf) did, which accepts more than vault-ssh-helper:
// numbers and booleans are taken as their text for string keys, booleans and
// durations may be written as strings, lists as one comma-separated string.
// What vault-ssh-helper silently accepts but is probably a mistake (a
// repeated key, of which the last counts; content after a JSON object) is
// read its way with a warning (Config.Warnings). TestParserAgreesWithHCL and
// FuzzLoadConfig check that every file this reader accepts, the HCL 2
// reader reads into the same Config (but for the HCL 1 constructs noted in
// parsed.hcl1); TestVaultSSHHelperAgrees and FuzzVaultSSHHelperAgrees, that
// every file vault-ssh-helper accepts, this reader reads the same, or
// refuses for a reason listed there.

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
	vNumber // s holds the number's canonical text, raw its text in the file
	vBool
	vList
)

type value struct {
	kind valueKind
	s    string
	b    bool
	list []value
	// Numbers: raw is the literal's text; isInt, an integer (HCL 1 gives a
	// string key its text); hex, a 0x integer (s is then empty).
	raw        string
	isInt, hex bool
}

// item is one key = value of the file, with the offsets of both.
type item struct {
	key            string
	keyOff, valOff int
	end            int // the offset after the value
	v              value
}

// parsed is a file's items and the source for positions.
type parsed struct {
	path  string
	src   []byte
	items map[string]*item
	// warnings are the oddities accepted.
	warnings       confErrors
	warnedTemplate bool
	// hcl1 names the constructs met that HCL 2 reads otherwise or refuses
	// (tests only: the HCL 2 oracle does not apply to such a file).
	hcl1 []string
	// replaced are the items a repeated key's later value replaced (tests
	// only: the HCL 2 oracle is given the file without them).
	replaced []*item
}

// errAt is an error at offset off of the source.
func (p *parsed) errAt(off int, format string, args ...any) *confError {
	line, col := position(p.src, off)
	return &confError{path: p.path, line: line, col: col, msg: fmt.Sprintf(format, args...)}
}

// warnAt records a warning at offset off.
func (p *parsed) warnAt(off int, format string, args ...any) {
	p.warnings = append(p.warnings, p.errAt(off, format, args...))
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

// isJSON is HCL 1's choice of syntax: JSON when the first character that
// is not white space (Unicode's) is {.
func isJSON(src []byte) bool {
	for len(src) > 0 {
		r, size := utf8.DecodeRune(src)
		if !unicode.IsSpace(r) {
			return r == '{'
		}
		src = src[size:]
	}
	return false
}

// parseFile reads src as native HCL or JSON, by its content (isJSON).
// Unknown keys are errors; a repeated key is a warning and its last value
// counts; a syntax error ends the reading.
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
			p.warnAt(it.keyOff, "key %q set again (first on line %d): the last value counts, as in vault-ssh-helper", it.key, line)
			p.hcl1 = append(p.hcl1, "repeated key")
			p.replaced = append(p.replaced, first)
		}
		p.items[it.key] = it
	}
	var err error
	if isJSON(src) {
		err = (&jsonHCL1{hcl1: hcl1{p: p, src: src}}).parse(add)
	} else {
		// HCL 2 skips a UTF-8 byte order mark at the start (Notepad writes
		// one), so does this reader; vault-ssh-helper refuses the file. (A
		// mark before a JSON file's { makes it native syntax, here as for
		// HCL 2, and both refuse it.)
		src = bytes.TrimPrefix(src, []byte("\ufeff"))
		p.src = src
		err = (&hcl1{p: p, src: src}).parse(add)
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

func isKeyByte(c byte) bool {
	return c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// parse reads the native syntax: items key = value, a key an identifier or
// a quoted string, each item optionally followed by one comma.
func (s *hcl1) parse(add func(*item)) error {
	first := true
	heredoc := false // the previous value was a heredoc, which ends its line
	for {
		s.key = ""
		t, err := s.next()
		if err != nil {
			return err
		}
		if t.kind == tEOF {
			return nil
		}
		if !first && !heredoc && (!t.nl || t.ml) {
			// HCL 2 wants each item on its own line.
			s.p.hcl1 = append(s.p.hcl1, "items on one line")
		}
		var key string
		switch {
		case t.kind == tIdent:
			key = string(s.src[t.off:t.end])
		case t.kind == tString:
			key = t.v.s
			s.p.hcl1 = append(s.p.hcl1, "quoted key")
		default:
			return s.p.errAt(t.off, "want a key (key = value), found %s", s.whatAt(t))
		}
		s.key = key
		eq, err := s.next()
		if err != nil {
			return err
		}
		switch {
		case eq.is(s.src, '{'):
			return s.errf(eq.off, "blocks are not part of this config; want %s = value", key)
		case eq.kind == tIdent || eq.kind == tString:
			return s.errf(eq.off, "blocks are not part of this config; want %s = value", key)
		case !eq.is(s.src, '='):
			return s.errf(eq.off, "want = after the key, found %s", s.whatAt(eq))
		}
		vt, err := s.next()
		if err != nil {
			return err
		}
		if vt.kind == tEOF {
			// HCL 1 ends the file there and drops the key.
			s.p.hcl1 = append(s.p.hcl1, "key without a value")
			s.p.warnAt(t.off, "key %q has no value: it is ignored, as vault-ssh-helper ignores it", key)
			return nil
		}
		if eq.nl || eq.ml || vt.nl || vt.ml {
			s.p.hcl1 = append(s.p.hcl1, "item over several lines")
		}
		v, err := s.value(vt, false)
		if err != nil {
			return err
		}
		add(&item{key: key, keyOff: t.off, valOff: vt.off, end: s.i, v: v})
		first, heredoc = false, vt.kind == tHeredoc
		// One comma may follow an item.
		c, err := s.next()
		if err != nil {
			return err
		}
		if c.is(s.src, ',') {
			s.p.hcl1 = append(s.p.hcl1, "comma after an item")
		} else {
			s.back, s.hasBack = c, true
		}
	}
}

// whatAt names token t for a message.
func (s *hcl1) whatAt(t token) string {
	save := s.i
	s.i = t.off
	defer func() { s.i = save }()
	return s.what()
}

// value is the value whose first token is t; inList forbids a nested list.
func (s *hcl1) value(t token, inList bool) (value, error) {
	switch {
	case t.kind == tString || t.kind == tHeredoc || t.kind == tInt || t.kind == tFloat:
		return t.v, nil
	case t.kind == tIdent:
		switch word := string(s.src[t.off:t.end]); word {
		case "true", "false":
			return value{kind: vBool, b: word == "true"}, nil
		case "null":
			return value{kind: vNull}, nil
		default:
			return value{}, s.errf(t.off, "%s is not a value; a string is written in double quotes", word)
		}
	case t.is(s.src, '[') && !inList:
		return s.list(t)
	case t.is(s.src, '['):
		return value{}, s.p.errAt(t.off, "invalid value for %q: want a list of strings", s.key)
	case t.is(s.src, '{'):
		return value{}, s.p.errAt(t.off, "invalid value for %q: want a string, number, true, false or a list, not an object", s.key)
	case t.kind == tEOF:
		return value{}, s.errf(t.off, "want a value (a quoted string, number, true, false or a list), found the end of the file")
	}
	return value{}, s.errf(t.off, "want a value (a quoted string, number, true, false or a list), found %s", s.whatAt(t))
}

// list reads [v, v, ...] over any number of lines, t its [.
func (s *hcl1) list(open token) (value, error) {
	l := value{kind: vList, list: []value{}}
	for {
		t, err := s.next()
		if err != nil {
			return value{}, err
		}
		switch {
		case t.kind == tEOF:
			return value{}, s.errf(open.off, "unterminated list (no ])")
		case t.is(s.src, ']'):
			return l, nil
		}
		v, err := s.value(t, true)
		if err != nil {
			return value{}, err
		}
		l.list = append(l.list, v)
		t, err = s.next()
		if err != nil {
			return value{}, err
		}
		switch {
		case t.kind == tEOF:
			return value{}, s.errf(open.off, "unterminated list (no ])")
		case t.is(s.src, ']'):
			return l, nil
		case !t.is(s.src, ','):
			return value{}, s.errf(t.off, "want , or ] in the list, found %s", s.whatAt(t))
		}
	}
}

// jsonHCL1 reads a JSON config as HCL 1's JSON parser does: one object of
// "key": value; a value a string (HCL 1's escapes, and JSON's \/ and
// surrogate pairs), a number, true, false, null or (latchkey's) a list.
// Where HCL 1 ends the object early and ignores the rest of the file (no
// comma between two items, no closing }, a key without a value at the
// end), or after the object, the reader does too, with a warning.
type jsonHCL1 struct {
	hcl1
}

// jtok reads the next JSON token; its kinds are hcl1's, tPunct for
// { } [ ] , : and tIdent for true, false and null.
func (j *jsonHCL1) jtok() (token, error) {
	s := &j.hcl1
	for s.i < len(s.src) && strings.IndexByte(" \t\r\n", s.src[s.i]) >= 0 {
		s.i++
	}
	t := token{off: s.i}
	if s.i >= len(s.src) || s.src[s.i] == 0 {
		// HCL 1's JSON scanner takes a NUL for the end of the file.
		t.kind, t.end = tEOF, s.i
		return t, nil
	}
	c := s.src[s.i]
	switch {
	case c == '"':
		t.kind = tString
		v, err := j.str()
		if err != nil {
			return t, err
		}
		t.v = v
	case isDec(c) || c == '-' && isDec(s.peek(1)):
		start := s.i
		if c == '-' {
			s.i++
		}
		lead := s.i
		for s.i < len(s.src) && isDec(s.src[s.i]) {
			s.i++
		}
		t.kind = tInt
		if c := s.peek(0); c == '.' || c == 'e' || c == 'E' {
			t.kind = tFloat
			for s.i < len(s.src) && (isDec(s.src[s.i]) || strings.IndexByte(".eE", s.src[s.i]) >= 0 ||
				(s.src[s.i] == '+' || s.src[s.i] == '-') && (s.src[s.i-1] == 'e' || s.src[s.i-1] == 'E')) {
				s.i++
			}
		} else if s.src[lead] == '0' && s.i-lead > 1 {
			return t, s.p.errAt(start, "invalid JSON: a number does not start with 0")
		}
		t.end = s.i
		v, err := s.numberValue(t)
		if err != nil {
			// A float HCL 1 scans but no key takes.
			if t.kind == tInt {
				return t, err
			}
			v = value{kind: vNumber, raw: string(s.src[t.off:t.end]), s: "bad"}
		}
		t.v = v
	case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_':
		for s.i < len(s.src) && (isLetter(rune(s.src[s.i])) || isDec(s.src[s.i])) {
			s.i++
		}
		switch w := string(s.src[t.off:s.i]); w {
		case "true", "false", "null":
			t.kind = tIdent
		default:
			return t, s.p.errAt(t.off, "invalid JSON: %s is not a value; a string is written in double quotes", w)
		}
	case c == '.' && isDec(s.peek(1)):
		s.i++
		for s.i < len(s.src) && isDec(s.src[s.i]) {
			s.i++
		}
		t.kind = tFloat
		t.v = value{kind: vNumber, s: "bad"}
	case strings.IndexByte("{}[],:.", c) >= 0:
		t.kind = tPunct
		s.i++
	default:
		return t, s.p.errAt(t.off, "invalid JSON: unexpected %s", s.what())
	}
	t.end = s.i
	return t, nil
}

// str reads a JSON string as HCL 1 does: to the next ", on one line.
func (j *jsonHCL1) str() (value, error) {
	s := &j.hcl1
	open := s.i
	s.i++
	var b strings.Builder
	for {
		if s.i >= len(s.src) || s.src[s.i] == '\n' {
			return value{}, s.p.errAt(open, "invalid JSON: unterminated string (no closing \" on the line)")
		}
		c := s.src[s.i]
		switch {
		case c == '"':
			s.i++
			return value{kind: vString, s: b.String()}, nil
		case c == '\\' && s.peek(1) == '/':
			// JSON's, which HCL 1 refuses.
			b.WriteByte('/')
			s.i += 2
			s.p.hcl1 = append(s.p.hcl1, "json escape")
		case c == '\\' && s.peek(1) == 'u' && surrogates(s.src[s.i:]) != utf8.RuneError:
			// JSON's pair for a character beyond U+FFFF (HCL 1 crashes on it).
			b.WriteRune(surrogates(s.src[s.i:]))
			s.i += 12
			s.p.hcl1 = append(s.p.hcl1, "json escape")
		case c == '\\':
			r, n, hcl2, err := unescapeHCL1(s.src[s.i:])
			if err != nil {
				return value{}, s.p.errAt(s.i, "%v", err)
			}
			if !hcl2 {
				s.p.hcl1 = append(s.p.hcl1, "json escape")
			}
			b.WriteRune(r)
			s.i += n
		case c == '\t':
			// A raw tab: HCL 1 takes it, JSON does not.
			s.p.hcl1 = append(s.p.hcl1, "json tab")
			b.WriteByte(c)
			s.i++
		case c < 0x20 || c == 0x7f:
			return value{}, s.p.errAt(s.i, "control character in a string")
		default:
			b.WriteByte(c)
			s.i++
		}
	}
}

func (j *jsonHCL1) parse(add func(*item)) error {
	s := &j.hcl1
	t, err := j.jtok()
	if err != nil {
		return err
	}
	if !t.is(s.src, '{') {
		return s.p.errAt(t.off, "a JSON config is one object of keys")
	}
	early := func(off int, why string) {
		s.p.hcl1 = append(s.p.hcl1, "json ends early")
		s.p.warnAt(off, "%s: the JSON object ends here and the rest of the file is ignored, as vault-ssh-helper ignores it", why)
	}
	first := true
	for {
		kt, err := j.jtok()
		if err != nil {
			return err
		}
		switch {
		case kt.kind == tEOF:
			early(kt.off, "no closing }")
			return nil
		case kt.is(s.src, '}'):
			if !first {
				s.p.hcl1 = append(s.p.hcl1, "json trailing comma")
			}
			return j.after()
		case kt.kind != tString:
			return s.p.errAt(kt.off, "invalid JSON: want a key in double quotes, found %s", s.whatAt(kt))
		}
		first = false
		ct, err := j.jtok()
		if err != nil {
			return err
		}
		switch {
		case ct.kind == tString:
			return s.p.errAt(ct.off, "invalid JSON: want : after the key, found a second key")
		case ct.is(s.src, '}'):
			early(kt.off, fmt.Sprintf("key %q has no value", kt.v.s))
			return nil
		case ct.kind == tEOF:
			early(kt.off, fmt.Sprintf("key %q has no value", kt.v.s))
			return nil
		case !ct.is(s.src, ':'):
			return s.p.errAt(ct.off, "invalid JSON: want : after the key, found %s", s.whatAt(ct))
		}
		s.key = kt.v.s
		vt, err := j.jtok()
		if err != nil {
			return err
		}
		if vt.kind == tEOF {
			early(kt.off, fmt.Sprintf("key %q has no value", kt.v.s))
			return nil
		}
		v, err := j.value(vt, false)
		if err != nil {
			return err
		}
		add(&item{key: kt.v.s, keyOff: kt.off, valOff: vt.off, end: s.i, v: v})
		s.key = ""
		nt, err := j.jtok()
		if err != nil {
			return err
		}
		switch {
		case nt.is(s.src, ','):
		case nt.is(s.src, '}'):
			return j.after()
		case nt.kind == tEOF:
			early(nt.off, "no closing }")
			return nil
		default:
			early(nt.off, "no comma before "+s.whatAt(nt))
			return nil
		}
	}
}

// after warns about anything after the object, which HCL 1 never reads.
func (j *jsonHCL1) after() error {
	s := &j.hcl1
	rest := bytes.TrimLeft(s.src[s.i:], " \t\r\n")
	if len(rest) > 0 {
		off := len(s.src) - len(rest)
		s.p.hcl1 = append(s.p.hcl1, "json ends early")
		s.p.warnAt(off, "content after the JSON object is ignored, as vault-ssh-helper ignores it")
	}
	return nil
}

// value reads the value whose first token is t.
func (j *jsonHCL1) value(t token, inList bool) (value, error) {
	s := &j.hcl1
	switch {
	case t.kind == tString:
		return t.v, nil
	case t.kind == tInt:
		return t.v, nil
	case t.kind == tFloat:
		if t.v.s == "bad" {
			return value{}, s.p.errAt(t.off, "%s: malformed number", s.key)
		}
		return t.v, nil
	case t.kind == tIdent:
		switch w := string(s.src[t.off:t.end]); w {
		case "null":
			return value{kind: vNull}, nil
		default:
			return value{kind: vBool, b: w == "true"}, nil
		}
	case t.is(s.src, '[') && !inList:
		l := value{kind: vList, list: []value{}}
		for n := 0; ; n++ {
			e, err := j.jtok()
			if err != nil {
				return value{}, err
			}
			if e.is(s.src, ']') && n == 0 {
				return l, nil
			}
			if e.kind == tEOF {
				return value{}, s.p.errAt(len(s.src), "invalid JSON: unexpected end of the file")
			}
			v, err := j.value(e, true)
			if err != nil {
				return value{}, err
			}
			l.list = append(l.list, v)
			sep, err := j.jtok()
			if err != nil {
				return value{}, err
			}
			switch {
			case sep.is(s.src, ']'):
				return l, nil
			case sep.is(s.src, ','):
			case sep.kind == tEOF:
				return value{}, s.p.errAt(len(s.src), "invalid JSON: unexpected end of the file")
			default:
				return value{}, s.p.errAt(sep.off, "invalid JSON: want , or ] in the list, found %s", s.whatAt(sep))
			}
		}
	case t.is(s.src, '['):
		return value{}, s.p.errAt(t.off, "invalid value for %q: want a list of strings", s.key)
	case t.is(s.src, '{'):
		return value{}, s.p.errAt(t.off, "invalid value for %q: want a string, number, true, false or a list, not an object", s.key)
	}
	return value{}, s.p.errAt(t.off, "invalid JSON: want a value, found %s", s.whatAt(t))
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
	case vNumber:
		if v.isInt {
			// HCL 1's: an integer's own text ("007", "0x1F").
			return v.raw, true
		}
		return v.s, true
	case vString:
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
		text := it.v.s
		if it.v.hex {
			break
		}
		if text == "" {
			var err error
			if _, text, err = hclconf.Number(it.v.raw); err != nil {
				return 0, p.errAt(it.valOff, "%s: %v", it.key, err)
			}
		}
		f, _ := strconv.ParseFloat(text, 64)
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

// isExactly reports whether its value is the string want, character for
// character (a list of that one string too): what vault-ssh-helper compares
// before it trims anything.
func (p *parsed) isExactly(it *item, want string) bool {
	v := it.v
	if v.kind == vList && len(v.list) == 1 {
		v = v.list[0]
	}
	return v.kind == vString && v.s == want
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
	case vNumber:
		// vault-ssh-helper takes an integer as its text ("5").
		s, _ := scalarText(it.v)
		raw = []string{s}
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

func errorsIsRange(err error) bool { return errors.Is(err, hclconf.ErrNumberRange) }

// surrogates is the character of a JSON surrogate pair \uD8xx\uDCxx at
// the start of b, or utf8.RuneError.
func surrogates(b []byte) rune {
	if len(b) < 12 || b[6] != '\\' || b[7] != 'u' {
		return utf8.RuneError
	}
	hi, err1 := strconv.ParseUint(string(b[2:6]), 16, 16)
	lo, err2 := strconv.ParseUint(string(b[8:12]), 16, 16)
	if err1 != nil || err2 != nil {
		return utf8.RuneError
	}
	return utf16.DecodeRune(rune(hi), rune(lo))
}
