package api

import (
	"github.com/chatctl/chatctl/admin"
	"github.com/chatctl/chatctl/api/chat"
	"github.com/chatctl/chatctl/store"
)

// applyChange acts on one change another process made to a shared store
// (PostgreSQL's change feed, see store.Watcher), as this server's own
// admin calls do: revocations close sockets and keys reload (the
// Service), a deleted room closes, access rules and private-room members
// are read again, and a user's role change moves their admin rights on
// open connections.
//
// Revocations read from the feed close this node's sockets only: every
// node reads the feed, and the node that made the change has told the
// others through the broker already (the feed is the fallback when the
// broker is down), so re-publishing them would only repeat kicks.
func (s *Server) applyChange(kind, key string) {
	s.svc.ApplyChangeTo(kind, key, func(r admin.Revocation) {
		s.hub.Revoke(chat.Revoked{User: r.User, JTI: r.JTI, Session: r.Session, Kid: r.Kid})
	})
	switch kind {
	case store.ChangeRoomDelete:
		s.hub.CloseRoom(key)
	case store.ChangeAccess, store.ChangeMembers, store.ChangeReset:
		if err := s.hub.RecheckAccess(); err != nil {
			s.log.Warn("access rules not reloaded; the next change tries again", "err", err)
		}
	case store.ChangeUser:
		if u, err := s.svc.DB().User(key); err == nil {
			s.hub.SetAdmin(u.Name, u.Role == "admin")
		}
	}
}
