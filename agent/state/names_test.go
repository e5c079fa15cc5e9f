package state

import (
	"regexp"
	"testing"
)

// safeName accepts exactly what the pattern it replaced accepted.
func TestSafeName(t *testing.T) {
	re := regexp.MustCompile(`^[A-Za-z0-9._-]+$`)
	for _, s := range []string{
		"aws-nonce.i-0123", "a", "..", "A_b-c.9",
		"", "a/b", "../x", "a b", "a\n", "é", "a:b",
	} {
		if got, want := safeName(s), re.MatchString(s); got != want {
			t.Errorf("safeName(%q) = %v, want %v", s, got, want)
		}
	}
}
