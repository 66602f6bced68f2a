//go:build unix

package api

import "golang.org/x/sys/unix"

// fileLimit returns the process's open-file limit (RLIMIT_NOFILE, which
// Go raises to the hard limit at start).
func fileLimit() (int, bool) {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil || rl.Cur <= 0 {
		return 0, false
	}
	if uint64(rl.Cur) > 1<<30 { // "unlimited"
		return 1 << 30, true
	}
	return int(rl.Cur), true
}
