package auth

import (
	"errors"
	"net/http"

	"github.com/hashicorp/vault/api"
)

// IsForbidden reports whether err is Vault's 403 answer: the token is
// revoked or expired, or its policies do not allow the request. Network
// errors and other answers are not.
func IsForbidden(err error) bool {
	var re *api.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusForbidden
}
