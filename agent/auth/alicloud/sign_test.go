package alicloud

import (
	"testing"

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
