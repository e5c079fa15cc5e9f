package sshcert_test

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/latchkey/latchkey/test/testkit"
	"github.com/latchkey/latchkey/test/vaulttest"
)

// A user certificate signed by Vault logs in to a host whose certificate
// the client verifies; an unsigned key, an expired certificate and one for
// another team are refused; adding a team in Vault is all it takes.
func TestUserAndHostCertificates(t *testing.T) {
	r := newRig(t, srv)
	r.writeConfig(r.userA)
	r.startAgent()

	r.mustLogIn("Vault-signed certificate for team-web", r.userCert(r.userA, "team-web", "10m"))
	r.mustBeRefused("an unsigned key", newUserKey(t))
	r.mustBeRefused("a certificate for team-db", r.userCert(r.userA, "team-db", "10m"))
	r.mustBeRefused("a certificate of an untrusted mount", r.userCert(r.userB, "team-web", "10m"))
	expired := r.userCert(r.userA, "team-web", "1s")
	for time.Now().Unix() <= int64(expired.cert.ValidBefore) {
		time.Sleep(100 * time.Millisecond)
	}
	r.mustBeRefused("an expired certificate", expired)

	// A host that has no certificate is refused by the same client.
	plainDir := t.TempDir()
	run(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", plainDir+"/host_key")
	plain := testkit.StartSSHD(t, testkit.SSHDOptions{Dir: plainDir, Config: "HostKey " + plainDir + "/host_key\nUsePAM no\n"})
	if _, _, err := r.loginTo(plain.Addr, r.userCert(r.userA, "team-web", "10m")); err == nil || !strings.Contains(err.Error(), "host") {
		t.Errorf("a host without a certificate: %v, want the host key refused", err)
	}

	// Principals by group: team-db is added in Vault, nothing on the host.
	r.setTeams("team-web", "team-db")
	testkit.Eventually(t, "the principals file to list team-db", func() bool {
		return strings.Contains(testkit.ReadFile(r.principals), "team-db")
	})
	r.mustLogIn("a certificate for team-db once the team is added", r.userCert(r.userA, "team-db", "10m"))

	st := r.status()
	cert, err := readCert(r.certFile)
	testkit.Must(t, err)
	for _, want := range []string{"mount " + r.userA, "pinned ", "principals " + hostName, "(valid)", "next renewal"} {
		if !strings.Contains(st, want) {
			t.Errorf("ssh status lacks %q:\n%s", want, st)
		}
	}
	if !strings.Contains(st, ssh.FingerprintSHA256(cert.Key)) {
		t.Errorf("ssh status lacks the host key's fingerprint:\n%s", st)
	}
}

// Rotation: trust the old and the new mount, then only the new one; a
// certificate of the new CA works at every moment.
func TestCARotationWithoutGap(t *testing.T) {
	r := newRig(t, srv)
	r.writeConfig(r.userA)
	r.startAgent()
	oldCert, newCert := r.userCert(r.userA, "team-web", "10m"), r.userCert(r.userB, "team-web", "10m")
	r.mustLogIn("old CA before rotation", oldCert)
	r.mustBeRefused("new CA before rotation", newCert)

	r.reloadAgent(r.userA, r.userB)
	testkit.Eventually(t, "the trust file to hold both mounts", func() bool {
		s := testkit.ReadFile(r.trustFile)
		return strings.Contains(s, "mount:"+r.userA) && strings.Contains(s, "mount:"+r.userB)
	})
	r.mustLogIn("old CA during rotation", oldCert)
	r.mustLogIn("new CA during rotation", newCert)

	r.reloadAgent(r.userB)
	// Until the old mount is gone, and after, the new certificate works.
	for i := 0; ; i++ {
		gone := !strings.Contains(testkit.ReadFile(r.trustFile), "mount:"+r.userA)
		r.mustLogIn(fmt.Sprintf("new CA while dropping the old one (try %d)", i), newCert)
		if gone {
			break
		}
		if i > 300 {
			t.Fatal("the old mount stayed in the trust file")
		}
		time.Sleep(100 * time.Millisecond)
	}
	r.mustBeRefused("old CA after rotation", oldCert)
	r.mustLogIn("new CA after rotation", newCert)
}

// Vault down: the trust file is kept, the pinned offline CA's certificate
// logs in, sshd names its fingerprint and ssh status labels it pinned.
func TestVaultDownBreakGlass(t *testing.T) {
	v := vaulttest.StartT(t, vaulttest.Options{})
	r := newRig(t, v)
	r.writeConfig(r.userA)
	r.startAgent()
	before := testkit.ReadFile(r.trustFile)
	testkit.Must(t, v.Stop())
	testkit.Eventually(t, "the agent to say it keeps the trust file", func() bool {
		return strings.Contains(testkit.ReadFile(r.agentLog), "keeping the current trust file")
	})
	if got := testkit.ReadFile(r.trustFile); got != before {
		t.Errorf("trust file changed with Vault down:\n%s\nwas\n%s", got, before)
	}
	r.mustLogIn("the offline CA's certificate", r.offlineCert("team-web"))
	fp := ssh.FingerprintSHA256(r.offline.PublicKey())
	var accepted string
	for _, line := range strings.Split(r.sshd.Log(), "\n") {
		if strings.Contains(line, "Accepted publickey for "+r.user) && strings.Contains(line, "CA ED25519 "+fp) {
			accepted = line
		}
	}
	if accepted == "" {
		t.Errorf("no sshd 'Accepted publickey ... CA ED25519 %s' line:\n%s", fp, r.sshd.Log())
	}
	if st := r.status(); !strings.Contains(st, fp+" ssh-ed25519 pinned ") {
		t.Errorf("ssh status does not label %s as pinned:\n%s", fp, st)
	}
}

// A check_command that fails leaves the previous files and sshd accepting.
func TestFailingCheckKeepsPreviousFiles(t *testing.T) {
	r := newRig(t, srv)
	refuse := r.dir + "/refuse"
	r.check = fmt.Sprintf("test ! -e %s && %s", refuse, r.check)
	r.writeConfig(r.userA)
	r.startAgent()
	before := testkit.ReadFile(r.trustFile)
	testkit.Must(t, os.WriteFile(refuse, nil, 0o644))
	r.reloadAgent(r.userA, r.userB)
	testkit.Eventually(t, "the agent to log the refused files", func() bool {
		return strings.Contains(testkit.ReadFile(r.agentLog), "new files refused; the previous ones are back in place")
	})
	if got := testkit.ReadFile(r.trustFile); got != before {
		t.Errorf("trust file after a failed check:\n%s\nwant\n%s", got, before)
	}
	r.mustLogIn("old CA after a failed check", r.userCert(r.userA, "team-web", "10m"))
	r.mustBeRefused("the refused new CA", r.userCert(r.userB, "team-web", "10m"))
}

// A host certificate with a lifetime of seconds is renewed and sshd,
// reloaded, serves the new one.
func TestHostCertificateRenewal(t *testing.T) {
	r := newRig(t, srv)
	r.extraHost = `ttl = "6s"`
	r.writeConfig(r.userA)
	r.startAgent()
	first, err := readCert(r.certFile)
	testkit.Must(t, err)
	k := r.userCert(r.userA, "team-web", "10m")
	testkit.Eventually(t, "sshd to serve a renewed host certificate", func() bool {
		_, served, err := r.loginTo(r.sshd.Addr, k)
		cur, cerr := readCert(r.certFile)
		return err == nil && cerr == nil && served != first.Serial && served == cur.Serial
	})
	if n := strings.Count(testkit.ReadFile(r.agentLog), "sshd reloaded for new host certificates"); n < 2 {
		t.Errorf("%d reloads logged, want the first and at least one renewal", n)
	}
}

func readCert(p string) (*ssh.Certificate, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	k, _, _, _, err := ssh.ParseAuthorizedKey(b)
	if err != nil {
		return nil, err
	}
	c, ok := k.(*ssh.Certificate)
	if !ok {
		return nil, fmt.Errorf("%s: not a certificate", p)
	}
	return c, nil
}

// exit_after_auth writes the files once and exits 0 (an image's first
// boot); a second run finds the certificate current and does not sign again
// or reload sshd: restarts go by the certificate's own validity.
func TestExitAfterAuthAndRestartKeepCertificate(t *testing.T) {
	r := newRig(t, srv)
	r.extraTop = "exit_after_auth = true\n"
	r.writeConfig(r.userA)
	runOnce := func() string {
		out, err := exec.Command(agentBin, "-config", r.cfgPath).CombinedOutput()
		if err != nil {
			t.Fatalf("exit_after_auth run: %v\n%s", err, out)
		}
		return string(out)
	}
	first := runOnce()
	cert, err := readCert(r.certFile)
	testkit.Must(t, err)
	if testkit.ReadFile(r.trustFile) == "" || !strings.Contains(first, "sshd reloaded for new host certificates") {
		t.Fatalf("first run wrote no trust file or did not reload sshd:\n%s", first)
	}
	second := runOnce()
	again, err := readCert(r.certFile)
	testkit.Must(t, err)
	if again.Serial != cert.Serial {
		t.Error("a restart signed the host key again")
	}
	if strings.Contains(second, "sshd reloaded") || strings.Contains(second, "file updated") {
		t.Errorf("a restart with current files rewrote or reloaded:\n%s", second)
	}
	// The first run reloaded sshd (SIGHUP: it re-executes itself), which
	// may still be coming back.
	k := r.userCert(r.userA, "team-web", "10m")
	testkit.Eventually(t, "a login with the files exit_after_auth wrote", func() bool {
		out, err := r.login(k)
		return err == nil && out == r.user
	})
}
