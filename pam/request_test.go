package pam

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

const otp = "8b2d4f3a-1c5e-4a6b-9d7e-0f1a2b3c4d5e"

func TestReadSecret(t *testing.T) {
	tests := map[string]struct {
		in      string
		want    string
		wantErr string
	}{
		"debian 12, no NUL":        {in: otp, want: otp},
		"older Linux-PAM, one NUL": {in: otp + "\x00", want: otp},
		"every trailing NUL":       {in: otp + "\x00\x00\x00", want: otp},
		"echo by hand, newline":    {in: otp + "\n", want: otp},
		"CRLF":                     {in: otp + "\r\n", want: otp},
		"newline then NUL":         {in: otp + "\n\x00", want: otp},
		"only one newline":         {in: otp + "\n\n", want: otp + "\n"},
		"embedded NUL refused":     {in: otp[:8] + "\x00" + otp[9:], wantErr: ErrNUL.Error()},
		"NUL first refused":        {in: "\x00" + otp, wantErr: ErrNUL.Error()},
		"just a newline":           {in: "\n\x00", wantErr: "no password on stdin"},
		"empty":                    {in: "", wantErr: "no password on stdin"},
		"just a NUL":               {in: "\x00", wantErr: "no password on stdin"},
		"too long":                 {in: strings.Repeat("a", maxSecret+1), wantErr: "longer than 512 bytes"},
		"too long is ErrTooLong":   {in: strings.Repeat("a", 4096), wantErr: ErrTooLong.Error()},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ReadSecret(context.Background(), strings.NewReader(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "aaaa") {
					t.Fatal("error contains the input")
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// A stdin that never ends (pam_exec without expose_authtok on some systems)
// must not outlive the deadline.
func TestReadSecretHonoursContext(t *testing.T) {
	r, w := io.Pipe()
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := ReadSecret(ctx, r)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error = %v", err)
	}
}

func TestIsUUID(t *testing.T) {
	tests := map[string]bool{
		otp:                                    true,
		strings.ToUpper(otp):                   true,
		"":                                     false,
		otp[:35]:                               false,
		otp + "0":                              false,
		"8b2d4f3a_1c5e-4a6b-9d7e-0f1a2b3c4d5e": false,
		"8b2d4f3a-1c5e-4a6b-9d7e-0f1a2b3c4d5g": false,
		"8b2d4f3a1-c5e-4a6b-9d7e-0f1a2b3c4d5e": false,
		"hunter2":                              false,
	}
	for in, want := range tests {
		if got := IsUUID(in); got != want {
			t.Errorf("IsUUID(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestIsTOTPCode(t *testing.T) {
	tests := map[string]bool{
		"123456": true, "1234567": true, "12345678": true,
		"12345": false, "123456789": false, "12345a": false, "": false, " 123456": false,
	}
	for in, want := range tests {
		if got := IsTOTPCode(in); got != want {
			t.Errorf("IsTOTPCode(%q) = %v, want %v", in, got, want)
		}
	}
}
