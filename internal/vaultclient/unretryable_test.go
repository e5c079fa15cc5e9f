package vaultclient

import (
	"regexp"
	"testing"
)

// unretryable accepts exactly what retryablehttp's patterns matched.
func TestUnretryable(t *testing.T) {
	res := []*regexp.Regexp{
		regexp.MustCompile(`stopped after \d+ redirects\z`),
		regexp.MustCompile(`unsupported protocol scheme`),
		regexp.MustCompile(`invalid header`),
		regexp.MustCompile(`certificate is not trusted`),
	}
	for _, msg := range []string{
		`Get "https://v:8200/v1/x": stopped after 10 redirects`,
		`Get "https://v:8200/v1/x": stopped after 1 redirects`,
		`stopped after 10 redirects`,
		`Get "x": stopped after  redirects`,
		`Get "x": stopped after 10 redirects.`,
		`Get "x": stopped after 10 redirects\n`,
		`Get "x": stopped after x10 redirects`,
		`Get "x": stopped after ١٠ redirects`,
		` redirects`,
		`Get "ftp://v/x": unsupported protocol scheme "ftp"`,
		`net/http: invalid header field value for "X-Vault-Token"`,
		`Get "https://v/x": tls: failed to verify certificate: x509: certificate is not trusted`,
		`Get "https://v/x": dial tcp 10.0.0.1:8200: connect: connection refused`,
		`Get "https://v/x": EOF`,
		``,
	} {
		want := false
		for _, re := range res {
			want = want || re.MatchString(msg)
		}
		if got := unretryable(msg); got != want {
			t.Errorf("unretryable(%q) = %v, want %v", msg, got, want)
		}
	}
}
