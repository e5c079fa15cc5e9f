package appendfile_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/latchkey/latchkey/internal/appendfile"
	"github.com/latchkey/latchkey/test/testkit"
)

// lines is n bytes of whole lines of 64 bytes (the last one shorter when
// n is not a multiple), each ending in '\n'.
func lines(n int) string {
	var b strings.Builder
	for b.Len() < n {
		l := min(64, n-b.Len())
		b.WriteString(strings.Repeat("o", l-1) + "\n")
	}
	return b.String()
}

// A record written in part on a full disk (a real, nearly full tmpfs: the
// file's last page has some room, the file system none) is cut off again,
// so that the file holds whole lines only and the next record starts a
// line of its own; unless another writer appended in between, when the
// partial line stays and the error says so. The error names the file,
// never the line.
func TestWriteLineOnAFullDisk(t *testing.T) {
	page := os.Getpagesize()
	const other = "another writer's line\n"
	tests := map[string]struct {
		before   int    // bytes of whole lines in the file before the write
		line     int    // length of the line written
		appended bool   // another writer appends after the short write
		wantErr  string // "" : none
		partial  bool   // the file keeps the partial line (and the other's)
	}{
		"room in the last page":       {before: 100, line: 200},
		"short write, cut back":       {before: 100, line: 2 * page, wantErr: "the partial line was removed"},
		"no room at all":              {before: page, line: 200, wantErr: "no space left on device"},
		"another writer appended too": {before: 100, line: 2 * page, appended: true, partial: true, wantErr: "the partial line is left in the file: it is"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			mnt := testkit.SmallTmpfs(t, 64<<10)
			path := filepath.Join(mnt, "audit.log")
			old := lines(tc.before)
			testkit.Must(t, os.WriteFile(path, []byte(old), 0o640))
			free := testkit.FillDisk(t, mnt)
			freed := false
			defer func() {
				if !freed {
					free()
				}
			}()
			line := strings.Repeat("R", tc.line-1) + "\n"
			if tc.appended {
				appendfile.SetAfterWrite(func() {
					free()
					freed = true
					testkit.Must(t, appendOther(path, other))
				})
				defer appendfile.SetAfterWrite(nil)
			}
			f, err := appendfile.Open(path, 0o640)
			testkit.Must(t, err)
			err = appendfile.WriteLine(f, []byte(line))
			testkit.Must(t, f.Close())
			b, rerr := os.ReadFile(path)
			testkit.Must(t, rerr)
			got := string(b)

			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("error = %v, want none", err)
			case tc.wantErr == "":
				if got != old+line {
					t.Fatalf("file holds %d bytes, want the %d before and the line", len(got), len(old))
				}
				return
			case err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), path):
				t.Fatalf("error = %v, want it to name %s and say %q", err, path, tc.wantErr)
			case !errors.Is(err, syscall.ENOSPC):
				t.Errorf("errors.Is(%v, ENOSPC) = false", err)
			case strings.Contains(err.Error(), "RRRR"):
				t.Errorf("the error holds the line: %v", err)
			}
			if tc.partial {
				// The documented case: left as it is, nothing of the
				// other writer's lost.
				if !strings.HasPrefix(got, old+"RRRR") || !strings.HasSuffix(got, "R"+other) {
					t.Fatalf("file = %q..., want the old lines, the partial line and the other writer's", got[:min(len(got), 200)])
				}
				return
			}
			if got != old {
				t.Fatalf("file holds %d bytes (ends %q), want only the %d bytes of whole lines before", len(got), got[max(0, len(got)-20):], len(old))
			}
			// The next record, once there is room, starts its own line.
			free()
			freed = true
			f, err = appendfile.Open(path, 0o640)
			testkit.Must(t, err)
			testkit.Must(t, appendfile.WriteLine(f, []byte("next\n")))
			testkit.Must(t, f.Close())
			if got := testkit.ReadFile(path); got != old+"next\n" {
				t.Errorf("after the next write the file ends %q, want the old lines and \"next\\n\"", got[max(0, len(got)-20):])
			}
		})
	}
}

// appendOther appends s to path through a descriptor of its own, as
// another login's helper would.
func appendOther(path, s string) error {
	f, err := appendfile.Open(path, 0o640)
	if err != nil {
		return err
	}
	_, err = f.WriteString(s)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
