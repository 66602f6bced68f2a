//go:build !unix

package store

// isReadOnlyFS reports whether err says the file system is mounted
// read-only; elsewhere such a file reports a permission error, which
// notWritable counts already.
func isReadOnlyFS(error) bool { return false }
