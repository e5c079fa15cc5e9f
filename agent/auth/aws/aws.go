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
	"fmt"
	"strings"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/hashicorp/vault/api"
	"github.com/smallstep/pkcs7"
	"go.uber.org/zap"

	"github.com/latchkey/latchkey/agent/auth"
	"github.com/latchkey/latchkey/agent/state"
	"github.com/latchkey/latchkey/internal/cloud/awsmeta"
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
	// iam: X-Vault-AWS-IAM-Server-ID, static keys, instance profile cache.
	headerValue string
	static      sdkaws.Credentials
	profile     sdkaws.Credentials

	last Identity // from the last document read, for Describe
}

// New reads cfg as Vault Agent's aws method does: type (ec2 or iam,
// default iam), role, nonce, region, header_value, access_key, secret_key,
// session_token, credential_poll_interval; and latchkey's
// metadata_endpoint and allow_imdsv1.
func New(cfg auth.MethodConfig, env auth.Env) (auth.Method, error) {
	s := auth.NewSettings(cfg)
	m := &Method{
		mount:  cfg.MountPath,
		typ:    s.String("type", "iam"),
		role:   s.String("role", ""),
		nonce:  s.String("nonce", ""),
		region: s.String("region", "us-east-1"),
		state:  state.Dir{Path: env.StateDir},
		log:    env.Logger,
	}
	endpoint := s.String("metadata_endpoint", "")
	allowV1 := s.Bool("allow_imdsv1", false)
	m.headerValue = s.String("header_value", "")
	getenv := env.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	m.static = sdkaws.Credentials{
		AccessKeyID:     s.String("access_key", getenv("AWS_ACCESS_KEY_ID")),
		SecretAccessKey: s.String("secret_key", getenv("AWS_SECRET_ACCESS_KEY")),
		SessionToken:    s.String("session_token", getenv("AWS_SESSION_TOKEN")),
		Source:          "static",
	}
	s.Duration("credential_poll_interval", time.Minute) // credentials are re-read before they expire
	if err := s.Err(); err != nil {
		return nil, err
	}
	if m.typ != "ec2" && m.typ != "iam" {
		return nil, fmt.Errorf("%s:%d: method \"aws\": type %q: want ec2 or iam", cfg.File, cfg.Line, m.typ)
	}
	if (m.static.AccessKeyID == "") != (m.static.SecretAccessKey == "") {
		return nil, fmt.Errorf("%s:%d: method \"aws\": access_key and secret_key go together", cfg.File, cfg.Line)
	}
	if len(m.nonce) > 128 {
		return nil, fmt.Errorf("%s:%d: method \"aws\": nonce is longer than Vault's 128 characters", cfg.File, cfg.Line)
	}
	meta, err := awsmeta.New(awsmeta.Options{Endpoint: endpoint, AllowV1: allowV1, Getenv: getenv})
	if err != nil {
		return nil, fmt.Errorf("%s:%d: method \"aws\": %w", cfg.File, cfg.Line, err)
	}
	m.meta = meta
	return m, nil
}

// Describe implements auth.Method.
func (m *Method) Describe() string {
	d := fmt.Sprintf("aws %s role %q", m.typ, m.role)
	if m.last.InstanceID != "" {
		d += fmt.Sprintf(" (instance %s, %s)", m.last.InstanceID, m.last.Region)
	}
	return d
}

// Login implements auth.Method.
func (m *Method) Login(ctx context.Context, client *api.Client) (*api.Secret, error) {
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
	m.last = id
	nonce, err := m.nonceFor(id)
	if err != nil {
		return nil, err
	}
	data := map[string]any{"pkcs7": doc, "nonce": nonce}
	if m.role != "" {
		data["role"] = m.role
	}
	return client.Logical().WriteWithContext(ctx, strings.Trim(m.mount, "/")+"/login", data)
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

// nonceFor returns the nonce for this instance: the configured one, or the
// one kept in the state directory when it belongs to this instance, or a
// new one saved before it is first used (a crash after a successful login
// must not lose it). State of another instance id is discarded: a golden
// image may carry it, and reusing another instance's nonce is never right.
func (m *Method) nonceFor(id Identity) (string, error) {
	if m.nonce != "" {
		return m.nonce, nil
	}
	name := "aws-ec2-" + strings.NewReplacer("/", "_").Replace(strings.Trim(m.mount, "/"))
	var rec NonceRecord
	found, err := m.state.Load(name, &rec)
	if err != nil {
		m.log.Warn("nonce state unreadable; starting fresh", zap.Error(err))
		found = false
	}
	if found && rec.InstanceID == id.InstanceID && rec.Nonce != "" {
		return rec.Nonce, nil
	}
	if found {
		m.log.Warn("nonce state belongs to another instance (baked into the image, or the instance migrated); discarding it",
			zap.String("state_instance_id", rec.InstanceID), zap.String("instance_id", id.InstanceID))
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	rec = NonceRecord{InstanceID: id.InstanceID, Mount: m.mount, Nonce: hex.EncodeToString(b), Created: time.Now().UTC()}
	if err := m.state.Save(name, rec); err != nil {
		return "", fmt.Errorf("keep the nonce: %w", err)
	}
	m.log.Info("generated a login nonce for this instance and stored it", zap.String("instance_id", id.InstanceID))
	return rec.Nonce, nil
}
