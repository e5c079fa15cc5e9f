package pam

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// quoteValue returns s, or s quoted (Go syntax) when it is not valid UTF-8
// or holds anything unprintable: a newline, a C1 control such as 0x85,
// U+2028. Every value from PAM or Vault goes through it before it reaches a
// log line, so that nobody can forge a second line in syslog or a log= file.
func quoteValue(s string) string {
	if !printable(s) {
		return strconv.Quote(s)
	}
	return s
}

// printable reports whether s is valid UTF-8 with nothing unprintable in it.
func printable(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) })
}
