// Package awsfake is a fake AWS for tests, speaking the real wire formats on
// 127.0.0.1: the instance metadata service (IMDSv2 tokens, the identity
// document and its rsa2048 PKCS#7 signature) and the query-protocol APIs
// Vault's aws auth method calls (STS GetCallerIdentity, EC2
// DescribeInstances, XML answers).
package awsfake

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"regexp"
	"strings"
	"sync"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/smallstep/pkcs7"
)

// Instance is the fake instance's identity.
type Instance struct {
	AccountID  string
	InstanceID string
	Region     string
	ImageID    string
	// State is what DescribeInstances reports ("running", "stopped").
	State       string
	PendingTime time.Time
}

// Signer signs identity documents as AWS does (SHA-256, RSA), with a test
// certificate Vault is told to trust.
type Signer struct {
	Key  *rsa.PrivateKey
	Cert *x509.Certificate
	// CertPEM is what auth/<mount>/config/certificate/<name> takes.
	CertPEM string
}

// NewSigner makes a key and a self-signed certificate.
func NewSigner() (*Signer, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "latchkey test EC2 identity signer"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Signer{Key: key, Cert: cert, CertPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))}, nil
}

// Document returns the identity document JSON, pretty-printed as IMDS does.
func Document(in Instance) []byte {
	b, _ := json.MarshalIndent(map[string]any{
		"accountId": in.AccountID, "architecture": "x86_64", "availabilityZone": in.Region + "a",
		"imageId": in.ImageID, "instanceId": in.InstanceID, "instanceType": "t3.micro",
		"pendingTime": in.PendingTime.UTC().Format(time.RFC3339), "privateIp": "10.0.0.5",
		"region": in.Region, "version": "2017-09-30",
	}, "", "  ")
	return b
}

// SignRSA2048 returns the /rsa2048 body for doc as IMDS serves it: base64
// of a BER PKCS#7 SignedData (SHA-256, RSA) with the document embedded,
// the outer layers in indefinite-length form (it starts
// "MIAGCSqGSIb3DQEHAqCA"), wrapped at 76 columns, no PEM header.
func (s *Signer) SignRSA2048(doc []byte) (string, error) {
	sd, err := pkcs7.NewSignedData(doc)
	if err != nil {
		return "", err
	}
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	if err := sd.AddSigner(s.Cert, s.Key, pkcs7.SignerInfoConfig{}); err != nil {
		return "", err
	}
	der, err := sd.Finish()
	if err != nil {
		return "", err
	}
	ber, err := awsBER(der)
	if err != nil {
		return "", err
	}
	b64 := base64.StdEncoding.EncodeToString(ber)
	var lines []string
	for len(b64) > 76 {
		lines = append(lines, b64[:76])
		b64 = b64[76:]
	}
	return strings.Join(append(lines, b64), "\n"), nil
}

// awsBER re-encodes a DER ContentInfo the way AWS writes identity
// signatures: ContentInfo, its [0], SignedData, the encapsulated
// ContentInfo, its [0] and the content OCTET STRING (made constructed, one
// chunk) use indefinite lengths; everything else stays DER.
func awsBER(der []byte) ([]byte, error) {
	ci, err := children(der)
	if err != nil || len(ci) != 2 {
		return nil, fmt.Errorf("ContentInfo: %v", err)
	}
	sdWrap, err := children(ci[1])
	if err != nil || len(sdWrap) != 1 {
		return nil, fmt.Errorf("[0]: %v", err)
	}
	sd, err := children(sdWrap[0])
	if err != nil || len(sd) < 4 {
		return nil, fmt.Errorf("SignedData: %v", err)
	}
	encap, err := children(sd[2])
	if err != nil || len(encap) != 2 {
		return nil, fmt.Errorf("encapContentInfo: %v", err)
	}
	content, err := children(encap[1])
	if err != nil || len(content) != 1 {
		return nil, fmt.Errorf("content: %v", err)
	}
	octets := indefinite(0x24, content[0]) // constructed OCTET STRING
	sd[2] = indefinite(0x30, encap[0], indefinite(0xa0, octets))
	return indefinite(0x30, ci[0], indefinite(0xa0, indefinite(0x30, sd...))), nil
}

// children returns the encoded elements inside one DER element.
func children(b []byte) ([][]byte, error) {
	var outer asn1.RawValue
	if _, err := asn1.Unmarshal(b, &outer); err != nil {
		return nil, err
	}
	var out [][]byte
	for rest := outer.Bytes; len(rest) > 0; {
		var rv asn1.RawValue
		var err error
		if rest, err = asn1.Unmarshal(rest, &rv); err != nil {
			return nil, err
		}
		out = append(out, rv.FullBytes)
	}
	return out, nil
}

// indefinite encodes a constructed element with identifier id and an
// indefinite length (0x80 ... end-of-contents).
func indefinite(id byte, elems ...[]byte) []byte {
	b := []byte{id, 0x80}
	for _, e := range elems {
		b = append(b, e...)
	}
	return append(b, 0, 0)
}

// AWS is the fake: IMDS and the API on two loopback servers.
type AWS struct {
	Signer *Signer
	IMDS   *httptest.Server
	API    *httptest.Server

	mu sync.Mutex
	in Instance
	// allowV1 lets IMDS answer GETs without a session token; noV2 refuses
	// token requests (403, as a proxy that blocks PUT does).
	allowV1, noV2 bool
	// imdsGets counts IMDS GETs by path.
	imdsGets map[string]int
	// tamper alters the document inside the signed body after signing.
	tamper bool
	// tokens issued by PUT /latest/api/token.
	tokens map[string]bool
	// instances known to DescribeInstances, by id.
	states map[string]string
	// Requests counts API calls by action.
	requests map[string]int
	// profile is the instance profile's role name; keys maps the access
	// key ids IMDS issued for it to their secret and session token.
	profile string
	keys    map[string][2]string
	// SigV4Checked counts GetCallerIdentity calls whose signature was
	// recomputed and matched.
	sigChecked int
}

// Profile is the instance profile role name IMDS serves credentials for.
const Profile = "latchkey-test-role"

// New starts the fake with instance in.
func New(in Instance) (*AWS, error) {
	s, err := NewSigner()
	if err != nil {
		return nil, err
	}
	a := &AWS{Signer: s, in: in, tokens: map[string]bool{}, states: map[string]string{in.InstanceID: in.State}, requests: map[string]int{},
		profile: Profile, keys: map[string][2]string{}, imdsGets: map[string]int{}}
	a.IMDS = httptest.NewServer(http.HandlerFunc(a.imds))
	a.API = httptest.NewServer(http.HandlerFunc(a.api))
	return a, nil
}

// Close stops both servers.
func (a *AWS) Close() { a.IMDS.Close(); a.API.Close() }

// SetInstance changes the identity IMDS serves (a new or migrated instance).
func (a *AWS) SetInstance(in Instance) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.in = in
	if _, ok := a.states[in.InstanceID]; !ok {
		a.states[in.InstanceID] = in.State
	}
}

// SetState sets what DescribeInstances says of instance id.
func (a *AWS) SetState(id, state string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.states[id] = state
}

// Tamper makes IMDS serve a document altered after signing.
func (a *AWS) Tamper(on bool) { a.mu.Lock(); a.tamper = on; a.mu.Unlock() }

// AllowV1 lets IMDS answer without a session token.
func (a *AWS) AllowV1(on bool) { a.mu.Lock(); a.allowV1 = on; a.mu.Unlock() }

// OnlyV1 makes IMDS refuse session tokens (403) and answer plain GETs: an
// IMDSv1-only path such as a proxy that blocks PUT.
func (a *AWS) OnlyV1(on bool) { a.mu.Lock(); a.noV2, a.allowV1 = on, on; a.mu.Unlock() }

// IMDSHandler serves the fake IMDS, for a listener of a test's own (IPv6).
func (a *AWS) IMDSHandler() http.Handler { return http.HandlerFunc(a.imds) }

// IMDSGets returns how many GETs of path IMDS answered.
func (a *AWS) IMDSGets(path string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.imdsGets[path]
}

// AddKey makes STS accept requests signed with these keys (as keys of the
// instance profile role), e.g. static keys a test puts in the environment.
func (a *AWS) AddKey(id, secret, token string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.keys[id] = [2]string{secret, token}
}

func (a *AWS) imds(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if r.URL.Path == "/latest/api/token" {
		ttl := r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds")
		if a.noV2 {
			http.Error(w, "", http.StatusForbidden)
			return
		}
		if r.Method != http.MethodPut || ttl == "" {
			http.Error(w, "", http.StatusBadRequest)
			return
		}
		tok := fmt.Sprintf("tok-%d", len(a.tokens)+1)
		a.tokens[tok] = true
		w.Header().Set("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", ttl)
		fmt.Fprint(w, tok)
		return
	}
	if r.Method != http.MethodGet {
		http.Error(w, "", http.StatusMethodNotAllowed)
		return
	}
	if tok := r.Header.Get("X-aws-ec2-metadata-token"); !a.tokens[tok] && !a.allowV1 {
		http.Error(w, "", http.StatusUnauthorized)
		return
	}
	a.imdsGets[r.URL.Path]++
	doc := Document(a.in)
	switch r.URL.Path {
	case "/latest/dynamic/instance-identity/document":
		w.Write(doc)
	case "/latest/meta-data/iam/security-credentials/":
		fmt.Fprint(w, a.profile)
	case "/latest/meta-data/iam/security-credentials/" + a.profile:
		id := fmt.Sprintf("ASIATEST%04d", len(a.keys)+1)
		a.keys[id] = [2]string{"profile-secret-" + id, "profile-token-" + id}
		json.NewEncoder(w).Encode(map[string]string{
			"Code": "Success", "LastUpdated": time.Now().UTC().Format(time.RFC3339), "Type": "AWS-HMAC",
			"AccessKeyId": id, "SecretAccessKey": a.keys[id][0], "Token": a.keys[id][1],
			"Expiration": time.Now().Add(6 * time.Hour).UTC().Format(time.RFC3339),
		})
	case "/latest/dynamic/instance-identity/rsa2048":
		body, err := a.Signer.SignRSA2048(doc)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if a.tamper {
			body = tamper(body, a.in.InstanceID)
		}
		fmt.Fprint(w, body)
	default:
		http.NotFound(w, r)
	}
}

// tamper changes the last character of the instance id inside the signed
// body, keeping its length, so the signature no longer matches.
func tamper(body, instanceID string) string {
	der, _ := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(body), ""))
	s := string(der)
	i := strings.Index(s, instanceID)
	if i < 0 {
		return body
	}
	last := instanceID[len(instanceID)-1]
	repl := byte('0')
	if last == '0' {
		repl = '1'
	}
	b := []byte(s)
	b[i+len(instanceID)-1] = repl
	return base64.StdEncoding.EncodeToString(b)
}

func (a *AWS) api(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	form, _ := url.ParseQuery(string(body))
	for k, v := range r.URL.Query() {
		form[k] = v
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	action := form.Get("Action")
	a.requests[action]++
	w.Header().Set("Content-Type", "text/xml")
	switch action {
	case "GetCallerIdentity":
		arn := fmt.Sprintf("arn:aws:iam::%s:user/vault", a.in.AccountID)
		if key, ok := a.keys[accessKeyID(r)]; ok {
			// A request signed with instance profile keys (aws iam login,
			// replayed by Vault): recompute its SigV4 signature.
			if err := verifySigV4(r, body, key); err != nil {
				w.WriteHeader(http.StatusForbidden)
				fmt.Fprintf(w, `<ErrorResponse><Error><Type>Sender</Type><Code>SignatureDoesNotMatch</Code><Message>%s</Message></Error></ErrorResponse>`, err)
				return
			}
			a.sigChecked++
			arn = fmt.Sprintf("arn:aws:sts::%s:assumed-role/%s/%s", a.in.AccountID, a.profile, a.in.InstanceID)
		}
		fmt.Fprintf(w, `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetCallerIdentityResult>
    <Arn>%[2]s</Arn>
    <UserId>AROATEST:%[3]s</UserId>
    <Account>%[1]s</Account>
  </GetCallerIdentityResult>
  <ResponseMetadata><RequestId>01234567-89ab-cdef-0123-456789abcdef</RequestId></ResponseMetadata>
</GetCallerIdentityResponse>`, a.in.AccountID, arn, a.in.InstanceID)
	case "DescribeInstances":
		id := form.Get("InstanceId.1")
		state, ok := a.states[id]
		if !ok {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `<Response><Errors><Error><Code>InvalidInstanceID.NotFound</Code><Message>The instance ID '%s' does not exist</Message></Error></Errors><RequestID>x</RequestID></Response>`, id)
			return
		}
		fmt.Fprintf(w, `<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>01234567-89ab-cdef-0123-456789abcdef</requestId>
  <reservationSet>
    <item>
      <reservationId>r-0123456789abcdef0</reservationId>
      <ownerId>%s</ownerId>
      <instancesSet>
        <item>
          <instanceId>%s</instanceId>
          <imageId>%s</imageId>
          <instanceState><code>16</code><name>%s</name></instanceState>
        </item>
      </instancesSet>
    </item>
  </reservationSet>
</DescribeInstancesResponse>`, a.in.AccountID, id, a.in.ImageID, state)
	default:
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `<ErrorResponse><Error><Code>InvalidAction</Code><Message>%s</Message></Error></ErrorResponse>`, action)
	}
}

// SigV4Checked returns how many iam logins' signatures were verified.
func (a *AWS) SigV4Checked() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sigChecked
}

var authRe = regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]+)$`)

func accessKeyID(r *http.Request) string {
	m := authRe.FindStringSubmatch(r.Header.Get("Authorization"))
	if m == nil {
		return ""
	}
	return m[1]
}

// verifySigV4 re-signs the request as received, with only the headers its
// signature covers, and compares signatures.
func verifySigV4(r *http.Request, body []byte, key [2]string) error {
	m := authRe.FindStringSubmatch(r.Header.Get("Authorization"))
	if m == nil {
		return fmt.Errorf("no SigV4 Authorization header")
	}
	region, service, signed, sig := m[3], m[4], strings.Split(m[5], ";"), m[6]
	at, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return fmt.Errorf("X-Amz-Date: %v", err)
	}
	if r.Header.Get("X-Amz-Security-Token") != key[1] {
		return fmt.Errorf("wrong security token")
	}
	// SigV4 (outside S3) normalizes the path, as AWS does: Vault's replay to
	// a configured sts_endpoint arrives as "//".
	p := path.Clean(r.URL.Path)
	if p == "." {
		p = "/"
	}
	u := "https://" + r.Host + p
	if r.URL.RawQuery != "" {
		u += "?" + r.URL.RawQuery
	}
	req, _ := http.NewRequest(r.Method, u, bytes.NewReader(body))
	req.Host = r.Host
	for _, h := range signed {
		if h != "host" && h != "content-length" {
			req.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	req.Header.Del("Authorization")
	sum := sha256.Sum256(body)
	creds := sdkaws.Credentials{AccessKeyID: m[1], SecretAccessKey: key[0], SessionToken: key[1]}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), service, region, at); err != nil {
		return err
	}
	got := authRe.FindStringSubmatch(req.Header.Get("Authorization"))
	if got == nil || !hmac.Equal([]byte(got[6]), []byte(sig)) {
		// AWS quotes its canonical request, signed header values included.
		return fmt.Errorf("the request signature we calculated does not match the signature you provided. The Canonical String for this request should have been 'POST\n/\n\nx-amz-security-token:%s\n...'", r.Header.Get("X-Amz-Security-Token"))
	}
	return nil
}

// Requests returns how many API calls of action were made.
func (a *AWS) Requests(action string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.requests[action]
}
