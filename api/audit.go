package api

import (
	"context"
	"net"
	"net/http"

	"github.com/chatctl/chatctl/admin"
)

// Who did an admin action, for the audit log: the /admin API records the
// admin's username and the client's address; the admin socket the
// operating-system user of the CLI process, from its credentials
// (SO_PEERCRED and the like, read when the connection is accepted).

// peerKey is the context key of an admin-socket connection's peer.
type peerKey struct{}

// peer is who is at the other end of an admin-socket connection.
type peer struct {
	uid   uint32
	known bool
}

// SocketConnContext is the http.Server ConnContext of the admin socket: it
// reads the peer's uid once per connection, for the audit log.
func (s *Server) SocketConnContext(ctx context.Context, c net.Conn) context.Context {
	uid, known, err := admin.PeerUID(c)
	return context.WithValue(ctx, peerKey{}, peer{uid: uid, known: known && err == nil})
}

// socketActor records the CLI's operating-system user as the actor of
// every admin call on the socket ("unknown" where the system cannot tell,
// or the listener was set up without SocketConnContext).
func socketActor(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := r.Context().Value(peerKey{}).(peer)
		a := admin.Actor{Name: admin.OSUser(p.uid, p.known), From: admin.FromSocket}
		next.ServeHTTP(w, r.WithContext(admin.WithActor(r.Context(), a)))
	})
}

// httpActor records the admin whose token requireAuth verified, and the
// client's address (X-Forwarded-For from trusted proxies), as the actor.
func (s *Server) httpActor(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := admin.Actor{From: clientAddr(r, s.proxies)}
		if c := claimsFrom(r.Context()); c != nil {
			a.Name = c.Subject
		}
		next.ServeHTTP(w, r.WithContext(admin.WithActor(r.Context(), a)))
	})
}
