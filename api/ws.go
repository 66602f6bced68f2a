package api

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/chatctl/chatctl/api/chat"
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
// would ride its visitor's token, so it is refused.
func (s *Server) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if slices.Contains(s.cfg.WS.AllowedOrigins, origin) || slices.Contains(s.cfg.WS.AllowedOrigins, "*") {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && strings.EqualFold(u.Host, r.Host)
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
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return // gorilla has answered with the reason
		}
		s.hub.Serve(conn, chat.Identity{User: c.Subject, Expires: c.ExpiresAt.Time})
	})
}

// hubAuth re-verifies tokens sent in "auth" frames.
type hubAuth struct{ s *Server }

// Authenticate implements chat.Authenticator.
func (a hubAuth) Authenticate(_ context.Context, token string) (chat.Identity, error) {
	c, err := a.s.verify(token)
	if err != nil {
		return chat.Identity{}, err
	}
	return chat.Identity{User: c.Subject, Expires: c.ExpiresAt.Time}, nil
}

var _ chat.Store = hubStore{}

// hubStore adapts the bbolt store to chat.Store.
type hubStore struct {
	db *store.DB
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
	return chat.Message{Room: m.Room, ID: m.ID, From: m.From, Text: m.Text, TS: m.TS}, nil
}

// MessagesBefore implements chat.Store.
func (h hubStore) MessagesBefore(room string, before uint64, limit int) ([]chat.Message, error) {
	ms, err := h.db.MessagesBefore(room, before, limit)
	return fromStore(ms), err
}

// hubConfig maps ws.* and history.* onto the hub's limits.
func hubConfig(s *Server) chat.Config { return chat.ConfigFrom(s.cfg) }
