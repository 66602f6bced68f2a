//go:build !unix

package api

// fileLimit cannot read an open-file limit here; maxConns falls back to
// defaultMaxConns.
func fileLimit() (int, bool) { return 0, false }
