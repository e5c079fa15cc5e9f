package pamfile

import (
	"fmt"
	"strings"
	"testing"
)

// Read splits a PAM file as Linux-PAM's pam_line.c and _pam_StrTok
// do (TestBinaryDoctorReadsThePAMFileAsPAM checks the verdicts through a
// real sshd): '#' anywhere ends the line, a backslash at the end continues
// it (unless a comment ends it first), "[...]" is one token.
func TestRead(t *testing.T) {
	tests := map[string]struct {
		src          string
		want         string // entries as "line:tok|tok", one per line
		unterminated bool
	}{
		"plain":                                 {src: "auth\trequisite  pam_exec.so a\n", want: "1:auth|requisite|pam_exec.so|a"},
		"comment after":                         {src: "auth required x.so -c=/a # b c\n", want: "1:auth|required|x.so|-c=/a"},
		"comment mid-word":                      {src: "auth required x.so -c=/a#b\n", want: "1:auth|required|x.so|-c=/a"},
		"comment lines, blanks":                 {src: "# a\n\n   \n\t# b \\\nauth required x.so\n", want: "5:auth|required|x.so"},
		"continued":                             {src: "auth required \\\n  x.so a\\\n b\n", want: "1:auth|required|x.so|a|b"},
		"continued, blanks after the backslash": {src: "auth required \\  \t\nx.so\n", want: "1:auth|required|x.so"},
		"a comment ends a continued line":       {src: "auth required x.so # c \\\nsession required y.so\n", want: "1:auth|required|x.so\n2:session|required|y.so"},
		"brackets":                              {src: "auth [success=ok default=die] x.so [a b\\]c] d\n", want: "1:auth|[success=ok default=die]|x.so|[a b]c]|d"},
		"no newline at the end":                 {src: "auth required x.so", want: "1:auth|required|x.so"},
		"ends continued":                        {src: "auth required x.so\nsession required y.so \\\n", want: "1:auth|required|x.so", unterminated: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			entries, unterminated := Read(tc.src)
			var got []string
			for _, e := range entries {
				var toks []string
				for _, tok := range e.Tokens {
					toks = append(toks, tok.Text())
				}
				got = append(got, fmt.Sprintf("%d:%s", e.Line, strings.Join(toks, "|")))
			}
			if g := strings.Join(got, "\n"); g != tc.want || unterminated != tc.unterminated {
				t.Errorf("got\n%s\nunterminated %v; want\n%s\nunterminated %v", g, unterminated, tc.want, tc.unterminated)
			}
		})
	}
}
