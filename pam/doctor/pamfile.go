package doctor

import (
	"strings"
)

// pamEntry is one line of a PAM file as Linux-PAM reads it
// (libpam/pam_handlers.c, pam_line.c and pam_misc.c's _pam_StrTok): the
// physical lines joined where one ends in a backslash, cut at the first
// '#' anywhere (not only at the line's start), split at spaces, tabs and
// newlines, a token that starts with '[' running to the first unescaped
// ']' (brackets dropped, "\]" read as "]"). Reading it otherwise, doctor
// failed lines PAM runs ("... -config=X # OTP", a continued line) and
// passed lines PAM reads otherwise.
type pamEntry struct {
	line   int // the first physical line, 1-based
	tokens []pamToken
}

// pamToken is one token; bracket is set when it was written "[...]".
type pamToken struct {
	s       string
	bracket bool
}

// text is the token as written, for messages.
func (t pamToken) text() string {
	if t.bracket {
		return "[" + t.s + "]"
	}
	return t.s
}

// readPAMFile splits src into entries. unterminated is set when the file
// ends in a continued line, which Linux-PAM reads as an error: it aborts
// the whole stack, so every login fails.
func readPAMFile(src string) (entries []pamEntry, unterminated bool) {
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
		if toks := pamTokens(buf.String()); len(toks) > 0 {
			entries = append(entries, pamEntry{line: first, tokens: toks})
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

// pamTokens splits an assembled line as _pam_StrTok does with " \n\t".
func pamTokens(s string) []pamToken {
	var out []pamToken
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
			out = append(out, pamToken{s: s[:end]})
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
		out = append(out, pamToken{s: b.String(), bracket: true})
		if i < len(s) {
			i++ // the ']'
		}
		s = s[i:]
	}
}
