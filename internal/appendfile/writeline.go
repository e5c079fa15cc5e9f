package appendfile

import (
	"fmt"
	"io"
	"os"
)

// afterWrite, when set (tests only), runs between a short write and the
// check of who else appended: it stands in for another writer.
var afterWrite func()

// WriteLine appends line, one whole record ending in '\n', to f (opened by
// Open, so with O_APPEND) in one write. What it returns:
//
//   - nil: the whole line was written.
//   - The write's error (naming f), when it wrote nothing: the file is as
//     it was.
//   - On a short write (0 < n < len(line): ENOSPC or EDQUOT part way
//     through), an error wrapping the write's that says the partial line
//     was removed: the file was cut back (ftruncate) to where this write
//     began, so that the next record does not land on the end of a partial
//     one and make one corrupt line of two records, which log shippers drop
//     or misparse. That is done only when nobody appended since: the
//     file's size (fstat) is still the offset our write ended at
//     (Seek(0, io.SeekCurrent), which O_APPEND left at the end of our own
//     bytes).
//   - On a short write after which the file is not as our write left it (a
//     writer on another descriptor appended, or rotated the file), or
//     whose clean-up failed: an error wrapping the write's that says the
//     partial line was left in the file, and why. Cutting the file then
//     would take the other writer's record with ours.
//
// The race that remains: another writer that appends between the fstat
// and the ftruncate (a window of two system calls, without a lock the
// other writers would not take) has its record cut off with our partial
// one. On a full disk such an append mostly fails anyway; it is not
// detected. Errors name f's file and the byte counts, never the line.
func WriteLine(f *os.File, line []byte) error {
	n, err := f.Write(line)
	if err == nil || n <= 0 || n >= len(line) {
		return err
	}
	what := fmt.Sprintf("%d of %d bytes", n, len(line))
	if afterWrite != nil {
		afterWrite()
	}
	end, serr := f.Seek(0, io.SeekCurrent)
	if serr != nil {
		return fmt.Errorf("%w (wrote %s; the partial line is left in the file: %v)", err, what, serr)
	}
	fi, serr := f.Stat()
	if serr != nil {
		return fmt.Errorf("%w (wrote %s; the partial line is left in the file: %v)", err, what, serr)
	}
	if fi.Size() != end {
		return fmt.Errorf("%w (wrote %s; the partial line is left in the file: it is %d bytes now, not the %d this write ended at, so another writer changed it since)",
			err, what, fi.Size(), end)
	}
	if terr := f.Truncate(end - int64(n)); terr != nil {
		return fmt.Errorf("%w (wrote %s; the partial line is left in the file: %v)", err, what, terr)
	}
	return fmt.Errorf("%w (wrote %s; the partial line was removed)", err, what)
}
