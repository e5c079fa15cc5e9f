package pam

import (
	"bytes"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/latchkey/latchkey/internal/hclconf"
)

// The native syntax as vault-ssh-helper reads it: HCL 1 (github.com/
// hashicorp/hcl v1, through Vault's api.ParseSSHHelperConfig), whose rules
// differ from HCL 2's in ways a working file may use. HCL 1 is not
// line-based: a key, its = and its value may be on different lines, and
// items may share a line or be followed by one comma. A key may be quoted.
// An integer keeps its text ("007", "0x1F"). Strings know \a \b \f \v,
// \xHH and \OOO besides HCL 2's escapes, and ${...} / %{...} are plain
// text. Heredocs follow HCL 1's rules for their end line and indentation.
// Where a construct means something else to HCL 2, the reader notes it
// (parsed.hcl1) so that the HCL 2 oracle of the tests knows it does not
// apply.

type tokKind int

const (
	tEOF tokKind = iota
	tIdent
	tString
	tInt
	tFloat
	tHeredoc
	tPunct // one of [ ] { } , = :
)

// token is one HCL 1 token: src[off:end].
type token struct {
	kind     tokKind
	off, end int
	// nl: a newline outside comments came between the previous token and
	// this one; ml: a block comment holding one did.
	nl, ml bool
	v      value // for literals
}

// hcl1 is the cursor of the native reader.
type hcl1 struct {
	p   *parsed
	src []byte
	i   int
	key string // the key whose value is being read, for messages
	// back is a token read ahead and given back (parse's look for a
	// comma), when hasBack.
	back    token
	hasBack bool
}

func (s *hcl1) errf(off int, format string, args ...any) error {
	if s.key != "" {
		format = s.key + ": " + format
	}
	return s.p.errAt(off, format, args...)
}

func (s *hcl1) peek(k int) byte {
	if s.i+k < len(s.src) {
		return s.src[s.i+k]
	}
	return 0
}

// isLetter and isDigit are HCL 1's: ASCII and, beyond, Unicode's.
func isLetter(r rune) bool {
	return r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= utf8.RuneSelf && unicode.IsLetter(r)
}

func isDigit(r rune) bool {
	return r >= '0' && r <= '9' || r >= utf8.RuneSelf && unicode.IsDigit(r)
}

func (s *hcl1) rune() (rune, int) { return utf8.DecodeRune(s.src[s.i:]) }

// skip passes white space (space, tab, CR, LF) and comments, and reports
// whether a newline outside comments (nl) or a block comment holding one
// (ml) was among them.
func (s *hcl1) skip() (nl, ml bool, err error) {
	for s.i < len(s.src) {
		switch c := s.src[s.i]; {
		case c == ' ' || c == '\t':
			s.i++
		case c == '\n':
			nl = true
			s.i++
		case c == '\r':
			if s.peek(1) != '\n' {
				// HCL 1 takes a lone CR for a blank; HCL 2 does not.
				s.p.hcl1 = append(s.p.hcl1, "lone CR")
			}
			s.i++
		case c == '#' || c == '/' && s.peek(1) == '/':
			for s.i < len(s.src) && s.src[s.i] != '\n' {
				s.i++
			}
		case c == '/' && s.peek(1) == '*':
			end := bytes.Index(s.src[s.i+2:], []byte("*/"))
			if end < 0 {
				return nl, ml, s.p.errAt(s.i, "unterminated /* comment")
			}
			if bytes.IndexByte(s.src[s.i:s.i+2+end], '\n') >= 0 {
				ml = true
			}
			s.i += 2 + end + 2
		case c == '/':
			return nl, ml, s.p.errAt(s.i, "a comment starts with // or /*")
		default:
			return nl, ml, nil
		}
	}
	return nl, ml, nil
}

// what names the character at the cursor for a message.
func (s *hcl1) what() string {
	if s.i >= len(s.src) {
		return "the end of the file"
	}
	if s.src[s.i] == '\n' || s.src[s.i] == '\r' {
		return "the end of the line"
	}
	r, _ := s.rune()
	return hclconf.Rune(r)
}

// next reads the token at the cursor after blanks and comments.
func (s *hcl1) next() (token, error) {
	if s.hasBack {
		s.hasBack = false
		return s.back, nil
	}
	nl, ml, err := s.skip()
	if err != nil {
		return token{}, err
	}
	t := token{off: s.i, nl: nl, ml: ml}
	if s.i >= len(s.src) {
		t.kind, t.end = tEOF, s.i
		return t, nil
	}
	r, size := s.rune()
	switch {
	case isLetter(r):
		for s.i < len(s.src) {
			if c := s.src[s.i]; c < utf8.RuneSelf {
				if !isKeyByte(c) && c != '.' {
					break
				}
				s.i++
				continue
			}
			r, size := s.rune()
			if !isLetter(r) && !isDigit(r) {
				break
			}
			s.i += size
		}
		t.kind = tIdent
	case r >= '0' && r <= '9' || r == '-' && s.peek(1) >= '0' && s.peek(1) <= '9':
		t.kind, err = s.number()
	case r == '"':
		t.kind = tString
		t.v, err = s.quoted()
	case r == '<':
		t.kind = tHeredoc
		t.v, err = s.heredoc()
	case strings.ContainsRune("[]{},=", r):
		t.kind = tPunct
		s.i += size
	default:
		return t, s.errf(s.i, "want a key, a value or one of = [ ] { } ,; found %s", s.what())
	}
	t.end = s.i
	if err != nil {
		return t, err
	}
	if t.kind == tInt || t.kind == tFloat {
		t.v, err = s.numberValue(t)
	}
	return t, err
}

func (t token) is(src []byte, punct byte) bool {
	return t.kind == tPunct && src[t.off] == punct
}

func isDec(c byte) bool { return c >= '0' && c <= '9' }

// number passes an HCL 1 number: [-] then 0x hex, or digits with an
// optional fraction and exponent. A float must have digits after its . and
// its e (HCL 2's rule: vault-ssh-helper takes no float for any of its
// keys).
func (s *hcl1) number() (tokKind, error) {
	start := s.i
	if s.src[s.i] == '-' {
		s.i++
	}
	if s.src[s.i] == '0' && (s.peek(1) == 'x' || s.peek(1) == 'X') {
		s.i += 2
		n := 0
		for s.i < len(s.src) && strings.IndexByte("0123456789abcdefABCDEF", s.src[s.i]) >= 0 {
			s.i++
			n++
		}
		if n == 0 {
			return tInt, s.errf(start, "malformed hexadecimal number")
		}
		return tInt, nil
	}
	lead := s.i
	for s.i < len(s.src) && isDec(s.src[s.i]) {
		s.i++
	}
	kind := tInt
	if s.peek(0) == '.' {
		kind = tFloat
		s.i++
		n := s.i
		for s.i < len(s.src) && isDec(s.src[s.i]) {
			s.i++
		}
		if s.i == n {
			return kind, s.errf(start, "malformed number; a string is written in double quotes")
		}
	}
	if c := s.peek(0); c == 'e' || c == 'E' {
		kind = tFloat
		s.i++
		if c := s.peek(0); c == '+' || c == '-' {
			s.i++
		}
		n := s.i
		for s.i < len(s.src) && isDec(s.src[s.i]) {
			s.i++
		}
		if s.i == n {
			return kind, s.errf(start, "malformed number; a string is written in double quotes")
		}
	}
	if kind == tInt && s.src[lead] == '0' {
		// HCL 1's octal check: an 8 or 9 after the first digit that
		// follows the 0.
		if bytes.ContainsAny(s.src[min(lead+2, s.i):s.i], "89") {
			return kind, s.errf(start, "malformed number (an octal number has no 8 or 9)")
		}
	}
	return kind, nil
}

// numberValue is an int's text, as HCL 1 gives a string key (and its
// value for the other keys), or a float's value in HCL 2's precision.
func (s *hcl1) numberValue(t token) (value, error) {
	text := string(s.src[t.off:t.end])
	v := value{kind: vNumber, raw: text}
	if t.kind == tInt {
		v.isInt = true
		if strings.Contains(text, "x") || strings.Contains(text, "X") {
			v.hex = true
			s.p.hcl1 = append(s.p.hcl1, "hexadecimal number")
			return v, nil
		}
		if len(text) > 40 {
			// HCL 2 would say the same digits, or beyond its range refuse.
			s.p.hcl1 = append(s.p.hcl1, "long integer")
			return v, nil
		}
	}
	_, canon, err := hclconf.Number(text)
	switch {
	case err != nil && t.kind == tInt:
		s.p.hcl1 = append(s.p.hcl1, "integer")
		return v, nil
	case errorsIsRange(err):
		return value{}, s.errf(t.off, "%v", err)
	case err != nil:
		return value{}, s.errf(t.off, "malformed number: %v", err)
	}
	v.s = canon
	if t.kind == tInt && canon != text {
		// "007": HCL 1 keeps the text, HCL 2 says 7.
		s.p.hcl1 = append(s.p.hcl1, "integer text")
	}
	return v, nil
}

// quoted reads a "string" as HCL 1 does: it ends at the first " outside
// ${...}; within ${...} (which may hold quotes and new lines) everything is
// text, kept as it is. Control characters other than tab are refused
// (no working value holds one), and so are $${ and %%{: HCL 2 (and this
// reader before) took them for ${ and %{, HCL 1 takes them as they are.
func (s *hcl1) quoted() (value, error) {
	open := s.i
	s.i++
	var b strings.Builder
	braces := 0
	for {
		if s.i >= len(s.src) || s.src[s.i] == '\n' && braces == 0 {
			return value{}, s.errf(open, "unterminated string (no closing \" on the line)")
		}
		c := s.src[s.i]
		switch {
		case c == '"' && braces == 0:
			s.i++
			return value{kind: vString, s: b.String()}, nil
		case braces == 0 && (c == '$' || c == '%') && s.peek(1) == c && s.peek(2) == '{':
			return value{}, s.errf(s.i, "%c%c{ is ambiguous: HCL 2 (and latchkey's reader before) reads it as %c{, vault-ssh-helper as %c%c{; write %c{, which is taken literally", c, c, c, c, c, c)
		case braces == 0 && (c == '$' || c == '%') && s.peek(1) == '{':
			s.noteTemplate(s.i, c)
			if c == '$' {
				braces = 1
			}
			b.WriteString(string(s.src[s.i : s.i+2]))
			s.i += 2
		case c == '\\' && braces == 0:
			r, n, hcl2, err := unescapeHCL1(s.src[s.i:])
			if err != nil {
				return value{}, s.errf(s.i, "%v", err)
			}
			if !hcl2 {
				s.p.hcl1 = append(s.p.hcl1, "escape")
			}
			b.WriteRune(r)
			s.i += n
		case c == '\\':
			// Within ${...} an escape is checked, and kept as it is.
			_, n, _, err := unescapeHCL1(s.src[s.i:])
			if err != nil {
				return value{}, s.errf(s.i, "%v", err)
			}
			b.Write(s.src[s.i : s.i+n])
			s.i += n
		case c == '\r' && s.peek(1) == '\n' && braces > 0:
			// HCL 1 reads CRLF as LF.
			s.i++
		case c < 0x20 && c != '\t' && !(c == '\n' && braces > 0), c == 0x7f:
			return value{}, s.errf(s.i, "control character in a string")
		default:
			if braces > 0 {
				switch c {
				case '{':
					braces++
				case '}':
					braces--
				}
			}
			b.WriteByte(c)
			s.i++
		}
	}
}

// noteTemplate warns about ${ or %{ at off, which HCL 1 (vault-ssh-helper)
// takes as text and HCL 2 would evaluate.
func (s *hcl1) noteTemplate(off int, c byte) {
	s.p.hcl1 = append(s.p.hcl1, "template")
	if !s.p.warnedTemplate {
		s.p.warnedTemplate = true
		s.p.warnAt(off, "%s: %c{ is taken literally, as vault-ssh-helper takes it: nothing is substituted", s.key, c)
	}
}

// unescapeHCL1 reads the escape at the start of b (a \): HCL 1's set, with
// whether HCL 2 knows it too. \x and octal escapes stand for one byte,
// which must be ASCII (a value is UTF-8 text); \u and \U for a character.
func unescapeHCL1(b []byte) (r rune, n int, hcl2 bool, err error) {
	if len(b) < 2 {
		return 0, 0, false, errBadEscape(b)
	}
	switch b[1] {
	case 'n', 'r', 't', '"', '\\':
		r, n, err := hclconf.Unescape(b)
		return r, n, true, err
	case 'a':
		return '\a', 2, false, nil
	case 'b':
		return '\b', 2, false, nil
	case 'f':
		return '\f', 2, false, nil
	case 'v':
		return '\v', 2, false, nil
	case 'u', 'U':
		r, n, err := hclconf.Unescape(b)
		return r, n, true, err
	case 'x':
		if len(b) >= 4 {
			if v, err := strconv.ParseUint(string(b[2:4]), 16, 8); err == nil {
				if v >= utf8.RuneSelf {
					return 0, 0, false, errNotASCII(b[:4])
				}
				return rune(v), 4, false, nil
			}
		}
		return 0, 0, false, errBadEscape(b)
	case '0', '1', '2', '3', '4', '5', '6', '7':
		if len(b) >= 4 {
			if v, err := strconv.ParseUint(string(b[1:4]), 8, 16); err == nil {
				if v >= utf8.RuneSelf {
					return 0, 0, false, errNotASCII(b[:4])
				}
				return rune(v), 4, false, nil
			}
		}
		return 0, 0, false, errBadEscape(b)
	}
	return 0, 0, false, errBadEscape(b)
}

type escapeError string

func (e escapeError) Error() string { return string(e) }

func errBadEscape(b []byte) error {
	r, _ := utf8.DecodeRune(b[min(1, len(b)):])
	return escapeError("invalid escape sequence " + strconv.Quote(`\`+string(r)) + ` (known: \n \r \t \" \\ \a \b \f \v \xHH \OOO \uNNNN \UNNNNNNNN)`)
}

func errNotASCII(b []byte) error {
	return escapeError("escape sequence " + strconv.Quote(string(b)) + " stands for a byte that is not UTF-8 text; write the character itself or \\uNNNN")
}

// heredoc reads <<ID or <<-ID as HCL 1 does: ID is letters and digits;
// the heredoc ends at a line holding ID after any blanks (and, with <<-,
// at least one character before ID); its text is HCL 1's (see
// heredocText).
func (s *hcl1) heredoc() (value, error) {
	open := s.i
	if s.peek(1) != '<' {
		return value{}, s.errf(open, "want a value, found %s", s.what())
	}
	s.i += 2
	idStart := s.i
	if s.peek(0) == '-' {
		s.i++
	}
	for s.i < len(s.src) {
		r, size := s.rune()
		if !isLetter(r) && !isDigit(r) {
			break
		}
		s.i += size
	}
	id := string(s.src[idStart:s.i])
	if s.peek(0) == '\r' && s.peek(1) == '\n' {
		s.i++
	}
	if s.i >= len(s.src) || s.src[s.i] != '\n' || id == "" || id == "-" {
		return value{}, s.errf(open, "a heredoc starts with <<NAME or <<-NAME and a new line")
	}
	s.i++
	name := strings.TrimPrefix(id, "-")
	lineStart := s.i
	for {
		nl := bytes.IndexByte(s.src[s.i:], '\n')
		if nl < 0 {
			return value{}, s.errf(open, "unterminated heredoc (no line %q)", name)
		}
		line := s.src[lineStart : s.i+nl]
		s.i += nl + 1
		// HCL 1 reads CRLF as LF before it measures the line.
		n := len(line)
		if n > 0 && line[n-1] == '\r' {
			n--
		}
		if n >= len(id) && heredocEnd(line, name) {
			break
		}
		lineStart = s.i
	}
	raw := s.src[open:s.i]
	text := heredocText(strings.ReplaceAll(string(raw), "\r\n", "\n"))
	for j := 0; j < len(text); j++ {
		if c := text[j]; c < 0x20 && c != '\t' && c != '\n' || c == 0x7f {
			return value{}, s.errf(open, "control character in a heredoc")
		}
	}
	for _, c := range []byte{'$', '%'} {
		if strings.Contains(text, string([]byte{c, c, '{'})) {
			return value{}, s.errf(open, "%c%c{ is ambiguous: HCL 2 (and latchkey's reader before) reads it as %c{, vault-ssh-helper as %c%c{; write %c{, which is taken literally", c, c, c, c, c, c)
		}
		if i := strings.Index(text, string([]byte{c, '{'})); i >= 0 {
			s.noteTemplate(open, c)
		}
	}
	// HCL 2's reading of the same heredoc, to note where it differs.
	l := hclconf.Lexer{Src: s.src, I: open, Errf: func(int, string, ...any) error { return errHCL2 }}
	if v2, err := l.Heredoc(func() string {
		st := l.I
		for l.I < len(l.Src) && isKeyByte(l.Src[l.I]) {
			l.I++
		}
		return string(l.Src[st:l.I])
	}); err != nil || v2 != text || l.I != s.i-1 && l.I != s.i-2 {
		s.p.hcl1 = append(s.p.hcl1, "heredoc")
	}
	return value{kind: vString, s: text}, nil
}

var errHCL2 = escapeError("hcl2")

// heredocEnd reports whether line (without its newline) is blanks, name
// and nothing but CRs after it: HCL 1's `^[[:space:]]*NAME\r*\z`.
func heredocEnd(line []byte, name string) bool {
	rest := bytes.TrimLeft(line, " \t\n\v\f\r")
	rest, ok := bytes.CutPrefix(rest, []byte(name))
	return ok && len(bytes.Trim(rest, "\r")) == 0
}

// heredocText is the value of a heredoc whose whole token, from << to the
// new line after its end line, is tok: HCL 1's rule. <<ID: the lines
// between, and the blanks before the end line's ID. <<-ID: when every
// line starts with the end line's blanks, the lines without them; else
// the lines as they are, with one character less and no blank at the
// end.
func heredocText(tok string) string {
	idx := strings.IndexByte(tok, '\n')
	if tok[2] != '-' {
		return tok[idx+1 : len(tok)-idx+1]
	}
	lines := strings.Split(tok[idx+1:len(tok)-idx+2], "\n")
	prefix := lines[len(lines)-1]
	for _, l := range lines {
		if !strings.HasPrefix(l, prefix) {
			return strings.TrimRight(tok[idx+1:len(tok)-idx+1], " \t")
		}
	}
	for k := range lines {
		lines[k] = strings.TrimPrefix(lines[k], prefix)
	}
	lines[len(lines)-1] = ""
	return strings.Join(lines, "\n")
}
