//go:build linux || darwin || freebsd

package admin

import (
	"errors"
	"net"
	"syscall"
)

// PeerUID returns the uid of the process at the other end of the Unix
// socket connection c, from the kernel's record of the peer's credentials
// (peerCredUID: SO_PEERCRED on Linux, LOCAL_PEERCRED on macOS and FreeBSD).
func PeerUID(c net.Conn) (uid uint32, known bool, err error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0, false, errors.New("not a socket connection")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, false, err
	}
	var gerr error
	if err := rc.Control(func(fd uintptr) { uid, gerr = peerCredUID(int(fd)) }); err != nil {
		return 0, false, err
	}
	if gerr != nil {
		return 0, false, gerr
	}
	return uid, true, nil
}
