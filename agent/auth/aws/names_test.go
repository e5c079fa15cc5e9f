package aws

import (
	"regexp"
	"strings"
	"testing"
)

// instanceIDName accepts exactly what the pattern it replaced accepted.
func TestInstanceIDName(t *testing.T) {
	re := regexp.MustCompile(`^[A-Za-z0-9-]{1,64}$`)
	for _, s := range []string{
		"i-0123456789abcdef0", "i-1", "-", "I-ABC", strings.Repeat("a", 64), strings.Repeat("a", 65),
		"", "i_1", "i-1\n", "i-1/../x", "i.1", "i-é", " i-1",
	} {
		if got, want := instanceIDName(s), re.MatchString(s); got != want {
			t.Errorf("instanceIDName(%q) = %v, want %v", s, got, want)
		}
	}
}
