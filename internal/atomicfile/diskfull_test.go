package atomicfile_test

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/latchkey/latchkey/internal/atomicfile"
	"github.com/latchkey/latchkey/test/testkit"
)

// A write that fails names the destination once, with the cause; the
// temporary file's name ("write x: write .x.tmp-123: …") is no help to
// whoever reads the log. On a full disk (a real tmpfs) the old file stays.
func TestWriteErrorNamesTheDestinationOnce(t *testing.T) {
	mnt := testkit.SmallTmpfs(t, 64<<10)
	path := filepath.Join(mnt, "secret.txt")
	testkit.Must(t, atomicfile.WriteFile(path, []byte("old"), atomicfile.Owner(0o600)))
	free := testkit.FillDisk(t, mnt)
	defer free()
	tests := map[string]struct {
		write func() error
		want  string
		is    error
	}{
		"disk full": {
			write: func() error { return atomicfile.WriteFile(path, make([]byte, 256<<10), atomicfile.Owner(0o600)) },
			want:  "write " + path + ": no space left on device",
			is:    syscall.ENOSPC,
		},
		"another operation on the temporary file keeps its name": {
			write: func() error {
				return atomicfile.Write(path, atomicfile.Owner(0o600), func(w io.Writer) error {
					return &fs.PathError{Op: "seek", Path: w.(*os.File).Name(), Err: syscall.ESPIPE}
				})
			},
			want: "write " + path + ": seek: illegal seek",
			is:   syscall.ESPIPE,
		},
		"a missing directory is named, not the temporary file tried in it": {
			write: func() error {
				return atomicfile.WriteFile(filepath.Join(mnt, "gone", "x"), []byte("x"), atomicfile.Owner(0o600))
			},
			want: "write " + filepath.Join(mnt, "gone", "x") + ": create a temporary file in " + filepath.Join(mnt, "gone") + ": no such file or directory",
			is:   fs.ErrNotExist,
		},
		"an error about another file is kept whole": {
			write: func() error {
				return atomicfile.Write(path, atomicfile.Owner(0o600), func(io.Writer) error {
					return &fs.PathError{Op: "open", Path: "/etc/source.tmpl", Err: syscall.ENOENT}
				})
			},
			want: "write " + path + ": open /etc/source.tmpl: no such file or directory",
			is:   fs.ErrNotExist,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tc.write()
			if err == nil || err.Error() != tc.want {
				t.Fatalf("error = %v, want %q", err, tc.want)
			}
			if !errors.Is(err, tc.is) {
				t.Errorf("errors.Is(%v, %v) = false", err, tc.is)
			}
			b, rerr := os.ReadFile(path)
			testkit.Must(t, rerr)
			if string(b) != "old" {
				t.Errorf("content = %q, want the old one", b)
			}
			ents, _ := os.ReadDir(mnt)
			for _, e := range ents {
				if strings.Contains(e.Name(), ".tmp") {
					t.Errorf("temporary file %s left behind", e.Name())
				}
			}
		})
	}
}
