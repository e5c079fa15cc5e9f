package config

import (
	"os"
	"time"
)

// Every default of the agent's configuration, applied in one place
// (Config.finalize) to what no file set.
const (
	// DefaultStateDir holds what must survive restarts (the AWS nonce).
	DefaultStateDir = "/var/lib/latchkey"
	// DefaultNumRetries is vault { retry { num_retries } } (Vault Agent's):
	// what an unset or 0 num_retries means.
	DefaultNumRetries = 12
	// DefaultVaultTimeout bounds one request to Vault (vault { timeout }),
	// well under a refresh interval, so that a hung node costs one short
	// wait, then a retry (the api package's own default is 60 s).
	DefaultVaultTimeout = 10 * time.Second
	// DefaultMinBackoff and DefaultMaxBackoff bound the wait between
	// failed logins.
	DefaultMinBackoff = time.Second
	DefaultMaxBackoff = 5 * time.Minute
	// MaxLoginSplay bounds latchkey { login_splay } (default 0): units
	// ordered after the agent wait for its READY=1 through the splay, and
	// a longer one is a typo more often than a plan.
	MaxLoginSplay = 10 * time.Minute
	// DefaultStaticSecretRenderInterval re-reads unleased (KV) secrets.
	DefaultStaticSecretRenderInterval = 5 * time.Minute
	// DefaultLeaseRenewalThreshold is the fraction of a non-renewable
	// lease, or of a certificate's life, after which it is fetched again.
	DefaultLeaseRenewalThreshold = 0.9
	// DefaultMaxConnectionsPerHost bounds connections to Vault.
	DefaultMaxConnectionsPerHost = 10
	// DefaultSinkMode is a sink file's mode.
	DefaultSinkMode os.FileMode = 0o640
	// DefaultCommandTimeout kills a template's command.
	DefaultCommandTimeout = 30 * time.Second
	// DefaultTemplateRetryMin and DefaultTemplateRetryMax bound the wait
	// before a failed template is tried again (Vault Agent's).
	DefaultTemplateRetryMin = 250 * time.Millisecond
	DefaultTemplateRetryMax = time.Minute
	// DefaultSourceQuiet is how long an edited template source must stay
	// unchanged before it is read again.
	DefaultSourceQuiet = 250 * time.Millisecond
	// DefaultSinkMinBackoff and DefaultSinkMaxBackoff bound the wait
	// between failed sink writes.
	DefaultSinkMinBackoff = time.Second
	DefaultSinkMaxBackoff = time.Minute
)

// DefaultTemplateConfig returns Vault Agent's template_config defaults.
func DefaultTemplateConfig() TemplateConfig {
	return TemplateConfig{
		StaticSecretRenderInterval: DefaultStaticSecretRenderInterval,
		LeaseRenewalThreshold:      DefaultLeaseRenewalThreshold,
		MaxConnectionsPerHost:      DefaultMaxConnectionsPerHost,
		RetryMin:                   DefaultTemplateRetryMin,
		RetryMax:                   DefaultTemplateRetryMax,
		RetryAttempts:              DefaultNumRetries + 1,
		SourceQuiet:                DefaultSourceQuiet,
	}
}

// templateConfigSet is what one or more files set in template_config: nil
// is "not set", so that a later file setting one key leaves the others as
// an earlier file set them.
type templateConfigSet struct {
	ExitOnRetryFailure         *bool
	StaticSecretRenderInterval *time.Duration
	LeaseRenewalThreshold      *float64
	MaxConnectionsPerHost      *int
}

// merge lays o over s key by key: a key o sets wins.
func (s *templateConfigSet) merge(o templateConfigSet) {
	if o.ExitOnRetryFailure != nil {
		s.ExitOnRetryFailure = o.ExitOnRetryFailure
	}
	if o.StaticSecretRenderInterval != nil {
		s.StaticSecretRenderInterval = o.StaticSecretRenderInterval
	}
	if o.LeaseRenewalThreshold != nil {
		s.LeaseRenewalThreshold = o.LeaseRenewalThreshold
	}
	if o.MaxConnectionsPerHost != nil {
		s.MaxConnectionsPerHost = o.MaxConnectionsPerHost
	}
}

// finalize returns the template_config the set keys describe, with the
// defaults for the others.
func (s templateConfigSet) finalize() TemplateConfig {
	tc := DefaultTemplateConfig()
	if s.ExitOnRetryFailure != nil {
		tc.ExitOnRetryFailure = *s.ExitOnRetryFailure
	}
	if s.StaticSecretRenderInterval != nil {
		tc.StaticSecretRenderInterval = *s.StaticSecretRenderInterval
	}
	if s.LeaseRenewalThreshold != nil {
		tc.LeaseRenewalThreshold = *s.LeaseRenewalThreshold
	}
	if s.MaxConnectionsPerHost != nil {
		tc.MaxConnectionsPerHost = *s.MaxConnectionsPerHost
	}
	return tc
}

func ptr[T any](v T) *T { return &v }

// NumRetries is the number of retries vault { retry { num_retries } }
// means, n being the value written (nil when unset), as in Vault Agent:
// unset or 0 is DefaultNumRetries, -1 is none. (A value below -1 is refused
// when the file is parsed.)
func NumRetries(n *int) int {
	switch {
	case n == nil || *n == 0:
		return DefaultNumRetries
	case *n < 0:
		return 0
	}
	return *n
}
