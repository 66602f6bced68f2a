//go:build darwin || freebsd

package admin

import "golang.org/x/sys/unix"

// peerCredUID reads LOCAL_PEERCRED: the credentials the peer had when it
// connected or listened.
func peerCredUID(fd int) (uint32, error) {
	cred, err := unix.GetsockoptXucred(fd, unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
	if err != nil {
		return 0, err
	}
	return cred.Uid, nil
}
