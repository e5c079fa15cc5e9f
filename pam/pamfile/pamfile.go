// Package pamfile reads a PAM configuration file (/etc/pam.d/sshd) as
// Linux-PAM does and a pam_exec line as pam_exec does. doctor judges the
// stack with it and install-pam finds the lines it replaces or refuses
// with it, so both read what sshd's PAM reads.
package pamfile

import (
	"strings"
)

// Entry is one line of a PAM file as Linux-PAM reads it
// (libpam/pam_handlers.c, pam_line.c and pam_misc.c's _pam_StrTok): the
// physical lines joined where one ends in a backslash, cut at the first
// '#' anywhere (not only at the line's start), split at spaces, tabs and
// newlines, a token that starts with '[' running to the first unescaped
// ']' (brackets dropped, "\]" read as "]"). Reading it otherwise, doctor
// failed lines PAM runs ("... -config=X # OTP", a continued line) and
// passed lines PAM reads otherwise.
type Entry struct {
	Line   int // the first physical line, 1-based
	Last   int // the last physical line (Line unless continued)
	Tokens []Token
}

// Token is one token; Bracket is set when it was written "[...]".
type Token struct {
	S       string
	Bracket bool
}

// Text is the token as written, for messages.
func (t Token) Text() string {
	if t.Bracket {
		return "[" + t.S + "]"
	}
	return t.S
}

// Read splits src into entries. unterminated is set when the file
// ends in a continued line, which Linux-PAM reads as an error: it aborts
// the whole stack, so every login fails.
func Read(src string) (entries []Entry, unterminated bool) {
	var buf strings.Builder
	first := 0
	phys := strings.SplitAfter(src, "\n")
	for i, l := range phys {
		if l == "" {
			continue // after the last "\n"
		}
		body, cont := unescapeNewline(l)
		if strings.IndexByte(body, '#') >= 0 {
			cont = false // a comment ends the line, backslash and all
		}
		body = strings.TrimLeft(body, " \t")
		if j := strings.IndexByte(body, '#'); j >= 0 {
			body = body[:j]
		}
		if buf.Len() == 0 {
			first = i + 1
		}
		buf.WriteString(body)
		if cont {
			continue
		}
		if toks := tokens(buf.String()); len(toks) > 0 {
			entries = append(entries, Entry{Line: first, Last: i + 1, Tokens: toks})
		}
		buf.Reset()
	}
	return entries, buf.Len() > 0
}

// unescapeNewline is _pam_str_unescnl with a blank as the replacement: a
// line whose last character other than space, tab and newline is a
// backslash continues on the next; the backslash becomes a blank.
func unescapeNewline(l string) (string, bool) {
	t := strings.TrimRight(l, " \t\n")
	if strings.HasSuffix(t, "\\") {
		return t[:len(t)-1] + " ", true
	}
	return l, false
}

// tokens splits an assembled line as _pam_StrTok does with " \n\t".
func tokens(s string) []Token {
	var out []Token
	for {
		s = strings.TrimLeft(s, " \t\n")
		if s == "" {
			return out
		}
		if s[0] != '[' {
			end := strings.IndexAny(s, " \t\n")
			if end < 0 {
				end = len(s)
			}
			out = append(out, Token{S: s[:end]})
			s = s[end:]
			continue
		}
		var b strings.Builder
		i := 1
		for ; i < len(s) && s[i] != ']'; i++ {
			if s[i] == '\\' && i+1 < len(s) && s[i+1] == ']' {
				i++
			}
			b.WriteByte(s[i])
		}
		out = append(out, Token{S: b.String(), Bracket: true})
		if i < len(s) {
			i++ // the ']'
		}
		s = s[i:]
	}
}
