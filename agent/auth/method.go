// Package auth is the agent's auto-auth: one Method per `auto_auth { method }`
// stanza, and the loop that logs in, renews and logs in again.
//
// Cloud methods live in subpackages (auth/aws, auth/alicloud); approle and
// token_file in auth/approle and auth/tokenfile. Each subpackage exports
// New(MethodConfig, Env) (auth.Method, error); auth/methods switches on Type
// (a separate package, because the subpackages import this one).
package auth

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/latchkey/latchkey/internal/hclconf"
	"github.com/latchkey/latchkey/internal/vaultclient"
)

// Method logs in to Vault with one kind of credential.
type Method interface {
	// Login authenticates with client, which carries no token (and the
	// method's namespace, if any), and returns Vault's login response; its
	// Auth field holds the token. A method that does not log in (token_file)
	// returns a Secret whose Auth.ClientToken is the token it read.
	// Login must honour ctx and never log a secret.
	Login(ctx context.Context, client *vaultclient.Client) (*vaultclient.Secret, error)
	// Describe is a short human description for logs and systemd STATUS,
	// e.g. `aws ec2 role "web" (instance i-0abc, eu-west-1)`. It must not
	// contain a secret.
	Describe() string
}

// CredentialWatcher is a Method whose login gives back the same token until
// its credential changes (token_file: the file rewritten with another
// token). The lifecycle holds such a token to its end once it can no longer
// be renewed, rather than log in again for the same token (each such login
// made every template fetch its leases again), and logs in again as soon
// as the credential changes.
type CredentialWatcher interface {
	// CredentialChanged returns a channel closed once the credential no
	// longer gives token; it stops watching when ctx ends.
	CredentialChanged(ctx context.Context, token string) <-chan struct{}
}

// Borrower is a Method whose tokens are not the agent's own (token_file:
// whoever wrote the file issued the token, and may use it elsewhere). The
// agent never revokes such a token.
type Borrower interface {
	// Borrowed reports whether the tokens Login returns are borrowed.
	Borrowed() bool
}

// Borrowed reports whether m's tokens are not the agent's to revoke.
func Borrowed(m Method) bool {
	b, ok := m.(Borrower)
	return ok && b.Borrowed()
}

// MethodConfig is one `method` stanza as parsed from the agent config.
type MethodConfig struct {
	// Type is "aws", "alicloud", "approle" or "token_file".
	Type string
	// MountPath is the auth mount, default "auth/<type>".
	MountPath string
	// Namespace is the method's namespace ("" = the vault stanza's).
	Namespace string
	// WrapTTL response-wraps the login when set (Vault Agent's wrap_ttl);
	// the sink then receives the wrapped token.
	WrapTTL string
	// Config is the method's `config` map, values as HCL gives them:
	// string, bool, int64/float64, []any, map[string]any.
	Config map[string]any
	// File and Line locate the stanza for error messages.
	File string
	Line int
	// Range is the stanza's position (file, line and column); when it is
	// zero, errors fall back to File and Line.
	Range hclconf.Range
	// ConfigRange is the position of the stanza's `config` block (or
	// `config = { ... }` object); zero when there is none.
	ConfigRange hclconf.Range
	// Keys holds each config key's own position, so that an error about
	// a key points at it rather than at the stanza.
	Keys map[string]hclconf.Range
}

// At returns the stanza's "file:line:col" (or "file:line" when only File
// and Line are known), the prefix of errors about the method as a whole.
func (c MethodConfig) At() string {
	if c.Range.Filename != "" {
		return hclconf.Pos(c.Range)
	}
	return fmt.Sprintf("%s:%d", c.File, c.Line)
}

// KeyAt returns the position of config key: the key's own when it was
// given, else that of the config block, else the stanza's (so that a
// missing required key points where it belongs).
func (c MethodConfig) KeyAt(key string) string {
	if r, ok := c.Keys[key]; ok && r.Filename != "" {
		return hclconf.Pos(r)
	}
	if c.ConfigRange.Filename != "" {
		return hclconf.Pos(c.ConfigRange)
	}
	return c.At()
}

// FirstGiven returns the first of keys that the config holds (the first
// key when it holds none), to place an error about keys that go together.
func (c MethodConfig) FirstGiven(keys ...string) string {
	for _, k := range keys {
		if _, ok := c.Config[k]; ok {
			return k
		}
	}
	return keys[0]
}

// Env is what a method may need from the agent around it.
type Env struct {
	// StateDir is the agent's state directory (default /var/lib/latchkey),
	// where methods keep what must survive restarts (the AWS nonce).
	StateDir string
	// Logger is the agent's logger.
	Logger *zap.Logger
	// Getenv reads the environment (os.Getenv in production), so that tests
	// can set AWS_EC2_METADATA_SERVICE_ENDPOINT and friends per case.
	Getenv func(string) string
	// DryRun (render -dry-run) forbids consuming a one-shot credential:
	// approle keeps its secret id file, and refuses to unwrap a
	// response-wrapped secret id (which only one unwrap may read).
	DryRun bool
	// Kept, when set, holds one-shot credentials across the methods a
	// reload builds (see Keeper).
	Kept *Keeper
}

// WithDefaults returns e with a nil Logger replaced by a no-op logger and a
// nil Getenv by one that finds nothing, so that methods need not check.
func (e Env) WithDefaults() Env {
	if e.Logger == nil {
		e.Logger = zap.NewNop()
	}
	if e.Getenv == nil {
		e.Getenv = func(string) string { return "" }
	}
	return e
}
