package admin

import (
	"errors"
	"syscall"
)

// wsaEAFNOSUPPORT is Winsock's "address family not supported", which
// socket(AF_UNIX, …) returns before Windows 10 version 1803.
const wsaEAFNOSUPPORT = syscall.Errno(10047)

// isNoAFUnix reports whether err says the system has no AF_UNIX.
func isNoAFUnix(err error) bool {
	return errors.Is(err, wsaEAFNOSUPPORT) || errors.Is(err, syscall.EAFNOSUPPORT)
}
