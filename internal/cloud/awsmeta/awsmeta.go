// Package awsmeta reads the EC2 instance metadata service (IMDS) through the
// AWS SDK v2 IMDS client: IMDSv2 session tokens, retries, the endpoint
// rules of the SDKs.
package awsmeta

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
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
	Getenv  func(string) string
}

// Client reads instance metadata.
type Client struct {
	c        *imds.Client
	Endpoint string
}

// New returns a client; it does not contact IMDS. It returns an error for
// an endpoint that is not an http(s) URL.
func New(o Options) (*Client, error) {
	ep := o.Endpoint
	if ep == "" && o.Getenv != nil {
		ep = o.Getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT")
		if ep == "" && strings.EqualFold(o.Getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE"), "IPv6") {
			ep = EndpointIPv6
		}
	}
	if ep == "" {
		ep = EndpointIPv4
	}
	if u, err := url.Parse(ep); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("metadata endpoint %q: want http://host[:port]", ep)
	}
	fallback := aws.FalseTernary
	if o.AllowV1 {
		fallback = aws.TrueTernary
	}
	c := imds.New(imds.Options{Endpoint: strings.TrimRight(ep, "/"), EnableFallback: fallback})
	return &Client{c: c, Endpoint: ep}, nil
}

// Dynamic reads /latest/dynamic/<path>.
func (c *Client) Dynamic(ctx context.Context, path string) (string, error) {
	out, err := c.c.GetDynamicData(ctx, &imds.GetDynamicDataInput{Path: path})
	if err != nil {
		return "", fmt.Errorf("instance metadata %s: %w", path, err)
	}
	defer out.Content.Close()
	b, err := io.ReadAll(io.LimitReader(out.Content, 1<<20))
	if err != nil {
		return "", fmt.Errorf("instance metadata %s: %w", path, err)
	}
	return string(b), nil
}

// Metadata reads /latest/meta-data/<path>.
func (c *Client) Metadata(ctx context.Context, path string) (string, error) {
	out, err := c.c.GetMetadata(ctx, &imds.GetMetadataInput{Path: path})
	if err != nil {
		return "", fmt.Errorf("instance metadata %s: %w", path, err)
	}
	defer out.Content.Close()
	b, err := io.ReadAll(io.LimitReader(out.Content, 1<<20))
	if err != nil {
		return "", fmt.Errorf("instance metadata %s: %w", path, err)
	}
	return string(b), nil
}
