package hclconf

import (
	"bytes"
	"strconv"
	"strings"
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
		return strconv.QuoteRune(r)
	}
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
