package pam

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
)

// maxSecret bounds what is read from stdin: an OTP is 36 bytes, a TOTP code
// at most 8; anything much longer is not a password for us.
const maxSecret = 512

// ErrNoSecret means stdin was empty: pam_exec was configured without
// expose_authtok, or the person typed nothing.
var ErrNoSecret = errors.New("no password on stdin (is expose_authtok on the pam_exec line?)")

// ErrTooLong means stdin held more than any OTP or code could be: not ours.
var ErrTooLong = fmt.Errorf("password on stdin is longer than %d bytes", maxSecret)

// ErrNUL means the password on stdin held a NUL byte before its end: no
// OTP or code has one, and C code upstream would have cut it there.
var ErrNUL = errors.New("password on stdin holds a NUL byte")

// ReadSecret reads what pam_exec's expose_authtok writes: the typed password,
// NUL-terminated on older Linux-PAM and not on current releases (Debian 12).
// Every trailing NUL is stripped, then one line ending ("\n" or "\r\n",
// as `echo OTP |` sends by hand; a PAM conversation never yields one); a
// NUL anywhere else is refused (ErrNUL) rather than cut or passed on. It
// returns when r reaches EOF or ctx ends, whichever is first; the error
// never contains the secret. Empty input gives an error wrapping
// ErrNoSecret, oversized input one wrapping ErrTooLong.
func ReadSecret(ctx context.Context, r io.Reader) (string, error) {
	type result struct {
		b   []byte
		err error
	}
	ch := make(chan result, 1)
	go func() {
		b, err := io.ReadAll(io.LimitReader(r, maxSecret+1))
		ch <- result{b, err}
	}()
	var res result
	select {
	case res = <-ch:
	case <-ctx.Done():
		return "", fmt.Errorf("read password from stdin: %w", ctx.Err())
	}
	if res.err != nil {
		return "", fmt.Errorf("read password from stdin: %w", res.err)
	}
	b := res.b
	if len(b) > maxSecret {
		return "", fmt.Errorf("read password from stdin: %w", ErrTooLong)
	}
	b = bytes.TrimRight(b, "\x00")
	if bytes.HasSuffix(b, []byte("\r\n")) {
		b = b[:len(b)-2]
	} else {
		b = bytes.TrimSuffix(b, []byte("\n"))
	}
	if len(b) == 0 {
		return "", ErrNoSecret
	}
	if bytes.IndexByte(b, 0) >= 0 {
		return "", ErrNUL
	}
	return string(b), nil
}

// IsUUID reports whether s has the shape of a Vault SSH OTP: 36 characters,
// dashes at 8, 13, 18 and 23, hex digits elsewhere.
func IsUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !isHex(c) {
				return false
			}
		}
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// IsTOTPCode reports whether s is a 6 to 8 digit code.
func IsTOTPCode(s string) bool {
	if len(s) < 6 || len(s) > 8 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
