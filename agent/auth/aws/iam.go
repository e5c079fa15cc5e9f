package aws

import (
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
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/latchkey/latchkey/internal/cloud/awsmeta"
	"github.com/latchkey/latchkey/internal/redact"
	"github.com/latchkey/latchkey/internal/vaultclient"
)

// iamBody is the STS request Vault replays.
const iamBody = "Action=GetCallerIdentity&Version=2011-06-15"

// legacyGlobal are the regions for which aws-sdk-go v1 — Vault Agent's
// SDK — sends STS calls to the global endpoint unless
// AWS_STS_REGIONAL_ENDPOINTS=regional (aws/endpoints/legacy_regions.go).
var legacyGlobal = map[string]bool{
	"ap-northeast-1": true, "ap-south-1": true, "ap-southeast-1": true, "ap-southeast-2": true,
	"ca-central-1": true, "eu-central-1": true, "eu-north-1": true, "eu-west-1": true,
	"eu-west-2": true, "eu-west-3": true, "sa-east-1": true, "us-east-1": true,
	"us-east-2": true, "us-west-1": true, "us-west-2": true,
}

// stsURL is the STS URL Vault Agent signs for region, so that a Vault
// server set up for Vault Agent (sts_endpoint, iam_server_id_header_value)
// accepts latchkey's request unchanged. The signature is always scoped to
// region itself, as Vault Agent's does.
func stsURL(region string, regional bool) string {
	if !regional && legacyGlobal[region] {
		return "https://sts.amazonaws.com/"
	}
	host := "sts." + region + ".amazonaws.com"
	if strings.HasPrefix(region, "cn-") {
		host += ".cn"
	}
	return "https://" + host + "/"
}

// credentialChain returns the credentials Vault Agent would use (go-secure-stdlib
// awsutil: static keys from the config, then the environment, then the
// instance profile) and where they come from. The shared credentials file
// and web identity are not read: latchkey runs on instances.
func credentialChain(static sdkaws.Credentials, getenv func(string) string, meta *awsmeta.Client) (sdkaws.CredentialsProvider, string) {
	if static.AccessKeyID != "" {
		return credentials.NewStaticCredentialsProvider(static.AccessKeyID, static.SecretAccessKey, static.SessionToken), "access_key in the config"
	}
	id := firstOf(getenv, "AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY")
	secret := firstOf(getenv, "AWS_SECRET_ACCESS_KEY", "AWS_SECRET_KEY")
	if id != "" && secret != "" {
		return credentials.NewStaticCredentialsProvider(id, secret, getenv("AWS_SESSION_TOKEN")), "AWS_ACCESS_KEY_ID in the environment"
	}
	return meta.InstanceProfile(), "the instance profile (" + meta.Endpoint + ")"
}

func firstOf(getenv func(string) string, names ...string) string {
	for _, n := range names {
		if v := getenv(n); v != "" {
			return v
		}
	}
	return ""
}

// loginIAM signs sts:GetCallerIdentity with the instance's credentials and
// sends it to Vault, which replays it to learn the caller's IAM identity.
func (m *Method) loginIAM(ctx context.Context, client *vaultclient.Client) (*vaultclient.Secret, error) {
	creds, err := m.creds.Retrieve(ctx)
	if err != nil {
		return nil, fmt.Errorf("aws credentials from %s: %w", m.credsFrom, err)
	}
	u := m.stsURL
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
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "sts", m.region, time.Now()); err != nil {
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
		"role":                    m.role,
	}
	secret, err := client.Write(ctx, strings.Trim(m.mount, "/")+"/login", data)
	// STS echoes its canonical request (session token included) in a refusal.
	return secret, redact.Error(err, redact.Mark, creds.SessionToken, creds.SecretAccessKey)
}
