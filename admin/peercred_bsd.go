//go:build darwin || freebsd

package admin

import (
	"errors"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// PeerUID returns the uid of the process at the other end of the Unix
// socket connection c, from LOCAL_PEERCRED.
func PeerUID(c net.Conn) (uid uint32, known bool, err error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0, false, errors.New("not a socket connection")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, false, err
	}
	var cred *unix.Xucred
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		cred, gerr = unix.GetsockoptXucred(int(fd), unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
	}); err != nil {
		return 0, false, err
	}
	if gerr != nil {
		return 0, false, gerr
	}
	return cred.Uid, true, nil
}
