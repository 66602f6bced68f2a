package chat

import (
	"errors"
	"slices"
	"sync/atomic"
	"time"

	"github.com/chatctl/chatctl/cluster"
)

// Several nodes (SPEC §7). The hub talks to the other nodes through a
// cluster.Broker and is its Handler. With cluster.Local (one node, the
// default) nothing below runs on the message path: the hub behaves and
// performs as it always did. With a broker that joins other nodes (NATS),
// the hub is "multi":
//
//   - Each live room is subscribed on the broker from its first join (the
//     subscription is in place before the room's head is read from the
//     store, so nothing committed after that read can miss the node). A
//     message this node commits is published after the commit.
//   - Messages from other nodes go through the room's reorder buffer
//     (room.commit): delivered in id order, duplicates dropped. A hole is
//     certain to be committed already (ids are committed in order), so
//     after holeWait it is read from the store (fill). flushIfIdle, which
//     skips holes, is not used.
//   - Every resyncEvery (resyncDown while the broker is down, and at once
//     after it reconnects) the heads of the live rooms are read in one
//     query (HeadStore): a lost tail is read from the store; a room whose
//     epoch changed (deleted, maybe created again) is closed as CloseRoom
//     does.
//   - Presence comes from the broker's cluster-wide view: a user is
//     announced once for all tabs on all nodes, and joined.members is the
//     union over live nodes. Each room remembers what its members were
//     told (room.present) and reconciles with the view on every change.
//   - A user's connections are counted over the cluster for the per-user
//     cap (cluster.Broker.SetConns).
//   - A typing frame relayed here (rate limit applied here, once) is
//     published on the room's subject; one from another node goes to the
//     local members but the typist's connections and those who may no
//     longer read the room. A moved read marker is published after it is
//     stored; one from another node is echoed to the user's connections
//     here. Neither is repaired when lost (see cluster.Handler).

// Timings of a multi-node hub.
const (
	holeWait    = 50 * time.Millisecond  // a hole waits this long for its message before the store is read
	resyncEvery = time.Second            // period of the head check while the broker is up
	resyncDown  = 200 * time.Millisecond // … and while it is down: the store carries everything then
	fillBatch   = 500                    // messages read per store query when filling
)

// Head is where a room's stored history ends.
type Head struct {
	LastID uint64
	Epoch  string
}

// HeadStore is what a multi-node hub needs beyond Store and RoomStore:
// the heads of many rooms in one cheap read.
type HeadStore interface {
	Heads(rooms []string) (map[string]Head, error)
}

// ClusterStats are a hub's counters of cross-node delivery, for /metrics.
type ClusterStats struct {
	Multi       bool          // the hub joins other nodes
	HolesFilled uint64        // messages read from the store to fill holes and lost tails
	Remote      uint64        // messages delivered that other nodes committed (from the broker)
	LagSum      time.Duration // total of (delivery time − message timestamp) over Remote
	CapClosed   uint64        // connections closed with 4029 after a cluster-wide count
}

// clusterState is the hub's side of the cluster; set by UseBroker before
// the hub serves, read-only afterwards (the counters are atomic).
type clusterState struct {
	broker cluster.Broker // never nil after NewHub
	multi  bool           // broker joins other nodes
	heads  HeadStore      // multi only
	after  RoomStore      // multi only: MessagesAfter
	resync chan struct{}  // a resync is wanted now (Reconnected); buffered 1

	filled, remote, capClosed atomic.Uint64
	lagNS                     atomic.Int64
	lagObs                    func(time.Duration) // OnRemoteLag's; nil: none
}

// OnRemoteLag sets f to be called with the lag of every message another
// node committed, as it is delivered here (its delivery time minus its
// timestamp), for /metrics. Call it before serving.
func (h *Hub) OnRemoteLag(f func(time.Duration)) { h.cl.lagObs = f }

// UseBroker makes b the hub's broker and starts it. Call it once, before
// Run and before any connection is served. cluster.Local (what NewHub
// uses) keeps the hub alone; any other broker joins it to the other nodes
// and needs a store that implements RoomStore and HeadStore.
func (h *Hub) UseBroker(b cluster.Broker) error {
	_, local := b.(*cluster.Local)
	cs := &h.cl
	cs.broker, cs.multi = b, !local
	if cs.multi {
		hs, ok1 := h.store.(HeadStore)
		rs, ok2 := h.store.(RoomStore)
		if !ok1 || !ok2 {
			return errors.New("chat: a cluster broker needs a store that reads room heads and messages after an id")
		}
		cs.heads, cs.after = hs, rs
	}
	return b.Start(brokerHandler{h})
}

// Broker returns the hub's broker.
func (h *Hub) Broker() cluster.Broker { return h.cl.broker }

// ClusterStats returns the hub's cross-node counters.
func (h *Hub) ClusterStats() ClusterStats {
	return ClusterStats{
		Multi:       h.cl.multi,
		HolesFilled: h.cl.filled.Load(),
		Remote:      h.cl.remote.Load(),
		LagSum:      time.Duration(h.cl.lagNS.Load()),
		CapClosed:   h.cl.capClosed.Load(),
	}
}

// brokerHandler is the hub as a cluster.Handler.
type brokerHandler struct{ h *Hub }

// Messages implements cluster.Handler.
func (b brokerHandler) Messages(room, epoch string, msgs []cluster.Message) {
	b.h.remoteMessages(room, epoch, msgs)
}

// Presence implements cluster.Handler.
func (b brokerHandler) Presence(changes []cluster.Change) { b.h.remotePresence(changes) }

// Typing implements cluster.Handler.
func (b brokerHandler) Typing(room, user string) { b.h.remoteTyping(room, user) }

// Read implements cluster.Handler.
func (b brokerHandler) Read(user, room string, id uint64) { b.h.remoteRead(user, room, id) }

// Kick implements cluster.Handler: the broker's kicks come from every
// node's revocations, this node's included.
func (b brokerHandler) Kick(k cluster.Kick) {
	b.h.Revoke(Revoked{User: k.User, JTI: k.JTI, Session: k.Session, Kid: k.Kid})
}

// Changed implements cluster.Handler. The server polls the change feed
// every 250 ms by itself; nothing publishes change hints yet.
func (b brokerHandler) Changed(uint64) {}

// Reconnected implements cluster.Handler: what was published meanwhile is
// lost, so the heads are read at once.
func (b brokerHandler) Reconnected() {
	select {
	case b.h.cl.resync <- struct{}{}:
	default:
	}
}

// publish tells the other nodes about m, committed by this node.
func (h *Hub) publish(room string, m Message) {
	err := h.cl.broker.PublishMessages(room, m.Epoch, []cluster.Message{{ID: m.ID, From: m.From, Text: m.Text, TS: m.TS}})
	if err != nil && !errors.Is(err, cluster.ErrDown) && !errors.Is(err, cluster.ErrClosed) {
		h.log.Warn("chat: publish to the cluster", "room", room, "err", err)
	}
}

// publishTyping tells the other nodes that user types in room (relayed
// here already, within typingInterval). Multi only.
func (h *Hub) publishTyping(room, user string) {
	if err := h.cl.broker.PublishTyping(room, user); err != nil && !errors.Is(err, cluster.ErrDown) && !errors.Is(err, cluster.ErrClosed) {
		h.log.Warn("chat: publish typing to the cluster", "room", room, "err", err)
	}
}

// publishRead tells the other nodes that user's read marker of room moved
// to id (stored already). Multi only.
func (h *Hub) publishRead(user, room string, id uint64) {
	if err := h.cl.broker.PublishRead(user, room, id); err != nil && !errors.Is(err, cluster.ErrDown) && !errors.Is(err, cluster.ErrClosed) {
		h.log.Warn("chat: publish a read marker to the cluster", "room", room, "err", err)
	}
}

// remoteTyping relays a typing indicator another node relayed (the rate
// limit and the typist's access were applied there, once) to this node's
// members of the room, except the typist's own connections, as
// handleTyping does locally. Each receiver's read access is checked here,
// with this node's table: a member whose access went is not told, even
// before enforceAccess has evicted it. Not recorded in r.typing: the
// limit is the origin's.
func (h *Hub) remoteTyping(name, user string) {
	r := h.liveRoom(name)
	if r == nil {
		return
	}
	t := h.acc.Load()
	var f frame
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.dead {
		return
	}
	for m := range r.members {
		if m.user == user || !t.Check(m.user, m.admin.Load(), r.name).CanRead() {
			continue
		}
		if f == nil {
			f = encodeFrame(typingFrame{Type: TypeTyping, Room: r.name, User: user})
		}
		m.enqueue(f)
	}
}

// remoteRead echoes a read marker another node stored to this node's
// connections of user that may still read the room, as handleRead does
// for the user's other connections on its own node.
func (h *Hub) remoteRead(user, room string, id uint64) {
	h.mu.Lock()
	cs := slices.Clone(h.users[user])
	h.mu.Unlock()
	var f frame
	for _, c := range cs {
		if !h.perm(c, room).CanRead() {
			continue
		}
		if f == nil {
			f = encodeFrame(readFrame{Type: TypeRead, Room: room, ID: id})
		}
		c.enqueue(f)
	}
}

// subscribeLocked registers the node's interest in r before its head is
// read. r.mu must be held (a round trip to the broker; first join only).
func (h *Hub) subscribeLocked(r *room) {
	if r.subscribed {
		return
	}
	err := h.cl.broker.Subscribe(r.name)
	switch {
	case err == nil:
		r.subscribed = true
	case errors.Is(err, cluster.ErrRoomName), errors.Is(err, cluster.ErrClosed):
	default:
		r.subscribed = true // the interest stays registered (see Broker.Subscribe)
		h.log.Warn("chat: subscribe to the cluster", "room", r.name, "err", err)
	}
}

// unsubscribe undoes subscribeLocked for a dead room. r.mu must not be held.
func (h *Hub) unsubscribe(name string) {
	if err := h.cl.broker.Unsubscribe(name); err != nil && !errors.Is(err, cluster.ErrClosed) {
		h.log.Warn("chat: unsubscribe from the cluster", "room", name, "err", err)
	}
}

// liveRoom returns the loaded, live room called name, or nil.
func (h *Hub) liveRoom(name string) *room {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.rooms[name]
}

// remoteMessages delivers messages another node committed.
func (h *Hub) remoteMessages(name, epoch string, msgs []cluster.Message) {
	r := h.liveRoom(name)
	if r == nil {
		return // nobody here: a join reads the store
	}
	r.mu.Lock()
	if r.dead || !r.loaded {
		r.mu.Unlock()
		return
	}
	if epoch != r.epoch {
		if r.epoch != "" || r.last != 0 {
			r.mu.Unlock()
			h.checkEpoch(r, epoch)
			return
		}
		r.epoch = epoch // the room's history began on another node
	}
	now := time.Now()
	for _, m := range msgs {
		if m.ID <= r.last {
			continue // a duplicate, or filled from the store already
		}
		if _, ok := r.pending[m.ID]; ok {
			continue
		}
		h.cl.remote.Add(1)
		lag := now.Sub(m.TS)
		h.cl.lagNS.Add(int64(lag))
		if h.cl.lagObs != nil {
			h.cl.lagObs(lag)
		}
		f := encodeFrame(messageFrame{Type: TypeMessage, wireMessage: toWire(Message{Room: name, ID: m.ID, From: m.From, Text: m.Text, TS: m.TS})})
		r.commit(m.ID, f, h)
	}
	h.scheduleFillLocked(r)
	r.mu.Unlock()
}

// checkEpoch handles a message of another epoch than r's: stale (the
// store agrees with r) or a sign the room was deleted and created again,
// which closes it here as CloseRoom does.
func (h *Hub) checkEpoch(r *room, epoch string) {
	cur, err := h.store.Epoch(r.name)
	if err != nil {
		return // the next head check tries again
	}
	r.mu.Lock()
	stale := r.dead || cur == r.epoch
	r.mu.Unlock()
	if !stale {
		h.log.Info("chat: room history restarted on another node; closing it here", "room", r.name)
		h.closeRoomIf(r)
	}
}

// closeRoomIf closes r if it is still the live room of its name.
func (h *Hub) closeRoomIf(r *room) {
	h.mu.Lock()
	live := h.rooms[r.name] == r
	h.mu.Unlock()
	if live {
		h.CloseRoom(r.name)
	}
}

// scheduleFillLocked arranges for r's hole, if any, to be read from the
// store after holeWait. r.mu must be held.
func (h *Hub) scheduleFillLocked(r *room) {
	if !h.cl.multi || r.filling || len(r.pending) == 0 {
		return
	}
	r.filling = true
	time.AfterFunc(holeWait, func() { h.fill(r) })
}

// fill reads r's hole from the store.
func (h *Hub) fill(r *room) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.filling = false
	if r.dead || len(r.pending) == 0 {
		return
	}
	var upto uint64
	for id := range r.pending {
		upto = max(upto, id)
	}
	h.catchUpLocked(r, upto, true)
	h.scheduleFillLocked(r)
}

// catchUpLocked delivers r's messages from the store up to id upto. With
// committed, upto is known to be committed, so every id below it is
// committed too, and one the store no longer has (retention) is skipped.
// r.mu must be held.
func (h *Hub) catchUpLocked(r *room, upto uint64, committed bool) {
	for r.last < upto {
		ms, err := h.cl.after.MessagesAfter(r.name, r.last, int(min(upto-r.last, fillBatch)))
		if err != nil {
			h.log.Warn("chat: read missed messages", "room", r.name, "err", err)
			return
		}
		before := r.last
		for _, m := range ms {
			if m.ID > upto {
				break
			}
			if m.ID <= r.last {
				continue
			}
			h.cl.filled.Add(1)
			r.commit(m.ID, encodeFrame(messageFrame{Type: TypeMessage, wireMessage: toWire(m)}), h)
		}
		if len(ms) == 0 || r.last == before {
			break
		}
	}
	if !committed || r.last >= upto {
		return
	}
	// Gone from the store (retention): deliver what is buffered up to upto.
	ids := make([]uint64, 0, len(r.pending))
	for id := range r.pending {
		if id <= upto {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		r.broadcast(r.pending[id], nil)
		delete(r.pending, id)
	}
	r.last = upto
}

// resyncLoop checks the heads of the live rooms until stop is closed.
func (h *Hub) resyncLoop(stop <-chan struct{}) {
	t := time.NewTimer(resyncEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		case <-h.cl.resync:
		}
		h.resyncHeads()
		next := resyncEvery
		if !h.cl.broker.Up() {
			next = resyncDown
		}
		t.Reset(next)
	}
}

// resyncHeads reads the heads of the live rooms in one query and catches
// each room up to its head: the tail a lost publication left behind.
func (h *Hub) resyncHeads() {
	rooms := h.liveRooms()
	if len(rooms) == 0 {
		return
	}
	names := make([]string, 0, len(rooms))
	epochs := make(map[*room]string, len(rooms))
	for _, r := range rooms {
		r.mu.Lock()
		if r.loaded && !r.dead {
			names = append(names, r.name)
			epochs[r] = r.epoch
		}
		r.mu.Unlock()
	}
	if len(names) == 0 {
		return
	}
	heads, err := h.cl.heads.Heads(names)
	if err != nil {
		h.log.Warn("chat: read room heads", "err", err)
		return
	}
	for r, seen := range epochs {
		head, ok := heads[r.name]
		r.mu.Lock()
		switch {
		case r.dead || r.epoch != seen:
			// changed since the read: the next check looks again
		case !ok && r.epoch == "":
			// no history yet, anywhere
		case ok && r.epoch == "":
			r.epoch = head.Epoch // history began on another node
			h.catchUpLocked(r, head.LastID, true)
		case !ok || head.Epoch != r.epoch:
			r.mu.Unlock()
			h.log.Info("chat: room deleted or restarted on another node; closing it here", "room", r.name)
			h.closeRoomIf(r)
			continue
		case head.LastID > r.last:
			h.catchUpLocked(r, head.LastID, true)
		}
		r.mu.Unlock()
	}
}

// Presence, multi-node.

// presenceLocked records that c's user now has n connections of this node
// in r, and tells r's local members (but skip) when the cluster-wide
// presence of the user changed. r.mu must be held.
func (h *Hub) presenceLocked(r *room, user string, n int, skip *client) {
	h.cl.broker.SetPresence(r.name, user, n)
	h.reconcileLocked(r, user, skip)
}

// reconcileLocked brings what r's members were told about user in line
// with the cluster-wide view. r.mu must be held.
func (h *Hub) reconcileLocked(r *room, user string, skip *client) {
	now := h.cl.broker.View().Present(r.name, user)
	if r.present[user] == now {
		return
	}
	if now {
		if r.present == nil {
			r.present = make(map[string]bool)
		}
		r.present[user] = true
		r.broadcast(presence(r.name, user, "join"), skip)
	} else {
		delete(r.present, user)
		r.broadcast(presence(r.name, user, "leave"), skip)
	}
}

// adoptViewLocked makes the cluster-wide view what r's (new, first) member
// knows of: it gets it in joined.members. r.mu must be held.
func (h *Hub) adoptViewLocked(r *room) {
	r.present = make(map[string]bool)
	for _, u := range h.cl.broker.View().Members(r.name) {
		r.present[u] = true
	}
}

// remotePresence applies presence changes other nodes caused.
func (h *Hub) remotePresence(changes []cluster.Change) {
	for _, c := range changes {
		if c.Room == "" {
			h.enforceCap(c.User, c.Conns)
			continue
		}
		r := h.liveRoom(c.Room)
		if r == nil {
			continue
		}
		r.mu.Lock()
		if !r.dead && len(r.members) > 0 {
			h.reconcileLocked(r, c.User, nil)
		}
		r.mu.Unlock()
	}
}

// Per-user cap across nodes (SPEC §7: it may overshoot by one per node for
// a moment; then the newest extra connection is closed with 4029).

// clusterConns returns user's connections over the cluster.
func (h *Hub) clusterConns(user string) int {
	n, _ := h.cl.broker.View().Conns(user)
	return n
}

// countConnsLocked tells the broker how many connections user has here and
// returns the user's total over the cluster. h.mu must be held.
func (h *Hub) countConnsLocked(user string) int {
	cs := h.users[user]
	var newest time.Time
	for _, c := range cs {
		if c.opened.After(newest) {
			newest = c.opened
		}
	}
	return h.cl.broker.SetConns(user, len(cs), newest)
}

// enforceCap closes this node's newest connections of user while the
// user has more than the cap over the cluster and this node holds the
// newest of them.
func (h *Hub) enforceCap(user string, total int) {
	if !h.cl.multi || total <= h.cfg.MaxConnsPerUser {
		return
	}
	h.mu.Lock()
	cs := slices.Clone(h.users[user])
	h.mu.Unlock()
	_, newestElsewhere := h.cl.broker.View().Conns(user)
	slices.SortFunc(cs, func(a, b *client) int { return b.opened.Compare(a.opened) })
	extra := total - h.cfg.MaxConnsPerUser
	for _, c := range cs {
		if extra == 0 || c.opened.UnixNano() <= newestElsewhere {
			break // the newest extra is another node's: it closes it
		}
		if !c.closing() {
			h.cl.capClosed.Add(1)
			h.log.Info("chat: too many connections over the cluster", "user", user)
			c.close(CloseTooManyConns, "too many connections")
		}
		extra--
	}
}
