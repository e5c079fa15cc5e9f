package main

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/latchkey/latchkey/test/testkit"
	"github.com/latchkey/latchkey/test/vaulttest"
)

// Defect: a pkiCert template whose common_name or SANs changed kept the
// certificate already on disk, issued for the old names, after a SIGHUP
// or a restart, until that certificate neared its end (hours or days of
// a service presenting the wrong name). A certificate on disk is reused
// only when it carries the names the template asks for; an unchanged
// template still reuses it (no issue at a restart).
func TestPKICertRequestChangeIssuesANewCertificate(t *testing.T) {
	dir := t.TempDir()
	pkiMount(t, "pki-change", "")
	src, dest := filepath.Join(dir, "cert.tmpl"), filepath.Join(dir, "cert.pem")
	cfg := rootTokenConfig(t, dir, fmt.Sprintf("template {\n  source = %q\n  destination = %q\n}\n", src, dest))
	body := func(args string) string {
		return `{{ with pkiCert "pki-change/issue/web" ` + args + ` "ttl=1h" }}{{ .Cert }}{{ end }}`
	}
	proxy := vaulttest.NewCountingProxy(t, srv.Addr)
	issued := func() int {
		return proxy.Count("PUT", "/v1/pki-change/issue/web") + proxy.Count("POST", "/v1/pki-change/issue/web")
	}
	// names returns the common name and DNS SANs of the certificate at dest.
	names := func() (string, []string) {
		b, err := os.ReadFile(dest)
		if err != nil {
			return "", nil
		}
		blk, _ := pem.Decode(b)
		if blk == nil {
			return "", nil
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return "", nil
		}
		return c.Subject.CommonName, c.DNSNames
	}
	hasCN := func(cn string, sans ...string) func() bool {
		return func() bool {
			got, dns := names()
			for _, s := range sans {
				if !slices.Contains(dns, s) {
					return false
				}
			}
			return got == cn
		}
	}

	testkit.WriteFile(t, src, body(`"common_name=a.example.com"`))
	a := startAgent(t, []string{"-config", cfg}, "VAULT_ADDR="+proxy.URL)
	testkit.Eventually(t, "a certificate for a.example.com", hasCN("a.example.com"))
	if n := issued(); n != 1 {
		t.Fatalf("%d issued at the start, want 1", n)
	}

	// A SIGHUP with another common name: issued at once.
	testkit.WriteFile(t, src, body(`"common_name=b.example.com"`))
	a.signal(t, syscall.SIGHUP)
	testkit.Eventually(t, "a certificate for b.example.com after SIGHUP", hasCN("b.example.com"))
	if code := a.stop(t); code != 0 {
		t.Fatalf("exit %d", code)
	}

	// A restart with an added alt name: issued at the start. READY=1
	// comes once every template is rendered.
	notify := testkit.ListenNotify(t)
	testkit.WriteFile(t, src, body(`"common_name=b.example.com" "alt_names=c.example.com"`))
	a = startAgent(t, []string{"-config", cfg}, "VAULT_ADDR="+proxy.URL, "NOTIFY_SOCKET="+notify.Path)
	notify.WaitFor(t, "READY=1", 0)
	if !hasCN("b.example.com", "c.example.com")() {
		t.Error("no certificate with c.example.com after a restart")
	}
	if code := a.stop(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if n := issued(); n != 3 {
		t.Errorf("%d issued, want 3 (start, SIGHUP, restart)", n)
	}

	// A restart with the template unchanged reuses the certificate.
	before := testkit.ReadFile(dest)
	from := notify.Count()
	a = startAgent(t, []string{"-config", cfg}, "VAULT_ADDR="+proxy.URL, "NOTIFY_SOCKET="+notify.Path)
	notify.WaitFor(t, "READY=1", from)
	if code := a.stop(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if n := issued(); n != 3 {
		t.Errorf("an unchanged restart issued: %d issued, want 3", n)
	}
	if testkit.ReadFile(dest) != before {
		t.Error("an unchanged restart replaced the certificate")
	}
}
