package alicloud

import (
	"net/url"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/cloud/alimeta"
)

var pinned = alimeta.PinnedCert

// Alibaba Cloud's documented RPC signature example (DescribeRegions,
// secret "testsecret", GET): the signature is OLeaidS1JvxuMvnyHOwuJ+uX5qY=.
// The STS fake checks the POST form used by Vault independently.
func TestSignDocumentedExample(t *testing.T) {
	params := map[string]string{
		"AccessKeyId": "testid", "Action": "DescribeRegions", "Format": "XML",
		"SignatureMethod": "HMAC-SHA1", "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
		"SignatureVersion": "1.0", "Timestamp": "2016-02-23T12:46:24Z", "Version": "2014-05-26",
	}
	if got := Sign("GET", params, "testsecret"); got != "OLeaidS1JvxuMvnyHOwuJ+uX5qY=" {
		t.Errorf("Sign = %s", got)
	}
}

func TestPopEscape(t *testing.T) {
	tests := map[string]string{"a b": "a%20b", "a*b": "a%2Ab", "a~b": "a~b", "2016-02-23T12:46:24Z": "2016-02-23T12%3A46%3A24Z", "/": "%2F"}
	for in, want := range tests {
		if got := popEscape(in); got != want {
			t.Errorf("popEscape(%q) = %q, want %q", in, got, want)
		}
	}
}

// The URL Vault replays: https, sts.<region>.aliyuncs.com, the parameters
// Vault's alicloud backend requires, and a signature over the POST form.
func TestSignedURL(t *testing.T) {
	m := &Method{region: "cn-shanghai", now: func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }}
	raw, err := m.signedURL(alimeta.Credentials{AccessKeyID: "STS.id", AccessKeySecret: "sec", SecurityToken: "tok+/="})
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	want := map[string]string{
		"AccessKeyId": "STS.id", "Action": "GetCallerIdentity", "Format": "JSON", "RegionId": "cn-shanghai",
		"SecurityToken": "tok+/=", "SignatureMethod": "HMAC-SHA1", "SignatureType": "", "SignatureVersion": "1.0",
		"Timestamp": "2026-01-02T03:04:05Z", "Version": "2015-04-01",
	}
	if u.Scheme != "https" || u.Host != "sts.cn-shanghai.aliyuncs.com" || u.Path != "/" {
		t.Errorf("URL %s", raw)
	}
	params := map[string]string{}
	for k, v := range q {
		if k != "Signature" {
			params[k] = v[0]
		}
	}
	for k, v := range want {
		if params[k] != v {
			t.Errorf("%s = %q, want %q", k, params[k], v)
		}
	}
	if len(params["SignatureNonce"]) < 16 {
		t.Errorf("SignatureNonce %q", params["SignatureNonce"])
	}
	if got := q.Get("Signature"); got != Sign("POST", params, "sec") {
		t.Errorf("Signature %q does not sign the POST form", got)
	}
}
