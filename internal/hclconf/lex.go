package hclconf

import (
	"bytes"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Lexer is the cursor over HCL's literal syntax that both config readers
// use: this package's (the agent's) and the helper's flat one (pam), which
// keeps its own reader for the helper's start-up cost but not its own copy
// of the rules for comments, strings, heredocs, numbers and lists. Every
// message names Key, the key whose value is being read.
type Lexer struct {
	Src []byte
	I   int
	Key string
	// Errf makes the reader's error at byte offset off.
	Errf func(off int, format string, args ...any) error
}

// Peek is the byte k after the cursor (0 past the end).
func (l *Lexer) Peek(k int) byte {
	if l.I+k < len(l.Src) {
		return l.Src[l.I+k]
	}
	return 0
}

// EOF reports whether the cursor is at the end.
func (l *Lexer) EOF() bool { return l.I >= len(l.Src) }

// AtNewline reports whether a line ends at the cursor (\n or \r\n).
func (l *Lexer) AtNewline() bool {
	return l.Peek(0) == '\n' || l.Peek(0) == '\r' && l.Peek(1) == '\n'
}

// Skip passes blanks and comments; with nl it also passes newlines (and
// block comments holding them), else it stops at a newline or at a block
// comment over several lines. Its one error is an unterminated /* comment.
func (l *Lexer) Skip(nl bool) error {
	for !l.EOF() {
		c := l.Peek(0)
		switch {
		case c == ' ' || c == '\t':
			l.I++
		case nl && l.AtNewline():
			l.I++
		case c == '#' || c == '/' && l.Peek(1) == '/':
			for !l.EOF() && !l.AtNewline() {
				l.I++
			}
		case c == '/' && l.Peek(1) == '*':
			end := bytes.Index(l.Src[l.I+2:], []byte("*/"))
			if end < 0 {
				return l.Errf(l.I, "unterminated /* comment")
			}
			if !nl && bytes.IndexByte(l.Src[l.I:l.I+2+end], '\n') >= 0 {
				return nil
			}
			l.I += 2 + end + 2
		default:
			return nil
		}
	}
	return nil
}

// EndLine passes a newline (\n or \r\n) at the cursor and reports whether
// there was one; at the end of the file it reports true.
func (l *Lexer) EndLine() bool {
	switch {
	case l.EOF():
	case l.Peek(0) == '\n':
		l.I++
	case l.Peek(0) == '\r' && l.Peek(1) == '\n':
		l.I += 2
	default:
		return false
	}
	return true
}

// What names the character at the cursor for a message.
func (l *Lexer) What() string {
	if l.EOF() {
		return "the end of the file"
	}
	switch c := l.Peek(0); c {
	case '\n', '\r':
		return "the end of the line"
	default:
		r, _ := utf8.DecodeRune(l.Src[l.I:])
		return Rune(r)
	}
}

// Rune names r for a message: quoted, but for a byte order mark, which is
// invisible in an editor (Notepad and some others save UTF-8 with one at
// the start of the file) and would read as '\ufeff'.
func Rune(r rune) string {
	if r == '\ufeff' {
		return "a byte order mark (U+FEFF, invisible in most editors; save the file as UTF-8 without a BOM)"
	}
	return strconv.QuoteRune(r)
}

// NumberSyntax passes an HCL number literal at the cursor (a leading -
// allowed: digits, an optional fraction and exponent) and reports whether
// it was well formed; what may follow it is the reader's to check.
func (l *Lexer) NumberSyntax() bool {
	if l.Peek(0) == '-' {
		l.I++
	}
	digits := func() bool {
		start := l.I
		for c := l.Peek(0); c >= '0' && c <= '9'; c = l.Peek(0) {
			l.I++
		}
		return l.I > start
	}
	ok := digits()
	if ok && l.Peek(0) == '.' {
		l.I++
		ok = digits()
	}
	if ok && (l.Peek(0) == 'e' || l.Peek(0) == 'E') {
		l.I++
		if l.Peek(0) == '+' || l.Peek(0) == '-' {
			l.I++
		}
		ok = digits()
	}
	return ok
}

// List reads [v, v, ...] over any number of lines, the cursor on its [;
// elem reads one element at the cursor.
func (l *Lexer) List(elem func() error) error {
	open := l.I
	l.I++
	for {
		if err := l.Skip(true); err != nil {
			return err
		}
		if l.EOF() {
			return l.Errf(open, "%s: unterminated list (no ])", l.Key)
		}
		if l.Peek(0) == ']' {
			l.I++
			return nil
		}
		if err := elem(); err != nil {
			return err
		}
		if err := l.Skip(true); err != nil {
			return err
		}
		switch {
		case l.Peek(0) == ',':
			l.I++
		case l.Peek(0) == ']':
		case l.EOF():
			return l.Errf(open, "%s: unterminated list (no ])", l.Key)
		default:
			return l.Errf(l.I, "%s: want , or ] in the list, found %s", l.Key, l.What())
		}
	}
}

// Quoted reads a "string" on one line with HCL's escapes (\n \r \t \" \\
// \uNNNN \UNNNNNNNN, and $${ %%{ for a literal ${ %{), the cursor on its
// opening quote.
func (l *Lexer) Quoted() (string, error) {
	open := l.I
	l.I++
	var b strings.Builder
	for {
		if l.EOF() || l.AtNewline() {
			return "", l.Errf(open, "%s: unterminated string (no closing \" on the line)", l.Key)
		}
		c := l.Peek(0)
		switch {
		case c == '"':
			l.I++
			return b.String(), nil
		case c == '\\':
			r, n, err := Unescape(l.Src[l.I:])
			if err != nil {
				return "", l.Errf(l.I, "%s: %v", l.Key, err)
			}
			b.WriteRune(r)
			l.I += n
		case c < 0x20 && c != '\t':
			return "", l.Errf(l.I, "%s: control character in a string", l.Key)
		default:
			n, err := TemplateByte(l.Src[l.I:])
			if err != nil {
				return "", l.Errf(l.I, "%s: %v", l.Key, err)
			}
			WriteLiteral(&b, l.Src[l.I:l.I+n])
			l.I += n
		}
	}
}

// Heredoc reads <<ID or <<-ID up to a line holding only ID, the cursor on
// its <<; ident reads the ID ("" when there is none: the reader's rule for
// names). Its text keeps every line's newline; <<- removes the
// indentation all lines share.
func (l *Lexer) Heredoc(ident func() string) (string, error) {
	open := l.I
	l.I += 2
	flush := l.Peek(0) == '-'
	if flush {
		l.I++
	}
	id := ident()
	if id == "" || l.EOF() || !l.EndLine() {
		return "", l.Errf(open, "%s: a heredoc starts with <<NAME or <<-NAME and a new line", l.Key)
	}
	var lines []string
	for {
		if l.EOF() {
			return "", l.Errf(open, "%s: unterminated heredoc (no line %q)", l.Key, id)
		}
		end := bytes.IndexByte(l.Src[l.I:], '\n')
		var line []byte
		if end < 0 {
			line = l.Src[l.I:]
		} else {
			line = l.Src[l.I : l.I+end+1]
		}
		// The closing line ends with a newline, as HCL wants.
		if end >= 0 && string(bytes.TrimSpace(line)) == id {
			// The closing line's own newline ends the attribute.
			l.I += len(bytes.TrimRight(line, "\r\n"))
			break
		}
		for j := 0; j < len(line); j++ {
			if c := line[j]; c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
				return "", l.Errf(l.I+j, "%s: control character in a heredoc", l.Key)
			}
			n, err := TemplateByte(line[j:])
			if err != nil {
				return "", l.Errf(l.I+j, "%s: %v", l.Key, err)
			}
			j += n - 1
		}
		lines = append(lines, string(line))
		l.I += len(line)
	}
	if flush {
		// As HCL: a blank line (spaces only) neither counts nor changes;
		// the others lose the leading spaces they all share.
		indent := -1
		for _, s := range lines {
			if n, blank := LeadingSpaces(s); !blank && (indent < 0 || n < indent) {
				indent = n
			}
		}
		for i, s := range lines {
			if _, blank := LeadingSpaces(s); !blank {
				for k := 0; k < indent; k++ {
					_, size := utf8.DecodeRuneInString(s)
					s = s[size:]
				}
				lines[i] = s
			}
		}
	}
	text := strings.Join(lines, "")
	return strings.ReplaceAll(strings.ReplaceAll(text, "$${", "${"), "%%{", "%{"), nil
}

// InvalidUTF8 returns the offset of src's first byte that is not UTF-8,
// and whether there is one.
func InvalidUTF8(src []byte) (int, bool) {
	if utf8.Valid(src) {
		return 0, false
	}
	off := 0
	for off < len(src) {
		r, n := utf8.DecodeRune(src[off:])
		if r == utf8.RuneError && n <= 1 {
			break
		}
		off += n
	}
	return off, true
}

// ErrNumberRange is Number's refusal of a magnitude no config needs.

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
