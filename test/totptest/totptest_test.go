package totptest

import (
	"testing"
	"time"
)

// RFC 6238 appendix B, SHA-1, truncated to 6 digits.
func TestCodeRFC6238(t *testing.T) {
	seed := "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ" // base32 of "12345678901234567890"
	tests := map[int64]string{59: "287082", 1111111109: "081804", 1234567890: "005924", 2000000000: "279037"}
	for unix, want := range tests {
		if got := Code(seed, time.Unix(unix, 0)); got != want {
			t.Errorf("Code(%d) = %s, want %s", unix, got, want)
		}
	}
}
