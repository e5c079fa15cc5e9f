package auth

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/latchkey/latchkey/internal/vaultclient"
)

// IsForbidden reports whether err is Vault's 403 answer: the token is
// revoked or expired, or its policies do not allow the request. Network
// errors and other answers are not.
func IsForbidden(err error) bool {
	var re *vaultclient.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusForbidden
}

// OneLine returns err's text on one line, for systemd's STATUS= (whose
// newline ends the assignment, and would cut Vault's reason off). Vault's
// answer, "Error making API request.\n\nURL: ...\nCode: 500. Errors:\n\n*
// reason", becomes "vault answered 500: reason"; other newlines become
// spaces.
func OneLine(err error) string {
	var re *vaultclient.ResponseError
	if errors.As(err, &re) && len(re.Errors) > 0 {
		msg := fmt.Sprintf("vault answered %d: %s", re.StatusCode, strings.Join(re.Errors, "; "))
		// Keep any context wrapped around Vault's answer.
		if outer := err.Error(); !strings.HasPrefix(outer, re.Error()) {
			if i := strings.Index(outer, re.Error()); i > 0 {
				msg = outer[:i] + msg
			}
		}
		return strings.Join(strings.Fields(msg), " ")
	}
	return strings.Join(strings.Fields(err.Error()), " ")
}
