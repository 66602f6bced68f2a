package admin

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
)

// ErrUntrustedSocket is returned when the admin socket, or the process
// answering on it, could belong to another user. The CLI then sends
// nothing: passwords go only to a server of the same user (or root).
var ErrUntrustedSocket = errors.New("untrusted admin socket")

// socketStat is what the trust check needs of the socket file.
type socketStat struct {
	mode  fs.FileMode // from lstat: a symlink shows as one
	uid   uint32
	known bool // uid is known (Unix)
}

// trustedUID reports whether a file or peer owned by uid may be trusted:
// our own effective uid, or root (who could read the store anyway).
func trustedUID(uid, me uint32) bool { return uid == me || uid == 0 }

// TrustedUID reports whether a peer running as uid may use the admin
// socket: the server's own effective uid, or root.
func TrustedUID(uid uint32) bool { return trustedUID(uid, euid()) }

// checkSocketStat is the file check of CheckSocket on a stat result, so
// that the rules can be tested without other users' files. me is our
// effective uid.
func checkSocketStat(path string, st socketStat, me uint32) error {
	switch {
	case st.mode&fs.ModeSymlink != 0:
		return fmt.Errorf("%w %s: is a symbolic link; refusing to follow it", ErrUntrustedSocket, path)
	case st.mode&fs.ModeSocket == 0:
		return fmt.Errorf("%w %s: not a socket (mode %s)", ErrUntrustedSocket, path, st.mode)
	case st.known && !trustedUID(st.uid, me):
		return fmt.Errorf("%w %s: owned by uid %d, not by you (uid %d) or root; refusing to send anything to it", ErrUntrustedSocket, path, st.uid, me)
	case st.known && st.mode.Perm()&0o022 != 0:
		return fmt.Errorf("%w %s: writable by group or others (mode %04o, owner uid %d); refusing to send anything to it", ErrUntrustedSocket, path, st.mode.Perm(), st.uid)
	}
	return nil
}

// CheckSocket checks the admin socket file at path before anything is
// sent to it: not a symlink (lstat), a socket, owned by us or root and
// not writable by group or others. A missing file is fs.ErrNotExist.
func CheckSocket(path string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	st := socketStat{mode: fi.Mode()}
	st.uid, st.known = fileOwner(fi)
	if !unixModes && st.mode&fs.ModeSymlink == 0 {
		return nil // nothing more can be told here
	}
	return checkSocketStat(absPath(path), st, euid())
}

// peerUIDFunc reports the uid of the process at the other end of a Unix
// socket connection; known is false where the system cannot tell.
type peerUIDFunc func(c net.Conn) (uid uint32, known bool, err error)

// checkPeerWith refuses a connection whose peer is another user.
func checkPeerWith(c net.Conn, peerUID peerUIDFunc, path string) error {
	uid, known, err := peerUID(c)
	if err != nil {
		return fmt.Errorf("%w %s: reading the peer's credentials: %v", ErrUntrustedSocket, path, err)
	}
	if known && !trustedUID(uid, euid()) {
		return fmt.Errorf("%w %s: the process answering runs as uid %d, not as you (uid %d) or root; refusing to send anything to it", ErrUntrustedSocket, path, uid, euid())
	}
	return nil
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}
