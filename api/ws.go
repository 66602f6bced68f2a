package api

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/chatctl/chatctl/api/chat"
	"github.com/chatctl/chatctl/auth"
	"github.com/chatctl/chatctl/store"
)

// upgrader keeps per-connection memory small: a 512-byte read buffer of
// its own (frames larger than that are read in pieces), and write buffers
// borrowed from a pool only while a frame is being written.
func (s *Server) upgrader() *websocket.Upgrader {
	return &websocket.Upgrader{
		ReadBufferSize:  512,
		WriteBufferSize: 1024,
		WriteBufferPool: &sync.Pool{},
		// Origin is checked before the upgrade (checkOrigin), where a
		// refusal can still be a JSON answer.
		CheckOrigin: func(*http.Request) bool { return true },
	}
}

// checkOrigin allows requests without Origin (non-browser clients), from
// the server's own origin, and from ws.allowed_origins. Any other page
// would ride its visitor's token, so it is refused. Origins are compared
// as RFC 6454 defines them: scheme, host and port, case-insensitively, with
// the scheme's default port filled in (https://a.example is
// https://a.example:443, and neither is http://a.example or
// https://a.example:8443).
func (s *Server) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	allowed := s.live.Load().wsOrigins // a reload may change it
	if slices.Contains(allowed, "*") {
		return true
	}
	o, ok := parseOrigin(origin)
	if !ok {
		return false // "null" (sandboxed pages, file: URLs) or garbage
	}
	for _, a := range allowed {
		if ao, ok := parseOrigin(a); ok && ao == o {
			return true
		}
	}
	return o == s.ownOrigin(r)
}

// origin is a web origin: the tuple RFC 6454 compares.
type origin struct{ scheme, host, port string }

// parseOrigin parses an http or https origin; a path of "/" is tolerated
// (config entries), anything else is not an origin.
func parseOrigin(v string) (origin, bool) {
	u, err := url.Parse(v)
	if err != nil || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return origin{}, false
	}
	return hostOrigin(u.Scheme, u.Host)
}

// hostOrigin makes an origin of a scheme and a Host header value.
func hostOrigin(scheme, hostport string) (origin, bool) {
	o := origin{scheme: strings.ToLower(scheme)}
	switch o.scheme {
	case "http":
		o.port = "80"
	case "https":
		o.port = "443"
	default:
		return origin{}, false
	}
	u := url.URL{Host: hostport}
	o.host = strings.ToLower(u.Hostname())
	if p := u.Port(); p != "" {
		o.port = p
	}
	return o, o.host != ""
}

// ownOrigin is the origin a page served by this server has: the scheme
// the request came in on and its Host. Behind a trusted proxy (see
// trusted_proxies), X-Forwarded-Proto and X-Forwarded-Host say what the
// browser used.
func (s *Server) ownOrigin(r *http.Request) origin {
	scheme, host := "http", r.Host
	if r.TLS != nil {
		scheme = "https"
	}
	if s.fromTrustedProxy(r) {
		if p := firstValue(r.Header.Get("X-Forwarded-Proto")); p != "" {
			scheme = p
		}
		if h := firstValue(r.Header.Get("X-Forwarded-Host")); h != "" {
			host = h
		}
	}
	o, _ := hostOrigin(scheme, host)
	return o
}

// fromTrustedProxy reports whether the request's peer is a trusted proxy.
func (s *Server) fromTrustedProxy(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	return err == nil && isTrusted(peer, s.proxies)
}

// firstValue returns the first entry of a comma-separated header value
// (the one the first proxy added), trimmed.
func firstValue(v string) string {
	v, _, _ = strings.Cut(v, ",")
	return strings.TrimSpace(v)
}

// handleWS authenticates and checks the origin while it can still answer
// in HTTP, then hands the upgraded connection to the hub.
func (s *Server) handleWS() http.Handler {
	up := s.upgrader()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.hub == nil {
			errBody(w, http.StatusServiceUnavailable, "chat is not running")
			return
		}
		tok := bearer(r)
		if tok == "" {
			tok = r.URL.Query().Get("token") // browsers cannot set headers on WebSockets
		}
		c, ok := s.authenticate(w, tok)
		if !ok {
			return
		}
		if !s.checkOrigin(r) {
			errBody(w, http.StatusForbidden, "Origin not allowed")
			return
		}
		if !websocket.IsWebSocketUpgrade(r) {
			errBody(w, http.StatusBadRequest, "expected a WebSocket upgrade request")
			return
		}
		if !r.ProtoAtLeast(1, 1) {
			// RFC 6455 §4.2.1: the opening handshake is an HTTP/1.1 GET.
			// gorilla would answer an HTTP/1.0 one with 101.
			errBody(w, http.StatusBadRequest, "a WebSocket upgrade needs HTTP/1.1")
			return
		}
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return // gorilla has answered with the reason
		}
		if f := s.beforeServe.Load(); f != nil {
			(*f)()
		}
		s.hub.Serve(conn, identity(c))
		// A revocation that committed between the check above and the
		// hub's registering the connection found nothing to close. Every
		// later one finds it, and the token's state now shows an earlier
		// one: one more check (in memory) closes that gap.
		if revokedSince(s.tokens.Verify(tok)) {
			s.hub.Revoke(chat.Revoked{JTI: c.ID})
		}
	})
}

// revokedSince reports whether a token that verified a moment ago fails
// now because it was revoked (rather than because it expired meanwhile).
func revokedSince(_ *auth.Claims, err error) bool {
	switch auth.ReasonOf(err) {
	case auth.ReasonRevoked, auth.ReasonUserDisabled, auth.ReasonUserRemoved, auth.ReasonUnknownKey:
		return true
	}
	return false
}

// hubAuth re-verifies tokens sent in "auth" frames.
type hubAuth struct{ s *Server }

// Authenticate implements chat.Authenticator.
func (a hubAuth) Authenticate(_ context.Context, token string) (chat.Identity, error) {
	c, err := a.s.verify(token)
	if err != nil {
		return chat.Identity{}, err
	}
	return identity(c), nil
}

// identity is what the hub keeps of a verified token.
func identity(c *auth.Claims) chat.Identity {
	return chat.Identity{User: c.Subject, Expires: c.ExpiresAt.Time, JTI: c.ID, Session: c.Sid, Kid: c.Kid,
		Admin: c.Role == auth.RoleAdmin}
}

var _ chat.Store = hubStore{}

// hubStore adapts the bbolt store to chat.Store.
type hubStore struct {
	db store.Store
	m  *metrics
}

func fromStore(ms []store.Message) []chat.Message {
	out := make([]chat.Message, len(ms))
	for i, m := range ms {
		out[i] = chat.Message{Room: m.Room, ID: m.ID, From: m.From, Text: m.Text, TS: m.TS}
	}
	return out
}

// AppendMessage implements chat.Store.
func (h hubStore) AppendMessage(ctx context.Context, room, from, text string, ts time.Time) (chat.Message, error) {
	m, err := h.db.AppendMessage(ctx, room, from, text, ts)
	if err != nil {
		return chat.Message{}, err
	}
	h.m.messages.Inc()
	return chat.Message{Room: m.Room, ID: m.ID, From: m.From, Text: m.Text, TS: m.TS, Epoch: m.Epoch}, nil
}

// Epoch implements chat.Store.
func (h hubStore) Epoch(room string) (string, error) { return h.db.RoomEpoch(room) }

// MessagesBefore implements chat.Store.
func (h hubStore) MessagesBefore(room string, before uint64, limit int) ([]chat.Message, error) {
	ms, err := h.db.MessagesBefore(room, before, limit)
	return fromStore(ms), err
}

var _ chat.HeadStore = hubStore{}

// Heads implements chat.HeadStore.
func (h hubStore) Heads(rooms []string) (map[string]chat.Head, error) {
	hs, err := h.db.Heads(rooms)
	if err != nil {
		return nil, err
	}
	out := make(map[string]chat.Head, len(hs))
	for name, hd := range hs {
		out[name] = chat.Head{LastID: hd.LastID, Epoch: hd.Epoch}
	}
	return out, nil
}

// hubConfig maps ws.* and history.* onto the hub's limits.
func hubConfig(s *Server) chat.Config { return chat.ConfigFrom(s.cfg) }
