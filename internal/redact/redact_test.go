package redact

import (
	"errors"
	"io/fs"
	"testing"
)

func TestRedact(t *testing.T) {
	base := errors.New("400: string to sign is POST&%2F&SecurityToken%3Dtok-123%26x and tok-123 again")
	tests := []struct {
		name    string
		err     error
		secrets []string
		want    string
	}{
		{"nil", nil, []string{"x"}, ""},
		{"none present", base, []string{"other", ""}, base.Error()},
		{"replaced everywhere", base, []string{"", "tok-123"}, "400: string to sign is POST&%2F&SecurityToken%3D<redacted>%26x and <redacted> again"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Error(tc.err, Mark, tc.secrets...)
			if tc.err == nil {
				if got != nil {
					t.Fatalf("Error(nil) = %v", got)
				}
				return
			}
			if got.Error() != tc.want {
				t.Errorf("got %q, want %q", got.Error(), tc.want)
			}
			if !errors.Is(got, tc.err) {
				t.Error("the result does not unwrap to the original error")
			}
		})
	}
	wrapped := Error(fs.ErrNotExist, Mark, "not")
	if !errors.Is(wrapped, fs.ErrNotExist) || wrapped.Error() != "file does <redacted> exist" {
		t.Errorf("wrapped = %v", wrapped)
	}
}
