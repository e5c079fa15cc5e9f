package writers

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestForeignAndDirs(t *testing.T) {
	root := os.Geteuid() == 0
	tests := map[string]struct {
		mode, dirMode os.FileMode
		owner, group  int // of the file (-1: unchanged)
		needRoot      bool
		wantFile      string // Foreign of the file
		wantDir       string // Dirs' why
	}{
		"0644 in 0700":         {mode: 0o644, dirMode: 0o700, owner: -1, group: -1},
		"world-writable file":  {mode: 0o666, dirMode: 0o700, owner: -1, group: -1, wantFile: "is writable by every user (mode 0666)"},
		"other group writable": {mode: 0o660, dirMode: 0o700, owner: -1, group: 65534, needRoot: true, wantFile: "is writable by group 65534 (mode 0660)"},
		"other owner":          {mode: 0o600, dirMode: 0o700, owner: 65534, group: -1, needRoot: true, wantFile: "is owned by uid 65534"},
		"world-writable dir":   {mode: 0o644, dirMode: 0o777, owner: -1, group: -1, wantDir: "is writable by every user (mode 0777)"},
		"sticky world dir":     {mode: 0o644, dirMode: 0o777 | os.ModeSticky, owner: -1, group: -1},
		"own group, 0664 file": {mode: 0o664, dirMode: 0o700, owner: -1, group: -1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if tc.needRoot && !root {
				t.Skip("needs root to give a file away")
			}
			dir := filepath.Join(t.TempDir(), "d")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			f := filepath.Join(dir, "f")
			if err := os.WriteFile(f, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			must(t, os.Chmod(f, tc.mode))
			must(t, os.Chown(f, tc.owner, tc.group))
			must(t, os.Chmod(dir, tc.dirMode))
			fi, err := os.Stat(f)
			must(t, err)
			if got := Foreign(fi); got != tc.wantFile {
				t.Errorf("Foreign(file) = %q, want %q", got, tc.wantFile)
			}
			if tc.wantFile != "" && !strings.HasPrefix(Fix(fi, f), "ch") {
				t.Errorf("Fix = %q", Fix(fi, f))
			}
			d, why, fix, err := Dirs(f)
			must(t, err)
			if why != tc.wantDir || (why != "" && (d != dir || fix != "chmod go-w "+dir)) {
				t.Errorf("Dirs = %q %q %q, want %q at %s", d, why, fix, tc.wantDir, dir)
			}
		})
	}
	if _, _, _, err := Dirs(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("Dirs of a missing file: no error")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// resolve resolves as the kernel (and filepath.EvalSymlinks) does, and
// lists every link it went through.
func TestResolve(t *testing.T) {
	base := t.TempDir()
	real := filepath.Join(base, "real")
	must(t, os.MkdirAll(filepath.Join(real, "sub"), 0o700))
	must(t, os.WriteFile(filepath.Join(real, "sub", "f"), nil, 0o600))
	must(t, os.Symlink("real/sub", filepath.Join(base, "rel")))                 // relative
	must(t, os.Symlink(filepath.Join(real, "sub"), filepath.Join(base, "abs"))) // absolute
	must(t, os.Symlink("../sub/f", filepath.Join(real, "sub", "up")))           // with ..
	must(t, os.Symlink("rel", filepath.Join(base, "chain")))                    // a link to a link
	must(t, os.Symlink("loop", filepath.Join(base, "loop")))
	tests := map[string]struct {
		path  string
		links int
		err   bool
	}{
		"no link":            {path: filepath.Join(real, "sub", "f")},
		"relative dir link":  {path: filepath.Join(base, "rel", "f"), links: 1},
		"absolute dir link":  {path: filepath.Join(base, "abs", "f"), links: 1},
		"link with ..":       {path: filepath.Join(real, "sub", "up"), links: 1},
		"chain of links":     {path: filepath.Join(base, "chain", "up"), links: 3},
		"dot dot after link": {path: filepath.Join(base, "rel") + "/../sub/f", links: 1},
		"a loop":             {path: filepath.Join(base, "loop"), err: true},
		"missing":            {path: filepath.Join(base, "rel", "nope"), err: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, links, err := resolve(tc.path)
			if tc.err {
				if err == nil {
					t.Fatalf("resolve(%s) = %s, want an error", tc.path, got)
				}
				return
			}
			must(t, err)
			want, err := filepath.EvalSymlinks(tc.path)
			must(t, err)
			if got != want || len(links) != tc.links {
				t.Errorf("resolve(%s) = %s with %d links %v, want %s with %d", tc.path, got, len(links), links, want, tc.links)
			}
		})
	}
}
