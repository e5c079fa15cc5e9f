// Package methods builds the auto-auth method a config names.
package methods

import (
	"fmt"

	"github.com/latchkey/latchkey/agent/auth"
	"github.com/latchkey/latchkey/agent/auth/alicloud"
	"github.com/latchkey/latchkey/agent/auth/approle"
	"github.com/latchkey/latchkey/agent/auth/aws"
	"github.com/latchkey/latchkey/agent/auth/tokenfile"
)

// New returns the method of cfg.Type, or an error naming the stanza when
// the type is unknown or its config is wrong.
func New(cfg auth.MethodConfig, env auth.Env) (auth.Method, error) {
	switch cfg.Type {
	case "approle":
		return approle.New(cfg, env)
	case "token_file":
		return tokenfile.New(cfg, env)
	case "aws":
		return aws.New(cfg, env)
	case "alicloud":
		return alicloud.New(cfg, env)
	}
	return nil, fmt.Errorf("%s: auto_auth method %q is not available in this build", cfg.At(), cfg.Type)
}
