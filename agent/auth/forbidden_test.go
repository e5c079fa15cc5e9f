package auth

import (
	"errors"
	"fmt"
	"testing"

	"github.com/latchkey/latchkey/internal/vaultclient"
)

func TestOneLine(t *testing.T) {
	vault := &vaultclient.ResponseError{Method: "PUT", Path: "/v1/auth/x/login", StatusCode: 500, Errors: []string{"sts: nonce used", "again"}}
	tests := map[string]struct {
		err  error
		want string
	}{
		"vault's answer":         {vault, "vault answered 500: sts: nonce used; again"},
		"wrapped vault's answer": {fmt.Errorf("approle login: %w", vault), "approle login: vault answered 500: sts: nonce used; again"},
		"newlines":               {errors.New("a\nb\n\nc"), "a b c"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := OneLine(tc.err); got != tc.want {
				t.Errorf("OneLine = %q, want %q", got, tc.want)
			}
		})
	}
}
