package chat

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// maxIov bounds one writev (Linux's IOV_MAX); the rest of a longer batch
// goes to the slow path.
const maxIov = 1024

// newRawConn returns the descriptor access for the pool's non-blocking
// writes, or nil if nc has none (the connection then always uses the slow
// path).
func newRawConn(nc net.Conn) syscall.RawConn {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// rawWriter makes one non-blocking writev through a RawConn. It is reused by
// one pool goroutine, so its callback is bound once and a write allocates
// nothing.
type rawWriter struct {
	bufs [][]byte
	n    int
	err  error
	fn   func(fd uintptr) bool
}

// write writes what the socket takes of bufs without waiting and returns the
// byte count. A full socket is not an error: n is then short (maybe 0).
func (w *rawWriter) write(rc syscall.RawConn, bufs [][]byte) (int, error) {
	if w.fn == nil {
		w.fn = w.writev
	}
	w.bufs, w.n, w.err = bufs[:min(len(bufs), maxIov)], 0, nil
	err := rc.Write(w.fn) // takes the descriptor's write lock, like Write
	w.bufs = nil
	if err != nil {
		return 0, err
	}
	return w.n, w.err
}

// writev is the RawConn callback. It always reports done: returning false
// would make RawConn wait for the socket to drain, which is the slow path's
// job, not the pool's.
func (w *rawWriter) writev(fd uintptr) bool {
	for {
		n, err := unix.Writev(int(fd), w.bufs)
		switch err {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			n, err = 0, nil
		}
		w.n, w.err = max(n, 0), err
		return true
	}
}
