package chat

import (
	"slices"
	"strings"

	"github.com/chatctl/chatctl/access"
)

// Access control (SPEC §8). The hub keeps the current access.Table behind
// an atomic pointer: a join, send, typing or read frame checks it with a
// few map lookups, never a store read, so the hot path (send and
// fan-out) costs what it did. The table is replaced whole when rules or
// memberships change (SetAccess, RecheckAccess), and every live member
// is then checked again: one who lost read access gets a left frame and
// nothing more of the room.

// AccessLoader builds the current access table from the store (rules,
// private rooms, rooms.default_access). See Hub.SetAccessLoader.
type AccessLoader func() (*access.Table, error)

// SetAccessLoader sets how RecheckAccess reloads the table and loads it
// once now; call it before serving connections. Until then (and in tests
// without one) every user may read and write every public room.
func (h *Hub) SetAccessLoader(load AccessLoader) error {
	h.loaderMu.Lock()
	h.loader = load
	h.loaderMu.Unlock()
	return h.RecheckAccess()
}

// RecheckAccess reloads the access table with the loader (when one is set)
// and re-evaluates every live member of every room: a member who may no
// longer read a room gets {"type":"left","room":R,"reason":"forbidden"}
// and no more frames of it. Call it after any change of access rules or
// private-room members: the admin service does for changes it makes, and
// a server on a shared store on the change-feed kinds store.ChangeAccess
// and store.ChangeMembers (or store.ChangeReset). On a loader error the
// old table stays and the error is returned.
func (h *Hub) RecheckAccess() error {
	h.loaderMu.Lock()
	defer h.loaderMu.Unlock() // one reload at a time: the newest table wins
	if h.loader != nil {
		t, err := h.loader()
		if err != nil {
			h.log.Error("chat: reload access rules", "err", err)
			return err
		}
		h.acc.Store(t)
	}
	h.enforceAccess()
	return nil
}

// SetAccess replaces the access table with t and re-evaluates every live
// member, as RecheckAccess does.
func (h *Hub) SetAccess(t *access.Table) {
	h.loaderMu.Lock()
	defer h.loaderMu.Unlock()
	h.acc.Store(t)
	h.enforceAccess()
}

// perm returns what c's user may do in room now.
func (h *Hub) perm(c *client, room string) access.Perm {
	return h.acc.Load().Check(c.user, c.admin.Load(), room)
}

// enforceAccess removes every member who may no longer read its room.
// Joins check the table with the room's lock held, and the table is
// stored before this takes any room lock, so a join racing a change
// either sees the new table or is in the room by the time it is checked.
func (h *Hub) enforceAccess() {
	rooms := h.liveRooms()
	t := h.acc.Load()
	left := func(name string) frame {
		return encodeFrame(leftFrame{Type: TypeLeft, Room: name, Reason: CodeForbidden})
	}
	for _, r := range rooms {
		r.mu.Lock()
		var f frame
		for c := range r.members {
			if t.Check(c.user, c.admin.Load(), r.name).CanRead() {
				continue
			}
			if f == nil {
				f = left(r.name)
			}
			h.evictLocked(r, c, f)
		}
		empty := len(r.members) == 0
		r.mu.Unlock()
		if empty {
			h.maybeRemove(r)
		}
	}
}

// evictLocked removes c from r and queues f (its left frame) for it; the
// others are told when c was its user's last connection there. r.mu must
// be held.
func (h *Hub) evictLocked(r *room, c *client, f frame) {
	delete(r.members, c)
	c.removeRoom(r)
	c.enqueue(f)
	h.userLeftLocked(r, c.user)
	h.log.Info("chat: access withdrawn", "user", c.user, "room", r.name)
}

// resolveRoom turns the room of a frame into its canonical name: a DM
// name (@bob, @alice+bob) becomes @alice+bob; other names are returned
// as they are (the handlers check them). ok is false for a malformed DM
// name.
func (c *client) resolveRoom(name string) (string, bool) {
	if !access.IsDM(name) {
		return name, true
	}
	canon, _, _, err := access.DM(c.user, name)
	return canon, err == nil
}

// dmPeer returns the other user of the DM room name (canonical), as
// seen by user.
func dmPeer(user, name string) string {
	a, b, _ := strings.Cut(strings.TrimPrefix(name, "@"), "+")
	if a == user {
		return b
	}
	return a
}

// SetAdmin records that user now has (admin true) or no longer has the
// admin role, on every live connection of the user, and re-checks access:
// rules apply to a demoted admin at once. Call it after a role change
// (the server does for `user role`; on a shared store, on the change
// feed's user kind). A later auth frame sets the role from its token.
func (h *Hub) SetAdmin(user string, admin bool) {
	h.mu.Lock()
	cs := slices.Clone(h.users[strings.ToLower(user)])
	h.mu.Unlock()
	changed := false
	for _, c := range cs {
		if c.admin.Swap(admin) != admin {
			changed = true
		}
	}
	if changed {
		h.loaderMu.Lock()
		defer h.loaderMu.Unlock()
		h.enforceAccess()
	}
}
