package chat

import (
	"slices"
	"strings"
	"time"

	"github.com/chatctl/chatctl/access"
)

// maxUnread caps an unread count: counting reads the messages after the
// user's marker (a bounded store scan on join and on a directory request,
// never per message), so a room far behind shows maxUnread.
const maxUnread = 1000

// typingInterval is the least time between two typing frames relayed for
// one user in one room (SPEC §8: at most one per second); extras are
// dropped. Clients show an indicator for a few seconds after the last
// typing frame, so it expires on its own.
const typingInterval = time.Second

// RoomStore is what the hub needs of the store for read state, the
// directory and direct messages (SPEC §8). A Store that also implements
// it enables the read and rooms frames and the read/unread fields of
// joined; without it they answer unavailable and joined carries zeros.
type RoomStore interface {
	// SetReadMarker raises user's marker in room to id (never lowers it)
	// and returns the marker after the call and whether it moved.
	SetReadMarker(user, room string, id uint64) (marker uint64, moved bool, err error)
	// ReadMarkers returns user's markers by room.
	ReadMarkers(user string) (map[string]uint64, error)
	// MessagesAfter returns up to limit messages with id > after, ascending.
	MessagesAfter(room string, after uint64, limit int) ([]Message, error)
	// RoomList returns every room with stored history: its name, last id
	// and the time of its last message.
	RoomList() ([]RoomSummary, error)
	// UserExists reports whether a user of that name exists (the other
	// side of a DM).
	UserExists(name string) (bool, error)
}

// RoomSummary is one room as RoomStore.RoomList returns it.
type RoomSummary struct {
	Name   string
	LastID uint64
	LastTS time.Time // zero when unknown
}

// RoomEntry is one room of the directory (the rooms frame, GET /rooms).
type RoomEntry struct {
	Room    string  `json:"room"`
	Private bool    `json:"private"` // a private room or a DM
	Online  int     `json:"online"`  // distinct users joined now
	LastID  uint64  `json:"last_id"`
	LastTS  *string `json:"last_ts"` // RFC 3339 UTC; null when the room has no message
	Unread  int     `json:"unread"`  // messages of others after the user's read marker (at most maxUnread)
}

// roomStore returns the store's RoomStore side, or nil.
func (h *Hub) roomStore() RoomStore {
	rs, _ := h.store.(RoomStore)
	return rs
}

// unread counts the messages in (marker, last] that user did not send,
// up to maxUnread. A user's own messages never count.
func (h *Hub) unread(rs RoomStore, room, user string, marker, last uint64) (int, error) {
	if rs == nil || marker >= last {
		return 0, nil
	}
	ms, err := rs.MessagesAfter(room, marker, maxUnread)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, m := range ms {
		if m.ID <= last && m.From != user {
			n++
		}
	}
	return n, nil
}

// Directory lists the rooms user may see (SPEC §8): public rooms with
// history or members that the user may read, the private rooms it is a
// member of, and its DMs, sorted by name. admin says whether user is an
// admin (access rules do not apply; private rooms and DMs still need
// membership).
func (h *Hub) Directory(user string, admin bool) ([]RoomEntry, error) {
	user = strings.ToLower(user)
	rs := h.roomStore()
	t := h.acc.Load()
	type cand struct {
		last   uint64
		lastTS time.Time
	}
	cands := map[string]*cand{}
	var markers map[string]uint64
	if rs != nil {
		list, err := rs.RoomList()
		if err != nil {
			return nil, err
		}
		for _, r := range list {
			cands[r.Name] = &cand{last: r.LastID, lastTS: r.LastTS}
		}
		if markers, err = rs.ReadMarkers(user); err != nil {
			return nil, err
		}
	}
	for _, name := range t.PrivateRooms(user) {
		if cands[name] == nil {
			cands[name] = &cand{}
		}
	}
	online := map[string]int{}
	live := h.liveRooms()
	for _, r := range live {
		r.mu.Lock()
		name, n, last := r.name, len(r.users), r.last
		r.mu.Unlock()
		if n == 0 {
			continue
		}
		online[name] = n
		c := cands[name]
		if c == nil {
			c = &cand{}
			cands[name] = c
		}
		c.last = max(c.last, last)
	}
	if h.cl.multi {
		// online counts users on every live node, not only this one.
		v := h.cl.broker.View()
		for name := range cands {
			if n := len(v.Members(name)); n > 0 {
				online[name] = n
			}
		}
	}
	out := make([]RoomEntry, 0, len(cands))
	for name, c := range cands {
		if !t.Check(user, admin, name).CanRead() {
			continue
		}
		e := RoomEntry{Room: name, Private: access.IsDM(name) || t.Private(name), Online: online[name], LastID: c.last}
		if !c.lastTS.IsZero() {
			ts := c.lastTS.UTC().Format(timestampLayout)
			e.LastTS = &ts
		}
		n, err := h.unread(rs, name, user, markers[name], c.last)
		if err != nil {
			return nil, err
		}
		e.Unread = n
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b RoomEntry) int { return strings.Compare(a.Room, b.Room) })
	return out, nil
}

// handleRooms answers the directory.
func (c *client) handleRooms(in *inbound) {
	h := c.hub
	list, err := h.Directory(c.user, c.admin.Load())
	if err != nil {
		h.log.Error("chat: rooms", "user", c.user, "err", err)
		c.replyError(CodeUnavailable, "store unavailable", in.Ref)
		return
	}
	c.reply(roomsFrame{Type: TypeRooms, Ref: in.Ref, Rooms: list})
}

// lastID returns the newest id of room: the live room's when it is
// loaded, else the store's.
func (h *Hub) lastID(name string) (uint64, error) {
	h.mu.Lock()
	r := h.rooms[name]
	h.mu.Unlock()
	if r != nil {
		r.mu.Lock()
		last, loaded := r.last, r.loaded
		r.mu.Unlock()
		if loaded {
			return last, nil
		}
	}
	ms, err := h.store.MessagesBefore(name, 0, 1)
	if err != nil || len(ms) == 0 {
		return 0, err
	}
	return ms[len(ms)-1].ID, nil
}

// handleRead moves the user's read marker of a room (SPEC §8): it needs
// read access, not a join. The marker never moves back, and an id past
// the room's last is clamped to it. The ack carries the marker; when it
// moved, the user's other connections get a read frame.
func (c *client) handleRead(in *inbound) {
	h := c.hub
	switch {
	case in.ID == nil:
		c.replyError(CodeBadRequest, "id is required", in.Ref)
		return
	case !validRoom(in.Room) && !access.IsDM(in.Room):
		c.replyError(CodeBadRequest, "room must be 1..64 of [a-z0-9._-], not . or ..", in.Ref)
		return
	case !h.perm(c, in.Room).CanRead():
		c.replyError(CodeForbidden, "no read access to this room", in.Ref)
		return
	}
	rs := h.roomStore()
	if rs == nil {
		c.replyError(CodeUnavailable, "read state is not kept by this store", in.Ref)
		return
	}
	last, err := h.lastID(in.Room)
	if err != nil {
		h.log.Error("chat: read", "room", in.Room, "err", err)
		c.replyError(CodeUnavailable, "store unavailable", in.Ref)
		return
	}
	marker, moved, err := rs.SetReadMarker(c.user, in.Room, min(*in.ID, last))
	if err != nil {
		h.log.Error("chat: read", "room", in.Room, "err", err)
		c.replyError(CodeUnavailable, "store unavailable", in.Ref)
		return
	}
	c.reply(ackFrame{Type: TypeAck, Ref: in.Ref, Room: in.Room, ID: marker})
	if !moved {
		return
	}
	f := encodeFrame(readFrame{Type: TypeRead, Room: in.Room, ID: marker})
	h.mu.Lock()
	others := slices.Clone(h.users[c.user])
	h.mu.Unlock()
	for _, o := range others {
		if o != c {
			o.enqueue(f)
		}
	}
	if h.cl.multi {
		h.publishRead(c.user, in.Room, marker) // the user's tabs on other nodes
	}
}

// handleTyping relays a typing indicator to the room's other users (not
// to the sender's own connections). It needs membership and write
// access, is never stored, and at most one per user and room per
// typingInterval is relayed; extras are dropped silently, as a typing
// frame has no reply. With other nodes, a relayed one is also published
// for their members of the room (the limit applies here, once).
func (c *client) handleTyping(in *inbound) {
	h := c.hub
	r := c.joined(in.Room)
	if r == nil {
		c.replyError(CodeForbidden, "join the room before typing in it", in.Ref)
		return
	}
	if !h.perm(c, r.name).CanWrite() {
		c.replyError(CodeForbidden, "no write access to this room", in.Ref)
		return
	}
	if c.relayTyping(r, h.now()) && h.cl.multi {
		h.publishTyping(r.name, c.user)
	}
}

// relayTyping relays c's typing indicator to r's local members unless
// c's user had one relayed in r less than typingInterval ago; it reports
// whether it relayed. It takes r.mu.
func (c *client) relayTyping(r *room, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.members[c]; !ok {
		return false
	}
	if last, ok := r.typing[c.user]; ok && now.Sub(last) < typingInterval {
		return false
	}
	if r.typing == nil {
		r.typing = make(map[string]time.Time)
	}
	r.typing[c.user] = now
	f := encodeFrame(typingFrame{Type: TypeTyping, Room: r.name, User: c.user})
	for m := range r.members {
		if m.user != c.user {
			m.enqueue(f)
		}
	}
	return true
}
