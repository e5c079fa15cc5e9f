package state

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type rec struct {
	InstanceID string `json:"instance_id"`
	Nonce      string `json:"nonce"`
}

func TestSaveLoad(t *testing.T) {
	d := Dir{Path: filepath.Join(t.TempDir(), "latchkey")}
	var got rec
	if found, err := d.Load("aws-ec2-auth_aws", &got); found || err != nil {
		t.Fatalf("empty dir: found=%v err=%v", found, err)
	}
	want := rec{InstanceID: "i-0abc", Nonce: "n1"}
	if err := d.Save("aws-ec2-auth_aws", want); err != nil {
		t.Fatal(err)
	}
	if found, err := d.Load("aws-ec2-auth_aws", &got); !found || err != nil || got != want {
		t.Fatalf("Load = %+v found=%v err=%v", got, found, err)
	}
	checkMode(t, d.Path, 0o700)
	checkMode(t, filepath.Join(d.Path, "aws-ec2-auth_aws.json"), 0o600)
}

// A state directory that exists with a looser mode (created by hand, or by
// an older package) is tightened on the next save.
func TestSaveTightensDir(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(p, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := (Dir{Path: p}).Save("x", rec{Nonce: "n"}); err != nil {
		t.Fatal(err)
	}
	checkMode(t, p, 0o700)
}

func TestErrors(t *testing.T) {
	d := Dir{Path: t.TempDir()}
	if err := os.WriteFile(filepath.Join(d.Path, "bad.json"), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	var r rec
	tests := map[string]func() error{
		"corrupt record": func() error { _, err := d.Load("bad", &r); return err },
		"path separator": func() error { return d.Save("../escape", r) },
		"empty name":     func() error { _, err := d.Load("", &r); return err },
		"no directory":   func() error { return Dir{}.Save("x", r) },
	}
	for name, f := range tests {
		t.Run(name, func(t *testing.T) {
			if err := f(); err == nil {
				t.Fatal("no error")
			}
		})
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(d.Path), "escape.json")); err == nil {
		t.Error("a record was written outside the state directory")
	}
	// The corrupt file is reported with its path, not silently replaced.
	_, err := d.Load("bad", &r)
	if !strings.Contains(err.Error(), filepath.Join(d.Path, "bad.json")) {
		t.Errorf("error does not name the file: %v", err)
	}
}

func checkMode(t *testing.T, p string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != want {
		t.Errorf("%s: mode %v, want %v", p, fi.Mode().Perm(), want)
	}
}

func TestNamesAndRemove(t *testing.T) {
	d := Dir{Path: filepath.Join(t.TempDir(), "state")}
	if names, err := d.Names("aws-"); err != nil || len(names) != 0 {
		t.Fatalf("missing dir: %v %v", names, err)
	}
	for _, n := range []string{"aws-b", "aws-a", "alicloud-identity"} {
		if err := d.Save(n, rec{Nonce: n}); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(d.Path, "aws-notes.txt"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		prefix string
		want   string
	}{
		{"aws-", "aws-a aws-b"},
		{"", "alicloud-identity aws-a aws-b"},
		{"gcp-", ""},
	}
	for _, tc := range tests {
		names, err := d.Names(tc.prefix)
		if err != nil || strings.Join(names, " ") != tc.want {
			t.Errorf("Names(%q) = %v %v, want %s", tc.prefix, names, err, tc.want)
		}
	}
	if err := d.Remove("aws-a"); err != nil {
		t.Fatal(err)
	}
	if err := d.Remove("aws-a"); err != nil {
		t.Errorf("removing a missing record: %v", err)
	}
	if err := d.Remove("../aws-b"); err == nil {
		t.Error("a name with a path separator was removed")
	}
	if names, _ := d.Names("aws-"); strings.Join(names, " ") != "aws-b" {
		t.Errorf("after Remove: %v", names)
	}
}
