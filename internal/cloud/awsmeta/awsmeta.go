// Package awsmeta reads the EC2 instance metadata service (IMDS) through the
// AWS SDK v2 IMDS client: IMDSv2 session tokens, retries, the endpoint
// rules of the SDKs.
package awsmeta

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
)

// Default endpoints, IPv4 and IPv6.
const (
	EndpointIPv4 = "http://169.254.169.254"
	EndpointIPv6 = "http://[fd00:ec2::254]"
)

// Options choose the endpoint and IMDSv1 fallback.
type Options struct {
	// Endpoint overrides the base URL; "" follows the SDKs: the
	// AWS_EC2_METADATA_SERVICE_ENDPOINT variable, else
	// AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE=IPv6, else 169.254.169.254.
	Endpoint string
	// AllowV1 lets the client fall back to IMDSv1 when the token request
	// fails. Off by default: instances should require IMDSv2.
	AllowV1 bool
	// Getenv reads the environment (nil: nothing is set). The SDK would
	// read os.Getenv itself; every variable it honours is read here instead.
	Getenv func(string) string
}

// Client reads instance metadata.
type Client struct {
	c        *imds.Client
	Endpoint string
}

// New returns a client; it does not contact IMDS. It returns an error for
// an endpoint that is not an http(s) URL, and for an endpoint mode other
// than IPv4 or IPv6. AWS_EC2_METADATA_DISABLED=true disables the client as
// it does in the SDKs: every request then fails.
func New(o Options) (*Client, error) {
	getenv := o.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	ep := o.Endpoint
	if ep == "" {
		ep = getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT")
	}
	if ep == "" {
		switch mode := getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE"); {
		case strings.EqualFold(mode, "IPv6"):
			ep = EndpointIPv6
		case mode == "" || strings.EqualFold(mode, "IPv4"):
			ep = EndpointIPv4
		default:
			return nil, fmt.Errorf("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE=%q: want IPv4 or IPv6", mode)
		}
	}
	if u, err := url.Parse(ep); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("metadata endpoint %q: want http://host[:port] (IPv6: http://[fd00:ec2::254])", ep)
	}
	fallback := aws.FalseTernary
	if o.AllowV1 {
		fallback = aws.TrueTernary
	}
	enable := imds.ClientEnabled
	if strings.EqualFold(getenv("AWS_EC2_METADATA_DISABLED"), "true") {
		enable = imds.ClientDisabled
	}
	// Never through a proxy: IMDS is link-local, and a proxy in the path
	// would see the instance's credentials (the SDK's default client would
	// honour HTTP_PROXY). The SDK still applies its short IMDS timeouts.
	direct := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) { tr.Proxy = nil })
	c := imds.New(imds.Options{Endpoint: strings.TrimRight(ep, "/"), EnableFallback: fallback, ClientEnableState: enable, HTTPClient: direct})
	return &Client{c: c, Endpoint: ep}, nil
}

// InstanceProfile returns the credentials of the instance profile, read
// from IMDS by the SDK's provider and cached until five minutes before they
// expire (IMDS rotates them well before that).
func (c *Client) InstanceProfile() aws.CredentialsProvider {
	p := ec2rolecreds.New(func(o *ec2rolecreds.Options) { o.Client = c.c })
	return aws.NewCredentialsCache(p, func(o *aws.CredentialsCacheOptions) { o.ExpiryWindow = 5 * time.Minute })
}

// tokenHint explains the usual reason an IMDSv2 token cannot be had.
const tokenHint = " (no IMDSv2 session token: in a container the instance's metadata hop limit must be at least 2 " +
	"(HttpPutResponseHopLimit); allow_imdsv1 = true permits IMDSv1)"

// wrap adds the path, and a hint when the session token was the problem.
func wrap(path string, err error) error {
	if strings.Contains(err.Error(), "failed to get API token") {
		return fmt.Errorf("instance metadata %s: %w%s", path, err, tokenHint)
	}
	return fmt.Errorf("instance metadata %s: %w", path, err)
}

// Dynamic reads /latest/dynamic/<path>.
func (c *Client) Dynamic(ctx context.Context, path string) (string, error) {
	out, err := c.c.GetDynamicData(ctx, &imds.GetDynamicDataInput{Path: path})
	if err != nil {
		return "", wrap(path, err)
	}
	return readBody(path, out.Content)
}

// Metadata reads /latest/meta-data/<path>.
func (c *Client) Metadata(ctx context.Context, path string) (string, error) {
	out, err := c.c.GetMetadata(ctx, &imds.GetMetadataInput{Path: path})
	if err != nil {
		return "", wrap(path, err)
	}
	return readBody(path, out.Content)
}

// readBody reads (at most 1 MiB of) an IMDS answer and closes it.
func readBody(path string, body io.ReadCloser) (string, error) {
	defer body.Close()
	b, err := io.ReadAll(io.LimitReader(body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("instance metadata %s: %w", path, err)
	}
	return string(b), nil
}
