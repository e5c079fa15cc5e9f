package alimeta_test

import (
	"context"
	"encoding/base64"
	"encoding/pem"
	"net/http"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/internal/cloud/alimeta"
	"github.com/latchkey/latchkey/test/fakes/alifake"
)

var instance = alifake.Instance{AccountID: "5123456789012345", InstanceID: "i-bp1meta", RegionID: "cn-shanghai", RAMRole: "app-role"}

func setup(t *testing.T) (*alifake.Cloud, *alimeta.Client) {
	t.Helper()
	cloud, err := alifake.New(instance, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cloud.Close)
	c, err := alimeta.New(cloud.Metadata.URL)
	if err != nil {
		t.Fatal(err)
	}
	return cloud, c
}

func TestHardenedMode(t *testing.T) {
	cloud, c := setup(t)
	// Without the session token the service refuses (hardened mode) ...
	resp, err := http.Get(cloud.Metadata.URL + "/latest/dynamic/instance-identity/document")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("plain GET: HTTP %d", resp.StatusCode)
	}
	// ... and the client fetches one first.
	ctx := context.Background()
	doc, err := c.Get(ctx, "/latest/dynamic/instance-identity/document")
	if err != nil || !strings.Contains(doc, instance.InstanceID) {
		t.Fatalf("document %q: %v", doc, err)
	}
	for _, role := range []string{"", instance.RAMRole} {
		creds, err := c.RoleCredentials(ctx, role)
		if err != nil || creds.AccessKeyID == "" || creds.AccessKeySecret == "" || creds.SecurityToken == "" || creds.Expiration.IsZero() {
			t.Fatalf("RoleCredentials(%q) = %+v, %v", role, creds, err)
		}
	}
	if _, err := c.RoleCredentials(ctx, "other-role"); err == nil {
		t.Fatal("credentials of a role the instance does not have")
	}
	// An expired session token is replaced transparently.
	cloud.ForgetTokens()
	if _, err := c.Get(ctx, "/latest/dynamic/instance-identity/document"); err != nil {
		t.Fatalf("after the token expired: %v", err)
	}
}

// The metadata service is reached directly even when a proxy is set (Go
// never proxies loopback, so the transport itself is checked).
func TestNoProxy(t *testing.T) {
	c, err := alimeta.New("")
	if err != nil {
		t.Fatal(err)
	}
	tr, ok := c.HTTP.Transport.(*http.Transport)
	if !ok || tr.Proxy != nil {
		t.Fatalf("transport %T uses a proxy function", c.HTTP.Transport)
	}
}

func TestVerifiedIdentity(t *testing.T) {
	cloud, c := setup(t)
	ctx := context.Background()
	id, err := c.VerifiedIdentity(ctx, "vault.example.com", cloud.Identity.Cert)
	if err != nil {
		t.Fatal(err)
	}
	if id.InstanceID != instance.InstanceID || id.RegionID != instance.RegionID || id.AccountID != instance.AccountID {
		t.Errorf("identity = %+v", id)
	}
	if _, err := c.VerifiedIdentity(ctx, "vault.example.com", nil); err == nil || !strings.Contains(err.Error(), "pinned") {
		t.Errorf("the pinned Alibaba certificate accepted the fake's signature: %v", err)
	}
	cloud.Spoof(true)
	if _, err := c.VerifiedIdentity(ctx, "vault.example.com", cloud.Identity.Cert); err == nil {
		t.Error("a document signed by another key verified")
	}
}

func TestVerify(t *testing.T) {
	cloud, c := setup(t)
	ctx := context.Background()
	doc, err := c.Get(ctx, "/latest/dynamic/instance-identity/document")
	if err != nil {
		t.Fatal(err)
	}
	sig, err := c.Get(ctx, "/latest/dynamic/instance-identity/pkcs7?audience=aud-1")
	if err != nil {
		t.Fatal(err)
	}
	der, err := base64.StdEncoding.DecodeString(sig)
	if err != nil {
		t.Fatal(err)
	}
	armoured := string(pem.EncodeToMemory(&pem.Block{Type: "PKCS7", Bytes: der}))
	cert := cloud.Identity.Cert
	tests := []struct {
		name    string
		content []byte
		sig     string
		ok      bool
	}{
		{"base64", alimeta.WithAudience(doc, "aud-1"), sig, true},
		{"PEM armour", alimeta.WithAudience(doc, "aud-1"), armoured, true},
		{"wrapped base64 with a newline", alimeta.WithAudience(doc, "aud-1"), sig[:64] + "\n" + sig[64:] + "\n", true},
		{"other audience", alimeta.WithAudience(doc, "aud-2"), sig, false},
		{"no audience", []byte(doc), sig, false},
		{"altered document", alimeta.WithAudience(strings.Replace(doc, instance.InstanceID, "i-bp1other", 1), "aud-1"), sig, false},
		{"garbage", alimeta.WithAudience(doc, "aud-1"), "not base64!", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := alimeta.Verify(tc.content, tc.sig, cert)
			if (err == nil) != tc.ok {
				t.Fatalf("Verify: %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestWithAudience(t *testing.T) {
	got := string(alimeta.WithAudience(`{"instance-id":"i-1"}`+"\n", `a"b`))
	if want := `{"instance-id":"i-1","audience":"a\"b"}`; got != want {
		t.Errorf("WithAudience = %s, want %s", got, want)
	}
}
