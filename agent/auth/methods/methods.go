// Package methods builds the auto_auth method a config names.
package methods

import (
	"github.com/latchkey/latchkey/agent/auth"
	"github.com/latchkey/latchkey/agent/auth/approle"
	"github.com/latchkey/latchkey/agent/auth/tokenfile"
	"github.com/latchkey/latchkey/agent/config"
)

// New returns the method for cfg.Type, checking its config without
// contacting anything. An unknown type is an error naming the stanza.
func New(cfg auth.MethodConfig, env auth.Env) (auth.Method, error) {
	switch cfg.Type {
	case "approle":
		return approle.New(cfg, env)
	case "token_file":
		return tokenfile.New(cfg, env)
	case "aws", "alicloud":
		// TODO(merge): return aws.New(cfg, env) / alicloud.New(cfg, env)
		// once agent/auth/aws and agent/auth/alicloud are on main.
		return nil, cfg.Errorf("method %q not built yet", cfg.Type)
	}
	return nil, cfg.Errorf("not supported (supported: aws, alicloud, approle, token_file)")
}

// FromConfig is the MethodConfig of a parsed method stanza.
func FromConfig(m *config.Method) auth.MethodConfig {
	wrap := ""
	if m.WrapTTL > 0 {
		wrap = m.WrapTTL.String()
	}
	return auth.MethodConfig{
		Type: m.Type, MountPath: m.MountPath, Namespace: m.Namespace, WrapTTL: wrap,
		Config: m.Config, File: m.Range.Filename, Line: m.Range.Start.Line,
	}
}
