package awsfake

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// A request signed by the SDK's signer verifies; a changed body does not.
func TestVerifySigV4(t *testing.T) {
	body := "Action=GetCallerIdentity&Version=2011-06-15"
	req, _ := http.NewRequest(http.MethodPost, "https://sts.amazonaws.com/", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	req.Header.Set("X-Vault-AWS-IAM-Server-ID", "vault.example.com")
	sum := sha256.Sum256([]byte(body))
	key := [2]string{"secret", "token"}
	creds := sdkaws.Credentials{AccessKeyID: "ASIATEST0001", SecretAccessKey: key[0], SessionToken: key[1]}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "sts", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	// What the server sees.
	in, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1/", nil)
	in.Host = "sts.amazonaws.com"
	in.Header = req.Header.Clone()
	in.Header.Set("Accept-Encoding", "gzip")
	in.Header.Set("Content-Length", "43")
	if err := verifySigV4(in, []byte(body), key); err != nil {
		t.Fatal(err)
	}
	if err := verifySigV4(in, []byte(body+"&x=1"), key); err == nil {
		t.Fatal("a changed body verified")
	}
}
