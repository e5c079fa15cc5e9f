package config

import (
	"fmt"
	"os"
	"time"

	"github.com/latchkey/latchkey/internal/hclconf"
)

// Template is one `template { ... }` stanza, with Vault Agent's (and
// consul-template's) keys. The agent config parser fills it; agent/template
// renders it.
type Template struct {
	// Source is a template file; Contents an inline template. Exactly one is set.
	Source   string
	Contents string
	// Destination is the file to write.
	Destination string
	// CreateDestDirs creates missing parent directories (default true).
	CreateDestDirs bool
	// Perms is the destination's mode; nil keeps an existing file's mode,
	// else 0644 (Vault Agent's default).
	Perms *os.FileMode
	// User/UID and Group/GID set the destination's owner: a name, or a
	// number; nil/"" keeps an existing file's (Vault Agent's rule), else
	// the agent's own.
	User  string
	UID   *int
	Group string
	GID   *int
	// Backup keeps the previous content as <destination>.bak.
	Backup bool
	// ErrorOnMissingKey fails the render instead of writing "<no value>".
	ErrorOnMissingKey bool
	// LeftDelim and RightDelim replace "{{" and "}}" when set.
	LeftDelim, RightDelim string
	// Exec is the command run after the destination changed (`command` or
	// `exec { command, timeout }`); nil when there is none.
	Exec *Exec
	// Wait is the quiescence timer (`wait { min, max }`); zero when unset.
	Wait Wait

	// Range is where the stanza was declared, for error messages; Keys
	// holds the position of each key the stanza sets, so that an error
	// about user or group points at it.
	Range hclconf.Range
	Keys  map[string]hclconf.Range
}

// KeyRange returns key's position, or the stanza's when the key's is
// unknown.
func (t Template) KeyRange(key string) hclconf.Range {
	if r, ok := t.Keys[key]; ok && r.Filename != "" {
		return r
	}
	return t.Range
}

// MaxID is the largest user or group id a file can be given: ids are 32
// bits, and 4294967295 is (uid_t)-1, which chown takes for "leave as is".
const MaxID = 1<<32 - 2

// CheckID refuses an id no file can be owned by (negative, or beyond
// MaxID): the kernel's chown would take it modulo 2^32, giving the file
// to another user.
func CheckID(n int64) error {
	if n < 0 || n > MaxID {
		return fmt.Errorf("%d is not a valid id (want 0 to %d)", n, int64(MaxID))
	}
	return nil
}

// Exec is a command run after a template's destination changed.
type Exec struct {
	// Command is the argv. A `command = "string"` becomes
	// ["/bin/sh", "-c", string], as consul-template runs it.
	Command []string
	// Timeout kills the command's process group (default 30s).
	Timeout time.Duration
}

// Wait is consul-template's quiescence timer.
type Wait struct {
	Min, Max time.Duration
}

// TemplateConfig is the `template_config { ... }` stanza.
type TemplateConfig struct {
	// ExitOnRetryFailure makes the agent exit non-zero when a template
	// keeps failing after its retries.
	ExitOnRetryFailure bool
	// StaticSecretRenderInterval re-reads unleased (KV) secrets (default 5m).
	StaticSecretRenderInterval time.Duration
	// LeaseRenewalThreshold is the fraction of a non-renewable lease (or a
	// certificate's life) after which it is fetched again (default 0.9).
	LeaseRenewalThreshold float64
	// MaxConnectionsPerHost bounds connections to Vault (default 10).
	MaxConnectionsPerHost int

	// Not keys of the stanza, but the rest of what the template manager
	// goes by, finalized here with the others so that it has no defaults
	// of its own. RetryMin and RetryMax bound the wait before a failed
	// template is tried again (Vault Agent's 250ms and 1m); RetryAttempts
	// is how many failures in a row count as "retries exhausted": one
	// attempt plus vault { retry { num_retries } } retries (13 by default,
	// 1 with num_retries = -1), as in Vault Agent;
	// SourceQuiet is how long an edited template source must stay
	// unchanged before it is read again.
	RetryMin, RetryMax time.Duration
	RetryAttempts      int
	SourceQuiet        time.Duration
}
