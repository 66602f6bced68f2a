//go:build unix

package bench

import "golang.org/x/sys/unix"

// raiseNoFile lifts this process's soft RLIMIT_NOFILE to the hard limit,
// since every connection is a file descriptor. (Go already does this at
// start-up on Linux since 1.19; doing it again costs nothing and covers a
// caller that lowered it.) It returns the limit in force, 0 when unknown.
func raiseNoFile() uint64 {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	if rl.Cur < rl.Max {
		want := rl
		want.Cur = rl.Max
		if unix.Setrlimit(unix.RLIMIT_NOFILE, &want) == nil {
			rl = want
		}
	}
	if rl.Cur < 0 { // RLIM_INFINITY where the field is signed
		return 0
	}
	return uint64(rl.Cur)
}
