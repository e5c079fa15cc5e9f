package config

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/latchkey/latchkey/agent/sshtrust"
	"github.com/latchkey/latchkey/internal/hclconf"
)

// SSH is the `ssh { ... }` stanza as read: nil pointers are keys not given,
// so that a later file overrides only what it sets (Merge), and Finalize
// fills the rest with sshtrust's defaults.
type SSH struct {
	TrustedUserCAKeys *string
	UserCAMounts      *[]string
	PinnedUserCAKeys  *string
	RefreshInterval   *time.Duration
	HostCertificate   *SSHHostCertificate
	CheckCommand      *[]string
	ReloadCommand     *[]string
	// Range is the stanza's position; Keys holds each key's (dotted for
	// host_certificate's), so that a Validate error points at it.
	Range hclconf.Range
	Keys  map[string]hclconf.Range
}

// SSHHostCertificate is ssh { host_certificate { ... } }.
type SSHHostCertificate struct {
	Mount, Role *string
	Keys        *[]string
	Principals  *[]string
	TTL         *time.Duration
}

// DefaultSSH is an ssh stanza with every key unset.
func DefaultSSH() *SSH { return &SSH{Keys: map[string]hclconf.Range{}} }

// Merge returns s with o laid over it, key by key; either may be nil.
func (s *SSH) Merge(o *SSH) *SSH {
	if s == nil {
		return o
	}
	if o == nil {
		return s
	}
	r := *s
	r.Keys = map[string]hclconf.Range{}
	for k, v := range s.Keys {
		r.Keys[k] = v
	}
	for k, v := range o.Keys {
		r.Keys[k] = v
	}
	r.Range = o.Range
	set := func(dst **string, v *string) {
		if v != nil {
			*dst = v
		}
	}
	list := func(dst **[]string, v *[]string) {
		if v != nil {
			*dst = v
		}
	}
	set(&r.TrustedUserCAKeys, o.TrustedUserCAKeys)
	set(&r.PinnedUserCAKeys, o.PinnedUserCAKeys)
	list(&r.UserCAMounts, o.UserCAMounts)
	list(&r.CheckCommand, o.CheckCommand)
	list(&r.ReloadCommand, o.ReloadCommand)
	if o.RefreshInterval != nil {
		r.RefreshInterval = o.RefreshInterval
	}
	if oh := o.HostCertificate; oh != nil {
		h := SSHHostCertificate{}
		if s.HostCertificate != nil {
			h = *s.HostCertificate
		}
		set(&h.Mount, oh.Mount)
		set(&h.Role, oh.Role)
		list(&h.Keys, oh.Keys)
		list(&h.Principals, oh.Principals)
		if oh.TTL != nil {
			h.TTL = oh.TTL
		}
		r.HostCertificate = &h
	}
	return &r
}

// Finalize fills the defaults of keys not given. It is a no-op on nil.
func (s *SSH) Finalize() {
	if s == nil {
		return
	}
	if s.RefreshInterval == nil {
		d := sshtrust.DefaultRefreshInterval
		s.RefreshInterval = &d
	}
	if h := s.HostCertificate; h != nil && h.Keys == nil {
		k := []string{sshtrust.DefaultHostKeys}
		h.Keys = &k
	}
}

// Trust is the finalized stanza as sshtrust wants it.
func (s *SSH) Trust() sshtrust.Config {
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	list := func(p *[]string) []string {
		if p == nil {
			return nil
		}
		return *p
	}
	c := sshtrust.Config{
		TrustedUserCAKeys: str(s.TrustedUserCAKeys),
		UserCAMounts:      list(s.UserCAMounts),
		PinnedUserCAKeys:  str(s.PinnedUserCAKeys),
		CheckCommand:      list(s.CheckCommand),
		ReloadCommand:     list(s.ReloadCommand),
	}
	if s.RefreshInterval != nil {
		c.RefreshInterval = *s.RefreshInterval
	}
	if h := s.HostCertificate; h != nil {
		c.Host = &sshtrust.HostCertificate{Mount: str(h.Mount), Role: str(h.Role), Keys: list(h.Keys), Principals: list(h.Principals)}
		if h.TTL != nil {
			c.Host.TTL = *h.TTL
		}
	}
	return c
}

// Validate returns nil for a nil or usable stanza, or sshtrust's message
// prefixed with the file:line:col of the key it is about (the stanza's when
// that key was not given).
func (s *SSH) Validate() error {
	if s == nil {
		return nil
	}
	err := s.Trust().Validate()
	var ke *sshtrust.KeyError
	if !errors.As(err, &ke) {
		return err
	}
	at := s.Range
	if r, ok := s.Keys[ke.Key]; ok {
		at = r
	} else if r, ok := s.Keys[strings.SplitN(ke.Key, ".", 2)[0]]; ok {
		at = r
	}
	return fmt.Errorf("%s: %w", hclconf.Pos(at), err)
}

// ssh decodes one ssh stanza.
func (ps *parser) ssh(b *hclconf.Block) *SSH {
	s := DefaultSSH()
	s.Range = b.DefRange
	lv, d := split(b.Body, "host_certificate")
	ps.add(d)
	ps.add(lv.check("ssh", []string{"trusted_user_ca_keys", "user_ca_mounts", "pinned_user_ca_keys",
		"refresh_interval", "check_command", "reload_command"}, []string{"host_certificate"}))
	for k, a := range lv.attrs {
		s.Keys[k] = a.NameRange
	}
	s.TrustedUserCAKeys = ps.optString(lv.attrs["trusted_user_ca_keys"])
	s.PinnedUserCAKeys = ps.optString(lv.attrs["pinned_user_ca_keys"])
	s.UserCAMounts = ps.optList(lv.attrs["user_ca_mounts"])
	s.CheckCommand = ps.optList(lv.attrs["check_command"])
	s.ReloadCommand = ps.optList(lv.attrs["reload_command"])
	s.RefreshInterval = ps.optDuration(lv.attrs["refresh_interval"])
	hosts := lv.blocksOf("host_certificate")
	if len(hosts) > 1 {
		ps.add(hclconf.Diagnostics{hclconf.Errorf(hosts[1].DefRange, "ssh: only one host_certificate stanza is allowed")})
	}
	for _, hb := range hosts {
		s.Keys["host_certificate"] = hb.DefRange
		hl, d := split(hb.Body)
		ps.add(d)
		ps.add(hl.check("ssh.host_certificate", []string{"mount", "role", "keys", "principals", "ttl"}, nil))
		for k, a := range hl.attrs {
			s.Keys["host_certificate."+k] = a.NameRange
		}
		s.HostCertificate = &SSHHostCertificate{
			Mount:      ps.optString(hl.attrs["mount"]),
			Role:       ps.optString(hl.attrs["role"]),
			Keys:       ps.optList(hl.attrs["keys"]),
			Principals: ps.optList(hl.attrs["principals"]),
			TTL:        ps.optDuration(hl.attrs["ttl"]),
		}
	}
	return s
}

func (ps *parser) optString(a *hclconf.Attribute) *string {
	if a == nil {
		return nil
	}
	var s string
	ps.str(a, &s)
	return &s
}

func (ps *parser) optList(a *hclconf.Attribute) *[]string {
	if a == nil {
		return nil
	}
	l, d := hclconf.StringList(a)
	ps.add(d)
	return &l
}

func (ps *parser) optDuration(a *hclconf.Attribute) *time.Duration {
	if a == nil {
		return nil
	}
	var v time.Duration
	ps.duration(a, &v)
	return &v
}
