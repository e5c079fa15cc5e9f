// Package alicloud is the `alicloud` auto-auth method: a signed STS
// GetCallerIdentity request made with the instance's RAM role credentials
// (or static keys), which Vault replays to learn who is calling.
// Optionally it first verifies the instance identity document against
// Alibaba Cloud's pinned certificate, refusing a spoofed metadata service.
package alicloud

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/latchkey/latchkey/agent/auth"
	"github.com/latchkey/latchkey/agent/state"
	"github.com/latchkey/latchkey/internal/atomicfile"
	"github.com/latchkey/latchkey/internal/cloud/alimeta"
	"github.com/latchkey/latchkey/internal/redact"
	"github.com/latchkey/latchkey/internal/vaultclient"
)

// Method logs in with the alicloud auth method.
type Method struct {
	mount, role, region string
	// static credentials (environment or config); empty = a RAM role.
	static    alimeta.Credentials
	credsFrom string
	// ramRole names the ECS RAM role; "" = the first the instance lists.
	ramRole  string
	poll     time.Duration
	verify   bool
	audience string
	cert     *x509.Certificate
	meta     *alimeta.Client
	state    state.Dir
	log      *zap.Logger
	now      func() time.Time

	mu      sync.Mutex // guards creds and fetched
	creds   alimeta.Credentials
	fetched time.Time

	descMu   sync.Mutex // guards instance: Describe may run beside Login
	instance string
}

// IdentityRecord is what the state directory keeps once the identity
// document was verified.
type IdentityRecord struct {
	InstanceID string    `json:"instance_id"`
	RegionID   string    `json:"region_id"`
	AccountID  string    `json:"account_id"`
	Verified   time.Time `json:"verified"`
}

// unsupported are Vault Agent alicloud keys (and their environment
// variables) for credential kinds latchkey does not implement: assuming a
// RAM role with keys, and RSA key pairs. Refused, never silently ignored:
// ignoring them would log in as another identity than Vault Agent would.
var unsupported = []struct{ key, env string }{
	{"role_arn", "ALICLOUD_ROLE_ARN"},
	{"role_session_name", "ALICLOUD_ROLE_SESSION_NAME"},
	{"role_session_expiration", "ALICLOUD_ROLE_SESSION_EXPIRATION"},
	{"private_key", "ALICLOUD_PRIVATE_KEY"},
	{"public_key_id", "ALICLOUD_PUBLIC_KEY_ID"},
	{"session_expiration", "ALICLOUD_SESSION_EXPIRATION"},
}

// New reads cfg as Vault Agent's alicloud method does: role and region
// (required), credential_poll_interval, and the credential chain in Vault
// Agent's order — the environment (ALICLOUD_ACCESS_KEY, ALICLOUD_SECRET_KEY,
// ALICLOUD_ACCESS_KEY_STS_TOKEN, or ALICLOUD_ROLE_NAME), then the config
// (access_key with access_secret — secret_key, the name Vault's docs use, is
// accepted too — and access_token, or role_name), then the ECS RAM role of
// the instance; plus latchkey's verify_identity, identity_audience,
// identity_cert_file and metadata_endpoint. It returns an error naming the
// key and its file:line:col (the config block's when it is missing) for an unknown or unsupported key, a value
// of the wrong type, a missing role or region, or half a key pair.
func New(cfg auth.MethodConfig, env auth.Env) (auth.Method, error) {
	s := auth.NewSettings(cfg)
	env = env.WithDefaults()
	getenv, log := env.Getenv, env.Logger
	m := &Method{
		mount:    cfg.MountPath,
		role:     s.Required("role"),
		region:   s.Required("region"),
		poll:     s.Duration("credential_poll_interval", time.Minute),
		verify:   s.Bool("verify_identity", false),
		audience: s.String("identity_audience", "latchkey"),
		state:    state.Dir{Path: env.StateDir, Logger: log},
		log:      log,
		now:      time.Now,
	}
	conf := alimeta.Credentials{
		AccessKeyID:     s.String("access_key", ""),
		AccessKeySecret: s.String("access_secret", ""),
		SecurityToken:   s.String("access_token", ""),
	}
	secretKey := s.String("secret_key", "")
	confRole := s.String("role_name", "")
	certFile := s.String("identity_cert_file", "")
	endpoint := s.String("metadata_endpoint", "")
	// at prefixes an error about key with the key's position.
	at := func(key string) string { return fmt.Sprintf("%s: method \"alicloud\"", cfg.KeyAt(key)) }
	for _, u := range unsupported {
		if _, ok := cfg.Config[u.key]; ok {
			return nil, fmt.Errorf("%s: config key %q: not supported by latchkey (use the ECS RAM role or access_key/access_secret)", at(u.key), u.key)
		}
	}
	if err := s.Err(); err != nil {
		return nil, err
	}
	for _, u := range unsupported {
		if getenv(u.env) != "" {
			return nil, fmt.Errorf("%s: environment variable %s: not supported by latchkey (use the ECS RAM role or access keys)", cfg.At()+": method \"alicloud\"", u.env)
		}
	}
	if !auth.RegionName(m.region) { // it becomes the STS host name
		return nil, fmt.Errorf("%s: config key \"region\": %q is not a region id such as cn-hangzhou", at("region"), m.region)
	}
	if m.poll <= 0 {
		return nil, fmt.Errorf("%s: config key \"credential_poll_interval\": want a positive number of seconds", at("credential_poll_interval"))
	}
	if secretKey != "" {
		if conf.AccessKeySecret != "" {
			return nil, fmt.Errorf("%s: config keys \"access_secret\" and \"secret_key\" are the same setting; give one", at("secret_key"))
		}
		conf.AccessKeySecret = secretKey
	}
	if (conf.AccessKeyID == "") != (conf.AccessKeySecret == "") {
		return nil, fmt.Errorf("%s: config keys \"access_key\" and \"access_secret\" go together", at(cfg.FirstGiven("access_key", "access_secret", "secret_key")))
	}
	if conf.SecurityToken != "" && conf.AccessKeyID == "" {
		return nil, fmt.Errorf("%s: config key \"access_token\" needs \"access_key\" and \"access_secret\"", at("access_token"))
	}
	// Vault Agent's chain: environment, then config, then instance metadata;
	// within each, a key pair wins over a role name.
	envKeys := alimeta.Credentials{
		AccessKeyID:     getenv("ALICLOUD_ACCESS_KEY"),
		AccessKeySecret: getenv("ALICLOUD_SECRET_KEY"),
		SecurityToken:   getenv("ALICLOUD_ACCESS_KEY_STS_TOKEN"),
	}
	switch {
	case envKeys.AccessKeyID != "" && envKeys.AccessKeySecret != "":
		m.static, m.credsFrom = envKeys, "ALICLOUD_ACCESS_KEY in the environment"
	case getenv("ALICLOUD_ROLE_NAME") != "":
		m.ramRole, m.credsFrom = getenv("ALICLOUD_ROLE_NAME"), "the ECS RAM role named by ALICLOUD_ROLE_NAME"
	case conf.AccessKeyID != "":
		m.static, m.credsFrom = conf, "access_key in the config"
	case confRole != "":
		m.ramRole, m.credsFrom = confRole, "the ECS RAM role named by role_name"
	default:
		m.credsFrom = "the ECS RAM role of the instance"
	}
	if certFile != "" {
		// ReadRegular: a FIFO there is refused, not waited on for ever.
		b, err := atomicfile.ReadRegular(certFile)
		if err != nil {
			return nil, fmt.Errorf("%s: config key \"identity_cert_file\": %w", at("identity_cert_file"), err)
		}
		if m.cert, err = alimeta.ParseCert(b); err != nil {
			return nil, fmt.Errorf("%s: config key \"identity_cert_file\": %s: %w", at("identity_cert_file"), certFile, err)
		}
	}
	meta, err := alimeta.New(endpoint)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", at("metadata_endpoint"), err)
	}
	m.meta = meta
	return m, nil
}

// Describe implements auth.Method.
func (m *Method) Describe() string {
	m.descMu.Lock()
	instance := m.instance
	m.descMu.Unlock()
	d := fmt.Sprintf("alicloud role %q (%s)", m.role, m.region)
	if instance != "" {
		d += " instance " + instance
	}
	return d
}

// Login implements auth.Method.
func (m *Method) Login(ctx context.Context, client *vaultclient.Client) (*vaultclient.Secret, error) {
	if m.verify {
		if err := m.verifyIdentity(ctx); err != nil {
			return nil, err
		}
	}
	creds, err := m.credentials(ctx)
	if err != nil {
		return nil, err
	}
	u, err := m.signedURL(creds)
	if err != nil {
		return nil, err
	}
	data := map[string]any{
		"role":                     m.role,
		"identity_request_url":     base64.StdEncoding.EncodeToString([]byte(u)),
		"identity_request_headers": base64.StdEncoding.EncodeToString([]byte(`{"Accept":["application/json"],"Content-Type":["application/x-www-form-urlencoded"]}`)),
	}
	secret, err := client.Write(ctx, strings.Trim(m.mount, "/")+"/login", data)
	// STS echoes its string to sign (security token included) in a refusal.
	return secret, redact.Error(err, redact.Mark, creds.SecurityToken, creds.AccessKeySecret)
}

// signedURL builds the GetCallerIdentity request Vault replays (as POST).
func (m *Method) signedURL(c alimeta.Credentials) (string, error) {
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	p := map[string]string{
		"AccessKeyId": c.AccessKeyID, "Action": "GetCallerIdentity", "Format": "JSON",
		"RegionId": m.region, "SignatureMethod": "HMAC-SHA1", "SignatureNonce": hex.EncodeToString(nonce),
		"SignatureType": "", "SignatureVersion": "1.0",
		"Timestamp": m.now().UTC().Format("2006-01-02T15:04:05Z"), "Version": "2015-04-01",
	}
	if c.SecurityToken != "" {
		p["SecurityToken"] = c.SecurityToken
	}
	sig := Sign("POST", p, c.AccessKeySecret)
	return "https://sts." + m.region + ".aliyuncs.com/?" + Canonical(p) + "&Signature=" + popEscape(sig), nil
}

// credentials returns static credentials, or the RAM role's, fetched again
// every credential_poll_interval and before they expire.
func (m *Method) credentials(ctx context.Context) (alimeta.Credentials, error) {
	if m.static.AccessKeyID != "" {
		return m.static, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	fresh := !m.fetched.IsZero() && now.Sub(m.fetched) < m.poll &&
		(m.creds.Expiration.IsZero() || m.creds.Expiration.Sub(now) > 5*time.Minute)
	if fresh {
		return m.creds, nil
	}
	c, err := m.meta.RoleCredentials(ctx, m.ramRole)
	if err != nil {
		return alimeta.Credentials{}, fmt.Errorf("alicloud credentials from %s: %w", m.credsFrom, err)
	}
	m.creds, m.fetched = c, now
	return c, nil
}

// verifyIdentity checks the identity document against the pinned
// certificate and keys the state directory by the verified instance id.
func (m *Method) verifyIdentity(ctx context.Context) error {
	id, err := m.meta.VerifiedIdentity(ctx, m.audience, m.cert)
	if err != nil {
		return fmt.Errorf("refusing to log in: %w", err)
	}
	m.descMu.Lock()
	m.instance = id.InstanceID
	m.descMu.Unlock()
	if id.RegionID != m.region {
		// Vault checks the STS answer, not the region; say why a login may
		// fail on a misconfigured image.
		m.log.Warn("the instance's region differs from the configured region",
			zap.String("instance_region", id.RegionID), zap.String("region", m.region))
	}
	var rec IdentityRecord
	found, err := m.state.Load("alicloud-identity", &rec)
	if err != nil {
		m.log.Warn("identity state unreadable; starting fresh", zap.Error(err))
	}
	if found && rec.InstanceID != id.InstanceID {
		m.log.Warn("state belongs to another instance (baked into the image?); discarding it",
			zap.String("state_instance_id", rec.InstanceID), zap.String("instance_id", id.InstanceID))
		found = false
	}
	if !found {
		rec = IdentityRecord{InstanceID: id.InstanceID, RegionID: id.RegionID, AccountID: id.AccountID, Verified: m.now().UTC()}
		if err := m.state.Save("alicloud-identity", rec); err != nil {
			return err
		}
	}
	return nil
}
