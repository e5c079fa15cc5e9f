// Package aws is the `aws` auto-auth method. type = "ec2" logs in with the
// instance's signed identity document (PKCS#7, rsa2048) and a nonce that is
// kept in the state directory across restarts, bound to the instance id.
package aws

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/smallstep/pkcs7"
	"go.uber.org/zap"

	"github.com/latchkey/latchkey/agent/auth"
	"github.com/latchkey/latchkey/agent/state"
	"github.com/latchkey/latchkey/internal/cloud/awsmeta"
	"github.com/latchkey/latchkey/internal/vaultclient"
)

// Identity is the part of the instance identity document latchkey uses.
type Identity struct {
	AccountID   string `json:"accountId"`
	InstanceID  string `json:"instanceId"`
	Region      string `json:"region"`
	ImageID     string `json:"imageId"`
	PendingTime string `json:"pendingTime"`
}

// NonceRecord is what the state directory keeps for an ec2 login.
type NonceRecord struct {
	InstanceID string    `json:"instance_id"`
	Mount      string    `json:"mount"`
	Nonce      string    `json:"nonce"`
	Created    time.Time `json:"created"`
}

// Method logs in with the aws auth method.
type Method struct {
	mount  string
	typ    string
	role   string
	nonce  string // configured nonce; "" = generated and kept in state
	meta   *awsmeta.Client
	state  state.Dir
	log    *zap.Logger
	region string
	// iam: X-Vault-AWS-IAM-Server-ID, the STS URL signed, the credentials.
	headerValue string
	stsURL      string
	creds       sdkaws.CredentialsProvider
	credsFrom   string // where creds come from, for errors and logs

	mu   sync.Mutex // guards last: Describe may run beside Login
	last Identity   // from the last document read, for Describe
}

// New reads cfg as Vault Agent's aws method does: type (ec2 or iam) and
// role (both required), nonce, region (default us-east-1), header_value,
// access_key, secret_key, session_token, credential_poll_interval; and
// latchkey's metadata_endpoint and allow_imdsv1. It returns an error naming
// the key and its file:line:col (the config block's when it is missing) for an unknown key, a value of the
// wrong type, a missing type or role, or a half-configured static key.
func New(cfg auth.MethodConfig, env auth.Env) (auth.Method, error) {
	s := auth.NewSettings(cfg)
	env = env.WithDefaults()
	getenv, log := env.Getenv, env.Logger
	m := &Method{
		mount:       cfg.MountPath,
		typ:         s.Required("type"),
		role:        s.Required("role"),
		nonce:       s.String("nonce", ""),
		region:      s.String("region", "us-east-1"),
		headerValue: s.String("header_value", ""),
		state:       state.Dir{Path: env.StateDir, Logger: log},
		log:         log,
	}
	endpoint := s.String("metadata_endpoint", "")
	allowV1 := s.Bool("allow_imdsv1", false)
	static := sdkaws.Credentials{
		AccessKeyID:     s.String("access_key", ""),
		SecretAccessKey: s.String("secret_key", ""),
		SessionToken:    s.String("session_token", ""),
		Source:          "config",
	}
	// Credentials are fetched afresh (from the cache) on every login, so
	// there is nothing to poll; the key is accepted for compatibility.
	if s.Duration("credential_poll_interval", time.Minute) <= 0 {
		return nil, fmt.Errorf("%s: method \"aws\": config key \"credential_poll_interval\": want a positive number of seconds", cfg.KeyAt("credential_poll_interval"))
	}
	if err := s.Err(); err != nil {
		return nil, err
	}
	// at prefixes an error about key with the key's position.
	at := func(key string) string { return fmt.Sprintf("%s: method \"aws\"", cfg.KeyAt(key)) }
	if m.typ != "ec2" && m.typ != "iam" {
		return nil, fmt.Errorf("%s: config key \"type\": %q: want ec2 or iam", at("type"), m.typ)
	}
	if (static.AccessKeyID == "") != (static.SecretAccessKey == "") {
		return nil, fmt.Errorf("%s: config keys \"access_key\" and \"secret_key\" go together", at(cfg.FirstGiven("access_key", "secret_key")))
	}
	if static.SessionToken != "" && static.AccessKeyID == "" {
		return nil, fmt.Errorf("%s: config key \"session_token\" needs \"access_key\" and \"secret_key\"", at("session_token"))
	}
	if !auth.RegionName(m.region) {
		return nil, fmt.Errorf("%s: config key \"region\": %q is not a region name such as eu-west-1", at("region"), m.region)
	}
	if len(m.nonce) > 128 {
		return nil, fmt.Errorf("%s: config key \"nonce\" is longer than Vault's 128 characters", at("nonce"))
	}
	meta, err := awsmeta.New(awsmeta.Options{Endpoint: endpoint, AllowV1: allowV1, Getenv: getenv})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", at("metadata_endpoint"), err)
	}
	m.meta = meta
	m.stsURL = stsURL(m.region, strings.EqualFold(getenv("AWS_STS_REGIONAL_ENDPOINTS"), "regional"))
	m.creds, m.credsFrom = credentialChain(static, getenv, meta)
	return m, nil
}

// Describe implements auth.Method.
func (m *Method) Describe() string {
	m.mu.Lock()
	last := m.last
	m.mu.Unlock()
	d := fmt.Sprintf("aws %s role %q", m.typ, m.role)
	if last.InstanceID != "" {
		d += fmt.Sprintf(" (instance %s, %s)", last.InstanceID, last.Region)
	}
	return d
}

// Login implements auth.Method.
func (m *Method) Login(ctx context.Context, client *vaultclient.Client) (*vaultclient.Secret, error) {
	if m.typ == "iam" {
		return m.loginIAM(ctx, client)
	}
	raw, err := m.meta.Dynamic(ctx, "instance-identity/rsa2048")
	if err != nil {
		return nil, err
	}
	doc := strings.Join(strings.Fields(raw), "")
	id, err := ParseIdentity(doc)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.last = id
	m.mu.Unlock()
	nonce, err := m.nonceFor(id)
	if err != nil {
		return nil, err
	}
	m.log.Debug("instance identity document", zap.String("instance_id", id.InstanceID),
		zap.String("region", id.Region), zap.String("account_id", id.AccountID))
	data := map[string]any{"pkcs7": doc, "nonce": nonce, "role": m.role}
	secret, err := client.Write(ctx, strings.Trim(m.mount, "/")+"/login", data)
	if err != nil && strings.Contains(err.Error(), "client nonce mismatch") {
		// Vault remembers another nonce for this instance: the state was
		// lost, or another agent (Vault Agent) logged in first. Only an
		// operator can clear that; say how.
		return nil, fmt.Errorf("%w (Vault holds another nonce for instance %s: the nonce in %s was lost or never used here; "+
			"an operator can delete %s/identity-accesslist/%s, or set nonce in the config)",
			err, id.InstanceID, m.state.Path, strings.Trim(m.mount, "/"), id.InstanceID)
	}
	if err == nil && m.nonce == "" {
		m.forgetOthers(id)
	}
	return secret, err
}

// ParseIdentity decodes the base64 PKCS#7 document (BER or DER) and returns
// the identity it carries. It does not verify the signature: Vault does.
func ParseIdentity(doc string) (Identity, error) {
	der, err := base64.StdEncoding.DecodeString(doc)
	if err != nil {
		return Identity{}, fmt.Errorf("identity document: not base64: %w", err)
	}
	p7, err := pkcs7.Parse(der)
	if err != nil {
		return Identity{}, fmt.Errorf("identity document: PKCS#7: %w", err)
	}
	var id Identity
	if err := json.Unmarshal(p7.Content, &id); err != nil {
		return Identity{}, fmt.Errorf("identity document: content: %w", err)
	}
	if id.InstanceID == "" {
		return Identity{}, fmt.Errorf("identity document has no instanceId")
	}
	return id, nil
}

// instanceIDName reports whether s may be an instance id naming a state
// record (1 to 64 ASCII letters, digits and "-"): the document is not
// verified yet when the name is made.
func instanceIDName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// recordBase is the start of this mount's nonce record names: one record
// per instance id, <base>.<instance id>. Earlier versions kept one record
// per mount, named <base> itself.
func (m *Method) recordBase() string {
	return "aws-ec2-" + strings.NewReplacer("/", "_").Replace(strings.Trim(m.mount, "/"))
}

// sameMount reports whether a record was written for this method's mount.
func (m *Method) sameMount(rec NonceRecord) bool {
	return strings.Trim(rec.Mount, "/") == strings.Trim(m.mount, "/")
}

// nonceFor returns the nonce to log in as instance id with: the configured
// one, or the one kept in the state directory for this instance id, or a
// new one saved before it is first used (a crash after a successful login
// must not lose it). The document is not verified yet — Vault does that —
// so nothing kept for another instance id is touched here: a spoofed or
// garbled document must not cost the real instance its nonce.
// forgetOthers clears them once Vault accepted a login.
func (m *Method) nonceFor(id Identity) (string, error) {
	if m.nonce != "" {
		return m.nonce, nil
	}
	if !instanceIDName(id.InstanceID) {
		return "", fmt.Errorf("identity document: instanceId %q is not an instance id", id.InstanceID)
	}
	base := m.recordBase()
	name := base + "." + id.InstanceID
	var rec NonceRecord
	found, err := m.state.Load(name, &rec)
	switch {
	case errors.Is(err, state.ErrCorrupt):
		// What it held is lost: a new nonce is the only way on.
		m.log.Warn("nonce state corrupt; starting fresh", zap.Error(err))
		found = false
	case err != nil:
		// Unreadable now (EIO, EMFILE, a directory in its place) is not
		// lost: replaced by a new nonce, the kept one would be gone and
		// Vault would refuse every later login as a nonce mismatch. This
		// login fails and is retried.
		return "", fmt.Errorf("nonce state (not replaced; the login is retried): %w", err)
	}
	if found && rec.InstanceID == id.InstanceID && m.sameMount(rec) && rec.Nonce != "" {
		return rec.Nonce, nil
	}
	// A state directory of an earlier latchkey: its one record per mount
	// goes on being used when it is this instance's.
	var legacy NonceRecord
	ok, err := m.state.Load(base, &legacy)
	if err != nil && !errors.Is(err, state.ErrCorrupt) {
		return "", fmt.Errorf("nonce state (not replaced; the login is retried): %w", err)
	}
	if err == nil && ok && legacy.InstanceID == id.InstanceID && m.sameMount(legacy) && legacy.Nonce != "" {
		rec = legacy
	} else {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return "", fmt.Errorf("generate a nonce: %w", err)
		}
		rec = NonceRecord{InstanceID: id.InstanceID, Mount: m.mount, Nonce: hex.EncodeToString(b), Created: time.Now().UTC()}
	}
	if err := m.state.Save(name, rec); err != nil {
		return "", fmt.Errorf("keep the nonce: %w", err)
	}
	m.log.Info("stored a login nonce for this instance", zap.String("instance_id", id.InstanceID))
	return rec.Nonce, nil
}

// forgetOthers removes this mount's nonce records of every instance id but
// id, once Vault accepted id's document: records baked into an image, of
// an instance migrated away, or made for a document Vault refused. A
// record of another instance is never reused.
func (m *Method) forgetOthers(id Identity) {
	base := m.recordBase()
	names, err := m.state.Names(base)
	if err != nil {
		m.log.Warn("nonce state: cannot list records", zap.Error(err))
		return
	}
	for _, n := range names {
		// Names only share the prefix: another mount may be called
		// "<mount>-2"; the record says whose it is.
		if n == base+"."+id.InstanceID || (n != base && !strings.HasPrefix(n, base+".")) {
			continue
		}
		var rec NonceRecord
		if ok, err := m.state.Load(n, &rec); err != nil || !ok || !m.sameMount(rec) {
			continue
		}
		if err := m.state.Remove(n); err != nil {
			m.log.Warn("nonce state: cannot remove another instance's record", zap.Error(err))
			continue
		}
		if rec.InstanceID != id.InstanceID {
			m.log.Info("removed the nonce record of another instance (baked into the image, the instance migrated, or a document Vault refused)",
				zap.String("state_instance_id", rec.InstanceID), zap.String("instance_id", id.InstanceID))
		}
	}
}
