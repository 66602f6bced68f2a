//go:build !windows

package admin

import (
	"errors"
	"syscall"
)

// isNoAFUnix reports whether err says the system has no AF_UNIX.
func isNoAFUnix(err error) bool { return errors.Is(err, syscall.EAFNOSUPPORT) }
