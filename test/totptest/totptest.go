// Package totptest computes RFC 6238 codes (SHA-1, 6 digits, 30 s), the
// defaults of Vault's TOTP engine, so tests can type a stale code.
package totptest

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"strings"
	"time"
)

// Code is the code of the base32 seed at time at. It panics on a seed that
// is not base32: seeds are test constants.
func Code(seed string, at time.Time) string {
	key, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.ToUpper(strings.TrimRight(seed, "=")))
	if err != nil {
		panic(fmt.Sprintf("totptest: seed: %v", err))
	}
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], uint64(at.Unix()/30))
	m := hmac.New(sha1.New, key)
	m.Write(msg[:])
	sum := m.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	n := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	return fmt.Sprintf("%06d", n%1_000_000)
}
