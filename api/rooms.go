package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/chatctl/chatctl/access"
	"github.com/chatctl/chatctl/api/chat"
	"github.com/chatctl/chatctl/auth"
	"github.com/chatctl/chatctl/store"
)

// Rooms as users see them (SPEC §8): the access table the hub keeps in
// memory, the store side of read state and the directory, and GET /rooms.

var _ chat.RoomStore = hubStore{}

// SetReadMarker implements chat.RoomStore.
func (h hubStore) SetReadMarker(user, room string, id uint64) (uint64, bool, error) {
	m, err := h.db.SetReadMarker(user, room, id)
	return m.ID, m.Moved, err
}

// ReadMarkers implements chat.RoomStore.
func (h hubStore) ReadMarkers(user string) (map[string]uint64, error) { return h.db.ReadMarkers(user) }

// MessagesAfter implements chat.RoomStore.
func (h hubStore) MessagesAfter(room string, after uint64, limit int) ([]chat.Message, error) {
	ms, err := h.db.MessagesAfter(room, after, limit)
	return fromStore(ms), err
}

// RoomList implements chat.RoomStore: the rooms with history, with the
// time of each one's newest message (one short read per room; the
// directory is asked for rarely, never per message).
func (h hubStore) RoomList() ([]chat.RoomSummary, error) {
	rooms, err := h.db.Rooms()
	if err != nil {
		return nil, err
	}
	out := make([]chat.RoomSummary, 0, len(rooms))
	for _, r := range rooms {
		s := chat.RoomSummary{Name: r.Name, LastID: r.LastID}
		if r.LastID > 0 {
			ms, err := h.db.MessagesBefore(r.Name, 0, 1)
			if err != nil {
				return nil, err
			}
			if len(ms) > 0 {
				s.LastTS = ms[0].TS
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// UserExists implements chat.RoomStore (users are cached by the store).
func (h hubStore) UserExists(name string) (bool, error) {
	_, err := h.db.User(name)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// loadAccess builds the hub's access table from the store's rules and
// private rooms and rooms.default_access.
func (s *Server) loadAccess() (*access.Table, error) {
	db := s.svc.DB()
	rules, err := db.AccessRules()
	if err != nil {
		return nil, err
	}
	private, err := db.PrivateRooms()
	if err != nil {
		return nil, err
	}
	rs := make([]access.Rule, len(rules))
	for i, r := range rules {
		rs[i] = access.Rule{User: r.User, Pattern: r.Pattern, Perm: access.Perm(r.Perm)}
	}
	ps := make(map[string][]string, len(private))
	for _, p := range private {
		ps[p.Name] = p.Members
	}
	return access.New(access.Perm(s.defaultAccess()), rs, ps), nil
}

// defaultAccess is rooms.default_access now (a reload may change it).
func (s *Server) defaultAccess() string {
	if v := s.roomsDefault.Load(); v != nil {
		return *v
	}
	return s.cfg.Rooms.DefaultAccess
}

// handleRooms answers GET /rooms: the directory of the bearer's user, as
// the rooms frame on /ws carries it.
func (s *Server) handleRooms() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := claimsFrom(r.Context())
		list, err := s.hub.Directory(strings.ToLower(c.Subject), c.Role == auth.RoleAdmin)
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		encode(w, http.StatusOK, list)
	})
}
