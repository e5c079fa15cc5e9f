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
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/api"
	"go.uber.org/zap"

	"github.com/latchkey/latchkey/agent/auth"
	"github.com/latchkey/latchkey/agent/state"
	"github.com/latchkey/latchkey/internal/cloud/alimeta"
)

// Method logs in with the alicloud auth method.
type Method struct {
	mount, role, region string
	// static credentials (config or environment); empty = the RAM role.
	static   alimeta.Credentials
	ramRole  string
	poll     time.Duration
	verify   bool
	audience string
	cert     *x509.Certificate
	meta     *alimeta.Client
	state    state.Dir
	log      *zap.Logger
	now      func() time.Time

	mu       sync.Mutex
	creds    alimeta.Credentials
	fetched  time.Time
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

// New reads cfg: role and region (required), access_key/access_secret/
// access_token (static credentials), ram_role, credential_poll_interval,
// and latchkey's verify_identity, identity_audience, identity_cert_file,
// metadata_endpoint.
func New(cfg auth.MethodConfig, env auth.Env) (auth.Method, error) {
	s := auth.NewSettings(cfg)
	getenv := env.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	m := &Method{
		mount:    cfg.MountPath,
		role:     s.Required("role"),
		region:   s.Required("region"),
		ramRole:  s.String("ram_role", ""),
		poll:     s.Duration("credential_poll_interval", time.Minute),
		verify:   s.Bool("verify_identity", false),
		audience: s.String("identity_audience", "latchkey"),
		state:    state.Dir{Path: env.StateDir},
		log:      env.Logger,
		now:      time.Now,
	}
	m.static = alimeta.Credentials{
		AccessKeyID:     s.String("access_key", getenv("ALICLOUD_ACCESS_KEY")),
		AccessKeySecret: s.String("access_secret", getenv("ALICLOUD_SECRET_KEY")),
		SecurityToken:   s.String("access_token", getenv("ALICLOUD_SECURITY_TOKEN")),
	}
	certFile := s.String("identity_cert_file", "")
	endpoint := s.String("metadata_endpoint", "")
	if err := s.Err(); err != nil {
		return nil, err
	}
	at := fmt.Sprintf("%s:%d: method \"alicloud\"", cfg.File, cfg.Line)
	if (m.static.AccessKeyID == "") != (m.static.AccessKeySecret == "") {
		return nil, fmt.Errorf("%s: access_key and access_secret go together", at)
	}
	if certFile != "" {
		b, err := os.ReadFile(certFile)
		if err != nil {
			return nil, fmt.Errorf("%s: identity_cert_file: %w", at, err)
		}
		if m.cert, err = alimeta.ParseCert(b); err != nil {
			return nil, fmt.Errorf("%s: identity_cert_file %s: %w", at, certFile, err)
		}
	}
	meta, err := alimeta.New(endpoint)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", at, err)
	}
	m.meta = meta
	return m, nil
}

// Describe implements auth.Method.
func (m *Method) Describe() string {
	d := fmt.Sprintf("alicloud role %q (%s)", m.role, m.region)
	if m.instance != "" {
		d += " instance " + m.instance
	}
	return d
}

// Login implements auth.Method.
func (m *Method) Login(ctx context.Context, client *api.Client) (*api.Secret, error) {
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
	return client.Logical().WriteWithContext(ctx, strings.Trim(m.mount, "/")+"/login", data)
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
		return alimeta.Credentials{}, fmt.Errorf("alicloud credentials: %w", err)
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
	m.instance = id.InstanceID
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
