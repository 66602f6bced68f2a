package admin

import (
	"errors"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// PeerUID returns the uid of the process at the other end of the Unix
// socket connection c, from SO_PEERCRED (the credentials it had when it
// connected or listened).
func PeerUID(c net.Conn) (uid uint32, known bool, err error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0, false, errors.New("not a socket connection")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, false, err
	}
	var cred *unix.Ucred
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		cred, gerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return 0, false, err
	}
	if gerr != nil {
		return 0, false, gerr
	}
	return cred.Uid, true, nil
}
