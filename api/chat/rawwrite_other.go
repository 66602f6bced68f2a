//go:build !linux

package chat

import (
	"errors"
	"net"
	"syscall"
)

// rawWritesSupported tells whether the pool can write to descriptors here.
const rawWritesSupported = false

// newRawConn returns nil: the pool's non-blocking write is Linux-only, so
// elsewhere every connection uses the slow path (its own writer goroutine).
func newRawConn(net.Conn) syscall.RawConn { return nil }

// rawWriter is never used off Linux (every client's raw is nil).
type rawWriter struct{}

func (*rawWriter) write(syscall.RawConn, [][]byte) (int, error) {
	return 0, errors.New("chat: raw writes unsupported")
}
