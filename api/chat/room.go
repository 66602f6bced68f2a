package chat

import (
	"context"
	"slices"
	"sync"
	"time"
)

// room is one chat room while it has members or sends in flight.
//
// Ordering: the store assigns ids, and sends from different connections
// commit concurrently (the store batches them into one fsync), so commits
// return in any order. r.pending is a reorder buffer: a committed message is
// broadcast only once every lower id has been, so each member sees ids in
// order and without gaps. Broadcasting only enqueues (never writes a socket),
// so holding r.mu while doing it is cheap.
type room struct {
	name string

	mu       sync.Mutex       // guards every field below; taken after Hub.mu, before client.mu
	dead     bool             // removed from Hub.rooms; a joiner holding r must look the name up again
	loaded   bool             // last was read from the store
	last     uint64           // highest id broadcast (or stored when the room was loaded)
	epoch    string           // the store's epoch of the room; "" until it has history
	inflight int              // AppendMessage calls in progress for this room
	pending  map[uint64]frame // committed, waiting for a lower id
	members  map[*client]struct{}
	users    map[string]int       // connections per user among members: presence and stats
	typing   map[string]time.Time // when each user's last typing frame was relayed (typingInterval)

	// Multi-node only (see cluster.go).
	subscribed bool            // the broker has this node's interest in the room; undone when it dies
	filling    bool            // a fill of a hole from the store is scheduled
	present    map[string]bool // users r's members were told are present (cluster-wide)
}

// room returns the live room called name, creating it if needed.
func (h *Hub) room(name string) *room {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.rooms[name]
	if r == nil {
		r = &room{name: name}
		h.rooms[name] = r
	}
	return r
}

// maybeRemove drops r from the hub once it has no members and nothing in
// flight, so idle rooms cost no memory. It takes h.mu then r.mu, the lock
// order, which is why callers must not hold r.mu.
func (h *Hub) maybeRemove(r *room) {
	h.mu.Lock()
	r.mu.Lock()
	if r.dead || len(r.members) > 0 || r.inflight > 0 {
		r.mu.Unlock()
		h.mu.Unlock()
		return
	}
	r.dead = true
	if h.rooms[r.name] == r {
		delete(h.rooms, r.name)
	}
	subscribed := r.subscribed
	r.mu.Unlock()
	h.mu.Unlock()
	if subscribed {
		h.unsubscribe(r.name)
	}
}

// join adds c to the room in.Room and queues the joined reply with the
// replay. Replay and membership change happen under r.mu, and every
// broadcast takes r.mu too, so the client gets exactly the messages up to
// r.last in joined and every later one as a message frame.
func (h *Hub) join(c *client, in *inbound) {
	for {
		r := h.room(in.Room)
		r.mu.Lock()
		if r.dead { // removed between lookup and lock: look again
			r.mu.Unlock()
			continue
		}
		ok := h.joinLocked(r, c, in)
		r.mu.Unlock()
		if !ok {
			h.maybeRemove(r)
		}
		return
	}
}

// joinLocked does the work of join with r.mu held; it reports whether c is
// a member afterwards.
func (h *Hub) joinLocked(r *room, c *client, in *inbound) bool {
	_, already := r.members[c]
	// Checked under r.mu: see enforceAccess.
	if !h.perm(c, r.name).CanRead() {
		c.replyError(CodeForbidden, "no read access to this room", in.Ref)
		return already
	}
	if !already && c.roomCount() >= h.cfg.MaxRooms {
		c.replyError(CodeForbidden, "too many rooms joined", in.Ref)
		return false
	}
	if !r.loaded {
		if h.cl.multi {
			h.subscribeLocked(r) // before the head is read: nothing later can miss us
		}
		newest, err := h.store.MessagesBefore(r.name, 0, 1)
		if err != nil {
			h.log.Error("chat: load room", "room", r.name, "err", err)
			c.replyError(CodeUnavailable, "store unavailable", in.Ref)
			return already
		}
		epoch, err := h.store.Epoch(r.name)
		if err != nil {
			h.log.Error("chat: load room", "room", r.name, "err", err)
			c.replyError(CodeUnavailable, "store unavailable", in.Ref)
			return already
		}
		if len(newest) > 0 {
			r.last = newest[len(newest)-1].ID
		}
		r.epoch = epoch
		r.loaded = true
	}
	// A client resuming with since from another epoch has ids of a room
	// that was deleted since: they say nothing about this one, so it gets
	// everything, as on a first join with since 0, and is told to reset.
	since, reset := in.Since, false
	if since != nil && in.Epoch != nil && *in.Epoch != r.epoch {
		since, reset = new(uint64), true
	}
	if h.cl.multi && since != nil && *since > r.last {
		// The client saw more on another node than this one delivered
		// yet: catch up from the store, so the replay joins up.
		h.catchUpLocked(r, *since, false)
	}
	msgs, more, err := h.replay(r, since)
	if err != nil {
		h.log.Error("chat: replay", "room", r.name, "err", err)
		c.replyError(CodeUnavailable, "store unavailable", in.Ref)
		return already
	}
	if !already {
		if r.members == nil {
			r.members = make(map[*client]struct{})
			r.users = make(map[string]int)
		}
		r.members[c] = struct{}{}
		r.users[c.user]++
		c.addRoom(r)
		switch {
		case h.cl.multi:
			if len(r.members) == 1 {
				h.adoptViewLocked(r)
			}
			h.presenceLocked(r, c.user, r.users[c.user], c)
		case r.users[c.user] == 1: // the user's first connection here
			r.broadcast(presence(r.name, c.user, "join"), c)
		}
	}
	var members []string
	if h.cl.multi {
		members = h.cl.broker.View().Members(r.name)
	} else {
		members = make([]string, 0, len(r.users))
		for u := range r.users {
			members = append(members, u)
		}
		slices.Sort(members)
	}
	read, unread := h.readState(r, c)
	c.reply(joinedFrame{Type: TypeJoined, Ref: in.Ref, Room: r.name, Epoch: r.epoch, Reset: reset,
		Members: members, Messages: toWireList(msgs), More: more, Read: read, Unread: unread})
	return true
}

// replay reads what a join returns: ids in (since, r.last], at most
// MaxReplay of the newest, or the newest OnJoin without since. Messages
// above r.last are left out: they are committed but not yet broadcast, and
// the joiner will get them as message frames. r.mu must be held.
func (h *Hub) replay(r *room, since *uint64) (msgs []Message, more bool, err error) {
	limit := h.cfg.OnJoin
	if since != nil {
		if *since >= r.last {
			return nil, false, nil
		}
		limit = int(min(r.last-*since, uint64(h.cfg.MaxReplay)))
	}
	if limit == 0 || r.last == 0 {
		return nil, false, nil
	}
	msgs, err = h.store.MessagesBefore(r.name, r.last+1, limit)
	if err != nil || since == nil {
		return msgs, false, err
	}
	// Ids can have holes (retention), so the count may reach below since.
	msgs = slices.DeleteFunc(msgs, func(m Message) bool { return m.ID <= *since })
	more = len(msgs) == limit && msgs[0].ID > *since+1
	return msgs, more, nil
}

// leave removes c from r, telling the others when c was the user's last
// connection there.
func (h *Hub) leave(r *room, c *client) {
	r.mu.Lock()
	if _, ok := r.members[c]; ok {
		delete(r.members, c)
		h.userLeftLocked(r, c.user)
	}
	c.removeRoom(r)
	empty := len(r.members) == 0
	r.mu.Unlock()
	if empty {
		h.maybeRemove(r)
	}
}

// send appends text to r as c's user. It runs on c's reader goroutine and
// blocks for the commit, which keeps one connection's messages in the order
// it sent them; other connections commit concurrently.
func (h *Hub) send(r *room, c *client, text, ref string) {
	h.sendMu.RLock()
	if h.draining {
		h.sendMu.RUnlock()
		c.replyError(CodeInternal, "server shutting down", ref)
		return
	}
	h.appends.Add(1)
	h.sendMu.RUnlock()
	defer h.appends.Done() // after the ack and broadcast are queued: Shutdown relies on it

	r.mu.Lock()
	if _, ok := r.members[c]; !ok { // room deleted or left concurrently
		r.mu.Unlock()
		c.replyError(CodeForbidden, "not a member of this room", ref)
		return
	}
	r.inflight++
	r.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), h.cfg.StoreTimeout)
	m, err := h.store.AppendMessage(ctx, r.name, c.user, text, h.now())
	cancel()
	var f frame
	if err == nil {
		// Encode once, outside the lock, for every recipient.
		f = encodeFrame(messageFrame{Type: TypeMessage, wireMessage: toWire(m)})
	}

	r.mu.Lock()
	r.inflight--
	if err == nil {
		if r.epoch == "" {
			r.epoch = m.Epoch // the room's first message: its history, and epoch, begin
		}
		r.commit(m.ID, f, h)
	}
	if h.cl.multi {
		h.scheduleFillLocked(r) // a hole here may be another node's: never skip it
	} else {
		r.flushIfIdle()
	}
	empty := len(r.members) == 0 && r.inflight == 0
	r.mu.Unlock()
	if empty {
		h.maybeRemove(r)
	}
	if err == nil && h.cl.multi {
		h.publish(r.name, m)
	}

	if err != nil {
		h.log.Error("chat: append", "room", r.name, "user", c.user, "err", err)
		c.replyError(CodeUnavailable, "message not stored", ref)
		return
	}
	c.reply(ackFrame{Type: TypeAck, Ref: ref, Room: r.name, ID: m.ID})
}

// commit broadcasts message id, and any buffered successors, once it is next
// in line; otherwise it buffers it. r.mu must be held.
func (r *room) commit(id uint64, f frame, h *Hub) {
	switch {
	case id <= r.last && h.cl.multi:
		return // delivered already: from the broker, or filled from the store
	case id <= r.last:
		// Only a store that breaks its contract (or a write that bypassed
		// the hub) gets here. Delivering late beats not delivering.
		h.log.Warn("chat: message id out of order", "room", r.name, "id", id, "last", r.last)
		r.broadcast(f, nil)
		return
	case id > r.last+1:
		if r.pending == nil {
			r.pending = make(map[uint64]frame)
		}
		r.pending[id] = f
		return
	}
	r.broadcast(f, nil)
	r.last = id
	for {
		next, ok := r.pending[r.last+1]
		if !ok {
			break
		}
		delete(r.pending, r.last+1)
		r.broadcast(next, nil)
		r.last++
	}
}

// flushIfIdle handles a hole that can never fill: with no append in flight,
// nothing can commit the missing id (a failed append uses no id in a correct
// store), so the buffered messages go out in id order. r.mu must be held.
func (r *room) flushIfIdle() {
	if r.inflight > 0 || len(r.pending) == 0 {
		return
	}
	ids := make([]uint64, 0, len(r.pending))
	for id := range r.pending {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		r.broadcast(r.pending[id], nil)
	}
	r.last = ids[len(ids)-1]
	r.pending = nil
}

// broadcast queues f for every member except skip. It never blocks: a
// member whose queue is full is closed with 4008 by enqueue. r.mu must be
// held, which is what orders broadcasts within a room.
func (r *room) broadcast(f frame, skip *client) {
	for c := range r.members {
		if c != skip {
			c.enqueue(f)
		}
	}
}

// userLeftLocked updates r after one connection of user left it (or was
// evicted), telling the others when the user is gone. r.mu must be held.
func (h *Hub) userLeftLocked(r *room, user string) {
	r.users[user]--
	n := r.users[user]
	if n == 0 {
		delete(r.users, user)
		delete(r.typing, user)
	}
	switch {
	case h.cl.multi:
		h.presenceLocked(r, user, n, nil)
	case n == 0:
		r.broadcast(presence(r.name, user, "leave"), nil)
	}
}

// presence encodes a presence frame for broadcast.
func presence(room, user, event string) frame {
	return encodeFrame(presenceFrame{Type: TypePresence, Room: room, User: user, Event: event})
}

// readState returns c's user's read marker in r and its unread count for
// the joined frame. A store failure here costs the join nothing: it is
// logged and the frame carries zeros. r.mu must be held.
func (h *Hub) readState(r *room, c *client) (read uint64, unread int) {
	rs := h.roomStore()
	if rs == nil {
		return 0, 0
	}
	markers, err := rs.ReadMarkers(c.user)
	if err == nil {
		read = markers[r.name]
		unread, err = h.unread(rs, r.name, c.user, read, r.last)
	}
	if err != nil {
		h.log.Error("chat: read state", "room", r.name, "user", c.user, "err", err)
	}
	return read, unread
}
