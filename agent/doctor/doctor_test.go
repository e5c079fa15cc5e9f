package doctor

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/latchkey/latchkey/agent/state"
	"github.com/latchkey/latchkey/internal/doctor"
	"github.com/latchkey/latchkey/test/testkit"
	"github.com/latchkey/latchkey/test/vaulttest"
)

var srv *vaulttest.Server

func TestMain(m *testing.M) {
	vaulttest.Main(m, vaulttest.Spec{Into: &srv, Options: vaulttest.Options{TLS: true}})
}

// setup writes an agent config and returns its path; edit changes the
// pieces before it is written.
func setup(t *testing.T, edit func(addr, method, sinkDir, stateDir *string)) string {
	dir := t.TempDir()
	addr, method := srv.Addr, `type = "approle"
    config = {
      role_id_file_path = "`+dir+`/role-id"
      secret_id_file_path = "`+dir+`/secret-id"
    }`
	sinkDir, stateDir := filepath.Join(dir, "run"), filepath.Join(dir, "state")
	testkit.Must(t, os.Mkdir(sinkDir, 0o755))
	testkit.Must(t, os.Mkdir(stateDir, 0o700))
	if edit != nil {
		edit(&addr, &method, &sinkDir, &stateDir)
	}
	p := filepath.Join(dir, "agent.hcl")
	testkit.WriteFile(t, p, fmt.Sprintf(`vault {
  address = %q
  ca_cert = %q
}
latchkey { state_dir = %q }
auto_auth {
  method {
    %s
  }
  sink {
    type = "file"
    config = {
      path = "%s/token"
      mode = 0600
    }
  }
}
`, addr, srv.CACert, stateDir, method, sinkDir))
	return p
}

func TestDoctor(t *testing.T) {
	tests := map[string]struct {
		edit func(addr, method, sinkDir, stateDir *string)
		want []string // lines or parts of lines, in any order
	}{
		"good":                         {nil, []string{"OK   config:", "OK   state dir:", "OK   sink ", "OK   vault: " + srv.Addr + " answered", "OK   metadata service: approle auth uses no metadata service"}},
		"sink directory missing":       {func(_, _, sinkDir, _ *string) { *sinkDir += "/nope" }, []string{"FAIL sink ", "is not a directory"}},
		"state dir readable by others": {func(_, _, _, stateDir *string) { testkit.Must(t, os.Chmod(*stateDir, 0o755)) }, []string{"FAIL state dir:", "chmod 0700"}},
		"vault unreachable":            {func(addr, _, _, _ *string) { *addr = fmt.Sprintf("https://127.0.0.1:%d", testkit.FreePort(t)) }, []string{"FAIL vault:", "connection refused"}},
		"aws metadata unreachable": {func(_, method, _, _ *string) {
			*method = fmt.Sprintf("type = \"aws\"\n    config = {\n      type = \"ec2\"\n      role = \"web\"\n      metadata_endpoint = \"http://127.0.0.1:%d\"\n    }", testkit.FreePort(t))
		}, []string{"FAIL metadata service: http://127.0.0.1:", "hop limit"}},
		"bad config": {func(_, method, _, _ *string) { *method = `type = "nosuch"` }, []string{"FAIL config:"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			rp := &doctor.Report{Out: &out}
			Run(context.Background(), Options{Configs: []string{setup(t, tc.edit)}, Getenv: func(string) string { return "" }}, rp)
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("no %q in:\n%s", w, out.String())
				}
			}
			if wantFail := name != "good"; (rp.Worst() == doctor.Fail) != wantFail {
				t.Errorf("worst = %v:\n%s", rp.Worst(), out.String())
			}
		})
	}
}

// A directory the agent will have by the time it writes is a warning, not
// a failure: systemd's RuntimeDirectory= before the first start, or a
// template's create_dest_dirs under a writable directory.
func TestCheckDestMissingDirectory(t *testing.T) {
	base := t.TempDir()
	runtimeDir = filepath.Join(base, "run", "latchkey") // does not exist
	t.Cleanup(func() { runtimeDir = "/run/latchkey" })
	readOnly := filepath.Join(base, "ro")
	testkit.Must(t, os.Mkdir(readOnly, 0o555))
	tests := map[string]struct {
		kind, path string
		createDirs bool
		want       string
	}{
		"sink in the runtime directory before the first start": {"sink", filepath.Join(runtimeDir, "token"), false, "WARN sink " + filepath.Join(runtimeDir, "token") + ": " + runtimeDir + " does not exist yet — fix: the unit's RuntimeDirectory="},
		"sink under a missing subdirectory of it":              {"sink", filepath.Join(runtimeDir, "a", "token"), false, "FAIL sink "},
		"sink in a missing directory":                          {"sink", filepath.Join(base, "nope", "token"), false, "FAIL sink "},
		"template with create_dest_dirs":                       {"template", filepath.Join(base, "new", "dir", "app.env"), true, "WARN template " + filepath.Join(base, "new", "dir", "app.env") + ": " + filepath.Join(base, "new", "dir") + " does not exist yet — fix: the agent creates it"},
		"template without create_dest_dirs":                    {"template", filepath.Join(base, "new", "app.env"), false, "FAIL template "},
		"template under the runtime directory":                 {"template", filepath.Join(runtimeDir, "x", "app.env"), true, "WARN template "},
	}
	if os.Geteuid() != 0 {
		// root writes into a 0555 directory: the case means something only for others.
		tests["template with create_dest_dirs under a read-only directory"] = struct {
			kind, path string
			createDirs bool
			want       string
		}{"template", filepath.Join(readOnly, "new", "app.env"), true, "is not writable"}
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			checkDest(tc.kind, tc.path, 0, tc.createDirs, nil, &doctor.Report{Out: &out})
			if !strings.Contains(out.String(), tc.want) {
				t.Errorf("got %q, want %q", out.String(), tc.want)
			}
		})
	}
}

// The ssh stanza's files are checked as sinks and templates are: the trust
// file sshd's TrustedUserCAKeys names, and each host key's certificate
// (a pattern's directory).
func TestDoctorSSHFiles(t *testing.T) {
	base := t.TempDir()
	p := setup(t, nil)
	testkit.Must(t, os.WriteFile(p, []byte(testkit.ReadFile(p)+fmt.Sprintf(`ssh {
  trusted_user_ca_keys = "%s/nope/trusted-user-ca-keys.pem"
  pinned_user_ca_keys  = "%s/pinned.pub"
  host_certificate {
    mount = "ssh-host"
    role  = "host"
    keys  = ["%s/ssh_host_*_key.pub"]
  }
}
`, base, base, base)), 0o600))
	var out bytes.Buffer
	Run(context.Background(), Options{Configs: []string{p}, Getenv: func(string) string { return "" }}, &doctor.Report{Out: &out})
	for _, want := range []string{
		"FAIL ssh trust file " + base + "/nope/trusted-user-ca-keys.pem: " + base + "/nope is not a directory",
		"OK   ssh host certificate " + base + "/ssh_host_*_key-cert.pub: " + base + " writable",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %q in:\n%s", want, out.String())
		}
	}
}

// A template that renders what Vault answers into a file every local user
// can read is a warning: perms unset (0644, as Vault Agent writes, or an
// existing file's mode) or set so; one with a private mode, or that renders
// no secret, says nothing of it.
func TestDoctorSecretsReadableByOthers(t *testing.T) {
	base := t.TempDir()
	testkit.Must(t, os.WriteFile(filepath.Join(base, "kept"), []byte("x"), 0o604))
	p := setup(t, nil)
	tmpl := func(dest, contents, perms string) string {
		return fmt.Sprintf("template {\n  contents = %q\n  destination = %q\n%s}\n", contents, filepath.Join(base, dest), perms)
	}
	secret := `{{ with secret "secret/data/app" }}{{ .Data.data.password }}{{ end }}`
	testkit.Must(t, os.WriteFile(p, []byte(testkit.ReadFile(p)+
		tmpl("default", secret, "")+
		tmpl("kept", secret, "")+
		tmpl("wide", `{{ with pkiCert "pki/issue/web" "common_name=a" }}{{ .Key }}{{ end }}`, "  perms = 0644\n")+
		tmpl("private", secret, "  perms = 0640\n")+
		tmpl("plain", "listen 443;", "")), 0o600))
	var out bytes.Buffer
	Run(context.Background(), Options{Configs: []string{p}, Getenv: func(string) string { return "" }}, &doctor.Report{Out: &out})
	warn := func(dest string) string {
		return "WARN template " + filepath.Join(base, dest) + ": renders what Vault answers (secret, pkiCert) into a file every local user can read ("
	}
	for _, want := range []string{
		warn("default") + "perms is not set: the agent writes 0644, as Vault Agent does)",
		warn("kept") + "perms is not set: the file keeps its mode, 0604)",
		warn("wide") + "perms = 0644)",
		"fix: set perms = 0600, or 0640 with group",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %q in:\n%s", want, out.String())
		}
	}
	for _, dest := range []string{"private", "plain"} {
		if strings.Contains(out.String(), warn(dest)) {
			t.Errorf("%s warned:\n%s", dest, out.String())
		}
	}
}

// The state directory as the agent takes it at its start: a symlink, or a
// directory or agent.lock of another user, or a lock that is no regular
// file, fail (the agent exits 3 on each, and the unit does not restart it);
// a lock file no process holds is fine, one held says by whom (an agent run
// by hand beside the service makes the service exit 6).
func TestDoctorStateDirAsTheAgentTakesIt(t *testing.T) {
	tests := map[string]struct {
		root  bool // gives a file away
		setup func(t *testing.T, stateDir string) (release func())
		want  []string
		fail  bool
	}{
		"symlink to a private directory": {setup: func(t *testing.T, stateDir string) func() {
			real := stateDir + ".real"
			testkit.Must(t, os.Rename(stateDir, real))
			testkit.Must(t, os.Symlink(real, stateDir))
			return nil
		}, want: []string{"FAIL state dir: ", " is a symlink (to ", "exits 3", "fix: set latchkey { state_dir } to the directory it leads to"}, fail: true},
		"directory of another user": {root: true, setup: func(t *testing.T, stateDir string) func() {
			testkit.Must(t, os.Chown(stateDir, 65534, 65534))
			return nil
		}, want: []string{"FAIL state dir: ", "owned by uid 65534, not by uid 0", "fix: chown 0 "}, fail: true},
		"lock file a symlink": {setup: func(t *testing.T, stateDir string) func() {
			testkit.Must(t, os.Symlink("/etc/passwd", filepath.Join(stateDir, "agent.lock")))
			return nil
		}, want: []string{"OK   state dir: ", "FAIL state lock ", "agent.lock: is not a regular file", "fix: rm "}, fail: true},
		"lock file a FIFO": {setup: func(t *testing.T, stateDir string) func() {
			testkit.Must(t, unix.Mkfifo(filepath.Join(stateDir, "agent.lock"), 0o600))
			return nil
		}, want: []string{"FAIL state lock ", "is not a regular file"}, fail: true},
		"lock file of another user": {root: true, setup: func(t *testing.T, stateDir string) func() {
			p := filepath.Join(stateDir, "agent.lock")
			testkit.WriteFile(t, p, "")
			testkit.Must(t, os.Chown(p, 65534, 65534))
			return nil
		}, want: []string{"FAIL state lock ", "is owned by uid 65534"}, fail: true},
		"lock left by a stopped agent": {setup: func(t *testing.T, stateDir string) func() {
			release, err := state.Dir{Path: stateDir}.Lock()
			testkit.Must(t, err)
			release()
			return nil
		}, want: []string{"OK   state dir: ", "OK   state lock ", "not held: no agent runs on this state directory"}},
		"lock held": {setup: func(t *testing.T, stateDir string) func() {
			release, err := state.Dir{Path: stateDir}.Lock()
			testkit.Must(t, err)
			return release
		}, want: []string{"state lock ", fmt.Sprintf("held by pid %d (", os.Getpid()), "exits 6"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if tc.root && os.Geteuid() != 0 {
				t.Skip("gives a file to another user: needs root (CI runs as root)")
			}
			var stateDir string
			p := setup(t, func(_, _, _, sd *string) { stateDir = *sd })
			if release := tc.setup(t, stateDir); release != nil {
				defer release()
			}
			var out bytes.Buffer
			rp := &doctor.Report{Out: &out}
			Run(context.Background(), Options{Configs: []string{p}, Getenv: func(string) string { return "" }}, rp)
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("no %q in:\n%s", w, out.String())
				}
			}
			var stateFail bool
			for _, r := range rp.Results {
				stateFail = stateFail || r.Status == doctor.Fail && strings.HasPrefix(r.Name, "state ")
			}
			if stateFail != tc.fail {
				t.Errorf("state checks fail: %v, want %v:\n%s", stateFail, tc.fail, out.String())
			}
		})
	}
}
