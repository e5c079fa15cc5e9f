// Package alimeta reads the Alibaba Cloud ECS instance metadata service in
// hardened mode (a session token on every request): RAM role credentials
// and the instance identity document with its PKCS#7 signature, which it
// verifies against Alibaba Cloud's pinned signing certificate.
package alimeta

import (
	"context"
	"crypto/x509"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/smallstep/pkcs7"
)

// DefaultEndpoint is the ECS metadata service.
const DefaultEndpoint = "http://100.100.100.200"

// tokenTTL is how long a metadata session token lives (seconds).
const tokenTTL = 21600

// pinnedPEM is the self-signed certificate Alibaba Cloud signs instance
// identity documents with. It has no CA constraints, so it is pinned, not
// chain-validated.
//
//go:embed ecs-identity-cert.pem
var pinnedPEM []byte

// PinnedCert returns Alibaba Cloud's identity signing certificate.
func PinnedCert() (*x509.Certificate, error) { return ParseCert(pinnedPEM) }

// ParseCert reads one PEM certificate.
func ParseCert(b []byte) (*x509.Certificate, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("no PEM certificate")
	}
	return x509.ParseCertificate(blk.Bytes)
}

// Client talks to the metadata service.
type Client struct {
	Endpoint string
	HTTP     *http.Client

	mu       sync.Mutex
	token    string
	tokenExp time.Time
}

// New returns a client for endpoint ("" = the ECS default).
func New(endpoint string) (*Client, error) {
	if endpoint == "" {
		endpoint = DefaultEndpoint
	}
	if u, err := url.Parse(endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("metadata endpoint %q: want http://host[:port]", endpoint)
	}
	// Never through a proxy: the metadata service is link-local, and a
	// proxy in the path would see the RAM role's credentials.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	return &Client{Endpoint: strings.TrimRight(endpoint, "/"), HTTP: &http.Client{Timeout: 10 * time.Second, Transport: tr}}, nil
}

func (c *Client) sessionToken(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" && time.Now().Before(c.tokenExp) {
		return c.token, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, c.Endpoint+"/latest/api/token", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("X-aliyun-ecs-metadata-token-ttl-seconds", fmt.Sprint(tokenTTL))
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return "", fmt.Errorf("metadata token: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("metadata token: HTTP %d", resp.StatusCode)
	}
	c.token = strings.TrimSpace(string(b))
	c.tokenExp = time.Now().Add(tokenTTL*time.Second - time.Minute)
	return c.token, nil
}

// Get reads path (e.g. "/latest/meta-data/instance-id") with the session
// token. A 401 (the token expired or the service restarted) is retried once
// with a new token; any other non-200 answer is an error.
func (c *Client) Get(ctx context.Context, path string) (string, error) {
	body, err := c.get(ctx, path)
	if errors.Is(err, errUnauthorized) {
		body, err = c.get(ctx, path)
	}
	return body, err
}

var errUnauthorized = errors.New("HTTP 401")

func (c *Client) get(ctx context.Context, path string) (string, error) {
	tok, err := c.sessionToken(ctx)
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Endpoint+path, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("X-aliyun-ecs-metadata-token", tok)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return "", fmt.Errorf("metadata %s: %w", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("metadata %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		if resp.StatusCode == http.StatusUnauthorized {
			c.mu.Lock()
			c.token = ""
			c.mu.Unlock()
			return "", fmt.Errorf("metadata %s: %w", path, errUnauthorized)
		}
		return "", fmt.Errorf("metadata %s: HTTP %d", path, resp.StatusCode)
	}
	return string(b), nil
}

// Credentials are RAM role credentials.
type Credentials struct {
	AccessKeyID     string
	AccessKeySecret string
	SecurityToken   string
	Expiration      time.Time
}

// RoleCredentials reads the credentials of the instance's RAM role (the
// first role listed when role is "").
func (c *Client) RoleCredentials(ctx context.Context, role string) (Credentials, error) {
	if role == "" {
		list, err := c.Get(ctx, "/latest/meta-data/ram/security-credentials/")
		if err != nil {
			return Credentials{}, err
		}
		role = strings.TrimSpace(strings.SplitN(strings.TrimSpace(list), "\n", 2)[0])
		if role == "" {
			return Credentials{}, fmt.Errorf("the instance has no RAM role")
		}
	}
	body, err := c.Get(ctx, "/latest/meta-data/ram/security-credentials/"+url.PathEscape(role))
	if err != nil {
		return Credentials{}, err
	}
	var v struct {
		AccessKeyID     string `json:"AccessKeyId"`
		AccessKeySecret string
		SecurityToken   string
		Expiration      string
		Code            string
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		return Credentials{}, fmt.Errorf("RAM credentials of %s: %w", role, err)
	}
	if v.Code != "" && v.Code != "Success" {
		return Credentials{}, fmt.Errorf("RAM credentials of %s: code %q", role, v.Code)
	}
	exp, _ := time.Parse(time.RFC3339, v.Expiration)
	return Credentials{AccessKeyID: v.AccessKeyID, AccessKeySecret: v.AccessKeySecret, SecurityToken: v.SecurityToken, Expiration: exp}, nil
}

// Identity is the verified instance identity document.
type Identity struct {
	AccountID  string `json:"owner-account-id"`
	InstanceID string `json:"instance-id"`
	RegionID   string `json:"region-id"`
	ZoneID     string `json:"zone-id"`
	ImageID    string `json:"image-id"`
}

// VerifiedIdentity fetches the identity document and its PKCS#7 signature
// for audience and verifies the signature with cert (nil: the pinned
// Alibaba Cloud certificate). A document not signed by that certificate —
// a spoofed metadata service — is an error.
func (c *Client) VerifiedIdentity(ctx context.Context, audience string, cert *x509.Certificate) (Identity, error) {
	if cert == nil {
		var err error
		if cert, err = PinnedCert(); err != nil {
			return Identity{}, err
		}
	}
	doc, err := c.Get(ctx, "/latest/dynamic/instance-identity/document")
	if err != nil {
		return Identity{}, err
	}
	sig, err := c.Get(ctx, "/latest/dynamic/instance-identity/pkcs7?audience="+url.QueryEscape(audience))
	if err != nil {
		return Identity{}, err
	}
	signed := WithAudience(doc, audience)
	if err := Verify(signed, sig, cert); err != nil {
		return Identity{}, fmt.Errorf("instance identity document: %w", err)
	}
	var id Identity
	if err := json.Unmarshal(signed, &id); err != nil {
		return Identity{}, fmt.Errorf("instance identity document: %w", err)
	}
	if id.InstanceID == "" {
		return Identity{}, fmt.Errorf("instance identity document has no instance-id")
	}
	return id, nil
}

// WithAudience is the byte string Alibaba signs: the document with
// `,"audience":"<A>"` inserted before its final "}".
func WithAudience(doc, audience string) []byte {
	doc = strings.TrimSpace(doc)
	i := strings.LastIndex(doc, "}")
	if i < 0 {
		return []byte(doc)
	}
	a, _ := json.Marshal(audience)
	return []byte(doc[:i] + `,"audience":` + string(a) + doc[i:])
}

// Verify checks a detached PKCS#7 signature (base64, with or without PEM
// armour) over content, made by cert and only cert.
func Verify(content []byte, sig string, cert *x509.Certificate) error {
	sig = strings.TrimSpace(sig)
	if blk, _ := pem.Decode([]byte(sig)); blk != nil {
		sig = base64.StdEncoding.EncodeToString(blk.Bytes)
	}
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(sig), ""))
	if err != nil {
		return fmt.Errorf("signature is not base64: %w", err)
	}
	p7, err := pkcs7.Parse(der)
	if err != nil {
		return fmt.Errorf("signature: %w", err)
	}
	p7.Content = content
	// Only the pinned certificate may have signed: whatever certificates
	// the signature carries are ignored.
	p7.Certificates = []*x509.Certificate{cert}
	if err := p7.Verify(); err != nil {
		return fmt.Errorf("not signed by the pinned certificate (serial %s): %w", cert.SerialNumber.Text(16), err)
	}
	return nil
}
