package alicloud

// Alibaba Cloud's RPC signature (SignatureVersion 1.0, HMAC-SHA1), written
// here rather than imported: the SDKs that implement it
// (alibaba-cloud-sdk-go, whose sts package Vault Agent uses, and
// credentials-go with the tea/darabonba runtime) bring their own HTTP
// stacks and large dependency trees for twenty lines of documented
// arithmetic. Checked three ways: Alibaba's documented example
// (sign_test.go), the fake STS recomputing it independently, and Vault's
// alicloud backend replaying the request.

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"net/url"
	"sort"
	"strings"
)

// popEscape is Alibaba Cloud's RPC percent-encoding: RFC 3986 unreserved
// characters stay, everything else is %XX (space is %20, not +).
func popEscape(s string) string {
	e := url.QueryEscape(s)
	e = strings.ReplaceAll(e, "+", "%20")
	e = strings.ReplaceAll(e, "*", "%2A")
	return strings.ReplaceAll(e, "%7E", "~")
}

// Canonical returns the sorted, encoded query string of params.
func Canonical(params map[string]string) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = popEscape(k) + "=" + popEscape(params[k])
	}
	return strings.Join(parts, "&")
}

// Sign returns the RPC-style signature (HMAC-SHA1, SignatureVersion 1.0)
// of a request with method and params (Signature excluded):
// base64(HMAC-SHA1(secret+"&", method+"&%2F&"+escape(canonical))).
func Sign(method string, params map[string]string, secret string) string {
	sts := method + "&" + popEscape("/") + "&" + popEscape(Canonical(params))
	m := hmac.New(sha1.New, []byte(secret+"&"))
	m.Write([]byte(sts))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}
