package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// ReadRegular reads regular files (through symlinks) and refuses, without
// blocking, everything else.
func TestReadRegular(t *testing.T) {
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(dir, "file"), []byte("content"), 0o600))
	must(os.Symlink(filepath.Join(dir, "file"), filepath.Join(dir, "link")))
	must(syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o600))
	must(os.Symlink(filepath.Join(dir, "fifo"), filepath.Join(dir, "fifolink")))
	tests := map[string]struct {
		path    string
		want    string
		wantErr error
	}{
		"regular file":      {path: filepath.Join(dir, "file"), want: "content"},
		"symlink to one":    {path: filepath.Join(dir, "link"), want: "content"},
		"FIFO":              {path: filepath.Join(dir, "fifo"), wantErr: ErrNotRegular},
		"symlink to a FIFO": {path: filepath.Join(dir, "fifolink"), wantErr: ErrNotRegular},
		"character device":  {path: "/dev/zero", wantErr: ErrNotRegular},
		"directory":         {path: dir, wantErr: ErrNotRegular},
		"missing":           {path: filepath.Join(dir, "missing"), wantErr: fs.ErrNotExist},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			b, err := ReadRegular(tc.path)
			switch {
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			case tc.wantErr == nil && (err != nil || string(b) != tc.want):
				t.Fatalf("got %q, %v; want %q", b, err, tc.want)
			}
		})
	}
}
