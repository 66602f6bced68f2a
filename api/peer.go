package api

import (
	"log/slog"
	"net"

	"github.com/chatctl/chatctl/admin"
)

// peerListener is the admin socket's listener: it closes, before reading
// a byte, every connection whose peer runs as another user than the
// server (or root). The socket file's mode 0600 already keeps others
// out; this holds even if the file's mode or folder were loosened.
type peerListener struct {
	net.Listener
	// peerUID reads the peer's credentials (admin.PeerUID; a seam for
	// tests). known false means the system cannot tell: accepted.
	peerUID func(net.Conn) (uid uint32, known bool, err error)
	log     *slog.Logger
}

// Accept returns the next connection from a trusted peer.
func (l *peerListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		uid, known, err := l.peerUID(c)
		if err == nil && (!known || admin.TrustedUID(uid)) {
			return c, nil
		}
		if err != nil {
			l.log.Warn("admin socket: refused a connection whose credentials cannot be read", "err", err)
		} else {
			l.log.Warn("admin socket: refused a connection from another user", "uid", uid)
		}
		c.Close()
	}
}
