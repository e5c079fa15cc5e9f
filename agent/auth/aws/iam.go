package aws

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/hashicorp/vault/api"
)

// iamBody is the STS request Vault replays.
const iamBody = "Action=GetCallerIdentity&Version=2011-06-15"

// stsURL is the STS endpoint for region, as Vault's own client picks it:
// the global endpoint for us-east-1, the regional one elsewhere.
func stsURL(region string) string {
	if region == "" || region == "us-east-1" {
		return "https://sts.amazonaws.com/"
	}
	return "https://sts." + region + ".amazonaws.com/"
}

// loginIAM signs sts:GetCallerIdentity with the instance's credentials and
// sends it to Vault, which replays it to learn the caller's IAM identity.
func (m *Method) loginIAM(ctx context.Context, client *api.Client) (*api.Secret, error) {
	creds, err := m.credentials(ctx)
	if err != nil {
		return nil, err
	}
	u := stsURL(m.region)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(iamBody))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	if m.headerValue != "" {
		// Binds the signed request to this Vault (iam_server_id_header_value).
		req.Header.Set("X-Vault-AWS-IAM-Server-ID", m.headerValue)
	}
	sum := sha256.Sum256([]byte(iamBody))
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "sts", m.signingRegion(), time.Now()); err != nil {
		return nil, fmt.Errorf("sign sts:GetCallerIdentity: %w", err)
	}
	headers, err := json.Marshal(req.Header)
	if err != nil {
		return nil, err
	}
	data := map[string]any{
		"iam_http_request_method": http.MethodPost,
		"iam_request_url":         base64.StdEncoding.EncodeToString([]byte(u)),
		"iam_request_body":        base64.StdEncoding.EncodeToString([]byte(iamBody)),
		"iam_request_headers":     base64.StdEncoding.EncodeToString(headers),
	}
	if m.role != "" {
		data["role"] = m.role
	}
	return client.Logical().WriteWithContext(ctx, strings.Trim(m.mount, "/")+"/login", data)
}

func (m *Method) signingRegion() string {
	if m.region == "" {
		return "us-east-1"
	}
	return m.region
}

// credentials returns static keys (config, then the environment), else the
// instance profile's from IMDS, fetched again before they expire.
func (m *Method) credentials(ctx context.Context) (sdkaws.Credentials, error) {
	if m.static.AccessKeyID != "" {
		return m.static, nil
	}
	if m.profile.AccessKeyID != "" && (!m.profile.CanExpire || time.Until(m.profile.Expires) > 5*time.Minute) {
		return m.profile, nil
	}
	role, err := m.meta.Metadata(ctx, "iam/security-credentials/")
	if err != nil {
		return sdkaws.Credentials{}, fmt.Errorf("instance profile: %w", err)
	}
	role = strings.TrimSpace(strings.SplitN(strings.TrimSpace(role), "\n", 2)[0])
	if role == "" {
		return sdkaws.Credentials{}, fmt.Errorf("the instance has no instance profile")
	}
	body, err := m.meta.Metadata(ctx, "iam/security-credentials/"+role)
	if err != nil {
		return sdkaws.Credentials{}, fmt.Errorf("instance profile %s: %w", role, err)
	}
	var v struct {
		Code            string
		AccessKeyID     string `json:"AccessKeyId"`
		SecretAccessKey string
		Token           string
		Expiration      string
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(body)))
	if err := dec.Decode(&v); err != nil {
		return sdkaws.Credentials{}, fmt.Errorf("instance profile %s: %w", role, err)
	}
	if v.Code != "" && v.Code != "Success" {
		return sdkaws.Credentials{}, fmt.Errorf("instance profile %s: code %q", role, v.Code)
	}
	exp, err := time.Parse(time.RFC3339, v.Expiration)
	m.profile = sdkaws.Credentials{AccessKeyID: v.AccessKeyID, SecretAccessKey: v.SecretAccessKey, SessionToken: v.Token,
		CanExpire: err == nil, Expires: exp, Source: "ec2 instance profile " + role}
	return m.profile, nil
}
