// Package alifake is a fake Alibaba Cloud for tests, speaking the real wire
// formats on 127.0.0.1: the ECS metadata service in hardened mode (session
// token, RAM role credentials, identity document and its detached PKCS#7
// signature for an audience), an STS over TLS that verifies the RPC
// HMAC-SHA1 signature of GetCallerIdentity, and the CONNECT proxy through
// which a stock Vault process reaches that STS under its real host name.
package alifake

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/smallstep/pkcs7"

	"github.com/latchkey/latchkey/test/testkit"
)

// Regions the fake STS certificate names.
var Regions = []string{"cn-hangzhou", "cn-shanghai", "eu-central-1"}

// Instance is the fake ECS instance.
type Instance struct {
	AccountID  string
	InstanceID string
	RegionID   string
	// RAMRole is the instance's RAM role name.
	RAMRole string
}

// Keypair is a key and its self-signed certificate.
type Keypair struct {
	Key     *rsa.PrivateKey
	Cert    *x509.Certificate
	CertPEM []byte
}

func newKeypair(cn string, isCA bool, parent *Keypair, dns ...string) (*Keypair, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn}, DNSNames: dns,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: isCA, BasicConstraintsValid: isCA,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageCertSign,
	}
	if !isCA && len(dns) > 0 {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	signerCert, signerKey := tmpl, key
	if parent != nil {
		signerCert, signerKey = parent.Cert, parent.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signerCert, &key.PublicKey, signerKey)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Keypair{Key: key, Cert: cert, CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// Cloud is the fake.
type Cloud struct {
	// Identity signs identity documents (stands in for Alibaba's pinned
	// certificate); Spoofer is another key, for a spoofed metadata service.
	Identity, Spoofer *Keypair
	// CA signed the STS certificate; CABundle is a PEM file holding it.
	CA       *Keypair
	CABundle string
	Metadata *httptest.Server
	STS      *httptest.Server
	// Proxy is the CONNECT proxy's URL (for HTTPS_PROXY).
	Proxy *httptest.Server

	mu        sync.Mutex
	in        Instance
	spoof     bool
	tokens    map[string]bool
	keys      map[string][2]string // AccessKeyId → secret, security token
	issued    int
	credTTL   time.Duration
	stsCalls  int
	stsDenied int
}

// New starts the fake; dir receives the CA bundle.
func New(in Instance, dir string) (*Cloud, error) {
	c := &Cloud{in: in, tokens: map[string]bool{}, keys: map[string][2]string{}, credTTL: time.Hour}
	var err error
	if c.Identity, err = newKeypair("latchkey test ECS identity", false, nil); err != nil {
		return nil, err
	}
	if c.Spoofer, err = newKeypair("spoofed ECS identity", false, nil); err != nil {
		return nil, err
	}
	if c.CA, err = newKeypair("latchkey test CA", true, nil); err != nil {
		return nil, err
	}
	var names []string
	for _, r := range Regions {
		names = append(names, "sts."+r+".aliyuncs.com")
	}
	stsCert, err := newKeypair("sts.aliyuncs.com", false, c.CA, names...)
	if err != nil {
		return nil, err
	}
	c.CABundle = filepath.Join(dir, "alifake-ca.pem")
	if err := os.WriteFile(c.CABundle, c.CA.CertPEM, 0o644); err != nil {
		return nil, err
	}
	c.Metadata = httptest.NewServer(http.HandlerFunc(c.metadata))
	c.STS = httptest.NewUnstartedServer(http.HandlerFunc(c.sts))
	c.STS.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{stsCert.Cert.Raw}, PrivateKey: stsCert.Key}}}
	c.STS.StartTLS()
	c.Proxy = httptest.NewServer(http.HandlerFunc(c.connect))
	return c, nil
}

// Close stops the servers.
func (c *Cloud) Close() { c.Metadata.Close(); c.STS.Close(); c.Proxy.Close() }

// Spoof makes the metadata service sign identity documents with a key that
// is not the identity certificate's.
func (c *Cloud) Spoof(on bool) { c.mu.Lock(); c.spoof = on; c.mu.Unlock() }

// ForgetTokens invalidates every metadata session token handed out (as a
// token expiring does).
func (c *Cloud) ForgetTokens() { c.mu.Lock(); c.tokens = map[string]bool{}; c.mu.Unlock() }

// AddKey makes STS accept requests signed with these keys (as the RAM
// role's), e.g. static keys a test puts in the config or environment.
func (c *Cloud) AddKey(id, secret, token string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.keys[id] = [2]string{secret, token}
}

// SetCredentialTTL sets how long the RAM credentials the metadata service
// hands out live (an hour by default, as on ECS).
func (c *Cloud) SetCredentialTTL(d time.Duration) { c.mu.Lock(); c.credTTL = d; c.mu.Unlock() }

// CredentialFetches returns how many times RAM credentials were handed out.
func (c *Cloud) CredentialFetches() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.issued
}

// STSCalls returns how many GetCallerIdentity calls were verified and how
// many were refused.
func (c *Cloud) STSCalls() (ok, denied int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stsCalls, c.stsDenied
}

// Document is the compact identity document.
func (c *Cloud) Document() string {
	b, _ := json.Marshal(map[string]string{
		"owner-account-id": c.in.AccountID, "instance-id": c.in.InstanceID, "region-id": c.in.RegionID,
		"zone-id": c.in.RegionID + "-b", "instance-type": "ecs.g6.large", "image-id": "m-test", "private-ipv4": "172.16.0.5",
		"mac": "00:16:3e:00:00:01", "serial-number": "test-serial",
	})
	return string(b)
}

func (c *Cloud) metadata(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.URL.Path == "/latest/api/token" {
		if r.Method != http.MethodPut || r.Header.Get("X-aliyun-ecs-metadata-token-ttl-seconds") == "" {
			http.Error(w, "", http.StatusBadRequest)
			return
		}
		tok := fmt.Sprintf("aliyun-tok-%d", len(c.tokens)+1)
		c.tokens[tok] = true
		fmt.Fprint(w, tok)
		return
	}
	if !c.tokens[r.Header.Get("X-aliyun-ecs-metadata-token")] {
		http.Error(w, "", http.StatusUnauthorized) // hardened mode
		return
	}
	const creds = "/latest/meta-data/ram/security-credentials/"
	switch {
	case r.URL.Path == creds:
		fmt.Fprint(w, c.in.RAMRole)
	case r.URL.Path == creds+c.in.RAMRole:
		c.issued++
		id := fmt.Sprintf("STS.test%d", c.issued)
		secret, token := fmt.Sprintf("secret-%d", c.issued), fmt.Sprintf("token-%d", c.issued)
		c.keys[id] = [2]string{secret, token}
		json.NewEncoder(w).Encode(map[string]string{
			"AccessKeyId": id, "AccessKeySecret": secret, "SecurityToken": token,
			"Expiration": time.Now().Add(c.credTTL).UTC().Format(time.RFC3339), "LastUpdated": time.Now().UTC().Format(time.RFC3339), "Code": "Success",
		})
	case r.URL.Path == "/latest/dynamic/instance-identity/document":
		fmt.Fprint(w, c.Document())
	case r.URL.Path == "/latest/dynamic/instance-identity/pkcs7":
		kp := c.Identity
		if c.spoof {
			kp = c.Spoofer
		}
		content := c.Document()
		i := strings.LastIndex(content, "}")
		a, _ := json.Marshal(r.URL.Query().Get("audience"))
		content = content[:i] + `,"audience":` + string(a) + content[i:]
		sd, err := pkcs7.NewSignedData([]byte(content))
		if err == nil {
			err = sd.AddSigner(kp.Cert, kp.Key, pkcs7.SignerInfoConfig{})
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		sd.Detach()
		der, err := sd.Finish()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, base64.StdEncoding.EncodeToString(der))
	default:
		http.NotFound(w, r)
	}
}

// sts answers GetCallerIdentity after recomputing the signature with the
// secret it issued for the AccessKeyId.
func (c *Cloud) sts(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	params := url.Values{}
	for k, v := range r.URL.Query() {
		params[k] = v
	}
	if form, err := url.ParseQuery(string(body)); err == nil {
		for k, v := range form {
			params[k] = v
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	deny := func(code int, msg string) {
		c.stsDenied++
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(map[string]string{"RequestId": "x", "Code": "SignatureDoesNotMatch", "Message": msg})
	}
	key, ok := c.keys[params.Get("AccessKeyId")]
	if !ok {
		deny(http.StatusNotFound, "InvalidAccessKeyId.NotFound")
		return
	}
	if params.Get("SecurityToken") != key[1] {
		deny(http.StatusBadRequest, "InvalidSecurityToken")
		return
	}
	flat := map[string]string{}
	for k, v := range params {
		if k != "Signature" {
			flat[k] = v[0]
		}
	}
	if want, toSign := sign(r.Method, flat, key[0]); !hmac.Equal([]byte(want), []byte(params.Get("Signature"))) {
		// Alibaba's answer quotes its string to sign, token and all.
		deny(http.StatusBadRequest, "Specified signature is not matched with our calculation. server string to sign is:"+toSign)
		return
	}
	if params.Get("Action") != "GetCallerIdentity" || params.Get("Format") != "JSON" {
		deny(http.StatusBadRequest, "unexpected request")
		return
	}
	c.stsCalls++
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]string{
		"RequestId": "6894B13B-6D71-4EF5-88FA-F32781734A7F", "AccountId": c.in.AccountID,
		"UserId": "3000000000000000", "PrincipalId": "300000000000000:vm-ram-i-" + c.in.InstanceID,
		"IdentityType": "AssumedRoleUser",
		"Arn":          fmt.Sprintf("acs:ram::%s:assumed-role/%s/vm-ram-i-%s", c.in.AccountID, c.in.RAMRole, c.in.InstanceID),
	})
}

// connect is a CONNECT proxy that sends every tunnel to the fake STS.
func (c *Cloud) connect(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodConnect || !strings.HasSuffix(strings.TrimSuffix(r.Host, ":443"), ".aliyuncs.com") {
		http.Error(w, "only CONNECT to *.aliyuncs.com", http.StatusForbidden)
		return
	}
	testkit.Tunnel(w, c.STS.Listener.Addr().String())
}

// sign is the RPC signature, written here independently of the product's;
// it also returns the string to sign.
func sign(method string, params map[string]string, secret string) (string, string) {
	enc := func(s string) string {
		return strings.NewReplacer("+", "%20", "*", "%2A", "%7E", "~").Replace(url.QueryEscape(s))
	}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, enc(k)+"="+enc(params[k]))
	}
	toSign := method + "&%2F&" + enc(strings.Join(parts, "&"))
	m := hmac.New(sha1.New, []byte(secret+"&"))
	m.Write([]byte(toSign))
	return base64.StdEncoding.EncodeToString(m.Sum(nil)), toSign
}
