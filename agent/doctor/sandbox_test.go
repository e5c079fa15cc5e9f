package doctor

import (
	"os"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/test/testkit"
)

// The shipped unit's sandbox as a real systemd shows it (testdata: `systemctl
// show` in the nspawn container of test/e2e/systemd, which also runs doctor
// through the unit's systemd): where the agent may write under it, where it
// fails (read-only), where nobody outside sees the file.
func TestSandbox(t *testing.T) {
	if parseSandbox(testkit.ReadFile("testdata/systemctl-show-not-found.txt")) != nil {
		t.Error("a unit systemd did not load has a sandbox")
	}
	sb := parseSandbox(testkit.ReadFile("testdata/systemctl-show-shipped-unit.txt"))
	if sb == nil {
		t.Fatal("the shipped unit has no sandbox")
	}
	if got, want := strings.Join(sb.writable, " "), "/etc /run /var /srv /var/lib/latchkey /run/latchkey"; !sameSet(got, want) {
		t.Errorf("writable %q, want %q", got, want)
	}
	tests := map[string]struct {
		dir        string
		want, fail bool   // a problem; it fails
		problem    string // part of it
	}{
		"/etc/app":          {dir: "/etc/app"},
		"/run/latchkey":     {dir: "/run/latchkey"},
		"/var/lib/app":      {dir: "/var/lib/app"},
		"/srv/app":          {dir: "/srv/app/"},
		"/opt/app":          {dir: "/opt/app", want: true, fail: true, problem: "/opt/app is read-only under latchkey-agent.service (ProtectSystem=strict): it may write only under /etc, /run, /var, /srv"},
		"/usr/local/etc":    {dir: "/usr/local/etc", want: true, fail: true, problem: "ProtectSystem=strict"},
		"/etcetera":         {dir: "/etcetera", want: true, fail: true, problem: "read-only"},
		"/root/.app":        {dir: "/root/.app", want: true, fail: true, problem: "read-only"},
		"/tmp: private":     {dir: "/tmp", want: true, problem: "/tmp is the unit's private one (PrivateTmp=yes)"},
		"/var/tmp: private": {dir: "/var/tmp/app", want: true, problem: "/var/tmp/app is the unit's private one (PrivateTmp=yes)"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			problem, fix, fail := sb.check(tc.dir)
			if (problem != "") != tc.want || fail != tc.fail || !strings.Contains(problem, tc.problem) {
				t.Fatalf("check(%q) = %q, %q, fail %v; want a problem %v (%q), fail %v", tc.dir, problem, fix, fail, tc.want, tc.problem, tc.fail)
			}
			if fail && !strings.Contains(fix, "ReadWritePaths="+strings.TrimSuffix(tc.dir, "/")+" in a drop-in (systemctl edit latchkey-agent)") {
				t.Errorf("fix %q does not say which drop-in", fix)
			}
		})
	}
	// A directory is judged where its symlinks lead.
	link := t.TempDir() + "/app"
	testkit.Must(t, os.Symlink("/usr", link))
	if problem, _, fail := sb.check(link); !fail || !strings.Contains(problem, "/usr is read-only") {
		t.Errorf("check(%s -> /usr) = %q, fail %v", link, problem, fail)
	}
	// ProtectHome= and ProtectSystem= without strict, as a drop-in may set them.
	loose := parseSandbox("LoadState=loaded\nProtectSystem=full\nProtectHome=tmpfs\nPrivateTmp=no\nReadWritePaths=\n")
	for dir, want := range map[string]string{"/etc/app": "ProtectSystem=full", "/opt/app": "", "/home/x": "ProtectHome=tmpfs", "/tmp": ""} {
		if problem, _, _ := loose.check(dir); (want == "") != (problem == "") || !strings.Contains(problem, want) {
			t.Errorf("ProtectSystem=full, ProtectHome=tmpfs: check(%q) = %q, want %q", dir, problem, want)
		}
	}
}

// A hardening drop-in's ReadOnlyPaths= or InaccessiblePaths= inside the
// shipped ReadWritePaths=/etc: the more specific path decides, as systemd
// mounts it; doctor said OK for a trust file the agent could not write.
func TestSandboxReadOnlyAndInaccessiblePaths(t *testing.T) {
	sb := parseSandbox(testkit.ReadFile("testdata/systemctl-show-shipped-unit.txt") +
		"ReadOnlyPaths=/etc/ssh -/etc/app/ro\nInaccessiblePaths=/etc/secret\nReadWritePaths=/etc /run /var -/srv /etc/ssh/sshd_config.d\n")
	tests := map[string]struct {
		dir     string
		problem string // "" when writable
	}{
		"inside ReadWritePaths=/etc":            {dir: "/etc/app"},
		"ReadOnlyPaths inside it":               {dir: "/etc/ssh", problem: "/etc/ssh is read-only under latchkey-agent.service (ReadOnlyPaths=/etc/ssh)"},
		"below the read-only path":              {dir: "/etc/ssh/ca", problem: "(ReadOnlyPaths=/etc/ssh)"},
		"a ReadWritePaths= more specific still": {dir: "/etc/ssh/sshd_config.d"},
		"a missing-ok read-only path":           {dir: "/etc/app/ro/x", problem: "(ReadOnlyPaths=/etc/app/ro)"},
		"InaccessiblePaths":                     {dir: "/etc/secret/x", problem: "/etc/secret/x cannot be reached under latchkey-agent.service (InaccessiblePaths=/etc/secret)"},
		"a neighbour of the read-only path":     {dir: "/etc/sshd", problem: ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			problem, fix, fail := sb.check(tc.dir)
			if problem == "" && tc.problem == "" {
				return
			}
			if !strings.Contains(problem, tc.problem) || tc.problem == "" || !fail || !strings.Contains(fix, "systemctl cat latchkey-agent") {
				t.Errorf("check(%q) = %q, %q, fail %v; want %q", tc.dir, problem, fix, fail, tc.problem)
			}
		})
	}
}

func sameSet(a, b string) bool {
	m := map[string]int{}
	for _, f := range strings.Fields(a) {
		m[f]++
	}
	for _, f := range strings.Fields(b) {
		m[f]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return true
}
