//go:build !unix

package bench

// raiseNoFile returns 0 (unknown): this platform has no RLIMIT_NOFILE
// (Windows limits handles per process far above what one bench opens),
// so the bench does not check the connection count against it.
func raiseNoFile() uint64 { return 0 }
