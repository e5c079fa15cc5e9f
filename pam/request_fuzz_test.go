package pam

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"unicode/utf8"
)

// pam_exec's stdin, whatever it holds: no panic, the secret never in an
// error, and an accepted secret has no NUL and fits the limit.
func FuzzReadSecret(f *testing.F) {
	for _, s := range []string{"", "\x00", "11111111-2222-3333-4444-555555555555\x00", "123456", "\xff\xfe\x00\x00", strings.Repeat("a", maxSecret+1)} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := ReadSecret(context.Background(), bytes.NewReader(in))
		if err != nil {
			// What is left once the NULs and line ending ReadSecret strips are gone.
			if rest := bytes.TrimRight(in, "\x00\r\n"); len(rest) >= 6 && strings.Contains(err.Error(), string(rest)) {
				t.Fatalf("error %q holds the input", err)
			}
			return
		}
		if len(s) > maxSecret || s == "" {
			t.Fatalf("accepted secret %q (len %d)", s, len(s))
		}
		// Trailing NULs are stripped, any other NUL refused.
		if strings.Contains(s, "\x00") {
			t.Fatalf("accepted a secret holding NUL: %q", s)
		}
		if IsUUID(s) && (len(s) != 36 || !utf8.ValidString(s)) {
			t.Fatalf("IsUUID(%q)", s)
		}
		if IsTOTPCode(s) && strings.Trim(s, "0123456789") != "" {
			t.Fatalf("IsTOTPCode(%q)", s)
		}
	})
}
