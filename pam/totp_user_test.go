package pam

import (
	"regexp"
	"testing"
)

// safeUser is the regexp it replaced, written out: both agree on every
// name here (and on what FuzzSafeUser finds).
var safeUserRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._@-]*$`)

var safeUserCases = []string{
	"", "a", "alice", "Alice_01", "_svc", "a.b", "a@example.com", "a-b", ".a", "@a", "-a",
	"a/b", "a b", "a\n", "\na", "é", "a..b", "a$", "a\x00", "0", "9z", "a:b", "a+b",
}

func TestSafeUserMatchesItsRegexp(t *testing.T) {
	for _, s := range safeUserCases {
		if got, want := safeUser(s), safeUserRE.MatchString(s); got != want {
			t.Errorf("safeUser(%q) = %v, regexp says %v", s, got, want)
		}
	}
}

func FuzzSafeUser(f *testing.F) {
	for _, s := range safeUserCases {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := safeUser(s), safeUserRE.MatchString(s); got != want {
			t.Fatalf("safeUser(%q) = %v, regexp says %v", s, got, want)
		}
	})
}
