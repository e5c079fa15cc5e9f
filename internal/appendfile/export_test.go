package appendfile

// SetAfterWrite sets the hook that runs between a short write and the
// check of who else appended, for the external tests; nil removes it.
func SetAfterWrite(f func()) { afterWrite = f }
