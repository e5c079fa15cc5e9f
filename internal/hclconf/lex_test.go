package hclconf

import (
	"fmt"
	"testing"
)

// The Lexer's rules, as both readers see them: where a literal ends, and
// the message (naming the key) when it is malformed.
func TestLexer(t *testing.T) {
	errf := func(off int, format string, args ...any) error {
		return fmt.Errorf("%d: %s", off, fmt.Sprintf(format, args...))
	}
	ident := func(l *Lexer) func() string {
		return func() string {
			start := l.I
			for !l.EOF() && (l.Peek(0) >= 'A' && l.Peek(0) <= 'Z') {
				l.I++
			}
			return string(l.Src[start:l.I])
		}
	}
	tests := map[string]struct {
		src  string
		read func(l *Lexer) (string, error)
		want string // the value read, or the error
		end  int    // the cursor afterwards (when no error)
	}{
		"number":             {"-1.5e+3 x", num, "ok", 7},
		"number, no frac":    {"1. ", num, "bad", 2},
		"number, no exp":     {"2e;", num, "bad", 2},
		"comments":           {"  # a\n/* b\n */ // c\r\nx", skip(true), "", 21},
		"comment on line":    {"/* a\n */x", skip(false), "", 0},
		"open comment":       {" /* x", skip(true), "1: unterminated /* comment", 0},
		"end of line":        {" \t# c\r\nx", skip(false), "", 5},
		"quoted":             {`"a\tb$${c}" x`, (*Lexer).Quoted, "a\tb${c}", 11},
		"unterminated":       {"\"a\nb\"", (*Lexer).Quoted, `0: k: unterminated string (no closing " on the line)`, 0},
		"heredoc":            {"<<-EOT\n    a\n  b\n  EOT\nx", func(l *Lexer) (string, error) { return l.Heredoc(ident(l)) }, "  a\nb\n", 22},
		"heredoc, no id":     {"<<\nEOT\n", func(l *Lexer) (string, error) { return l.Heredoc(ident(l)) }, "0: k: a heredoc starts with <<NAME or <<-NAME and a new line", 0},
		"list":               {"[1, 22,\n 3,]x", list, "1 22 3", 12},
		"list without comma": {"[1 2]", list, "3: k: want , or ] in the list, found '2'", 0},
		"open list":          {"[1,\n", list, "0: k: unterminated list (no ])", 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			l := &Lexer{Src: []byte(tc.src), Key: "k", Errf: errf}
			got, err := tc.read(l)
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Fatalf("read %q = %q, want %q", tc.src, got, tc.want)
			}
			if err == nil && l.I != tc.end {
				t.Errorf("cursor at %d, want %d", l.I, tc.end)
			}
		})
	}
}

func num(l *Lexer) (string, error) {
	if l.NumberSyntax() {
		return "ok", nil
	}
	return "bad", nil
}

func skip(nl bool) func(l *Lexer) (string, error) {
	return func(l *Lexer) (string, error) { return "", l.Skip(nl) }
}

func list(l *Lexer) (string, error) {
	out := ""
	err := l.List(func() error {
		start := l.I
		for l.Peek(0) >= '0' && l.Peek(0) <= '9' {
			l.I++
		}
		if out != "" {
			out += " "
		}
		out += string(l.Src[start:l.I])
		return nil
	})
	return out, err
}
