package cluster

import (
	"cmp"
	"slices"
	"sync"
	"time"
)

// Entry is one line of a node's roster: User has Conns connections of the
// node in Room. An entry with Room "" counts the user's connections on the
// node, joined to rooms or not (the per-user cap), and Newest is when the
// newest of them opened (Unix ns). Conns 0 in a delta removes the entry.
type Entry struct {
	Room   string `json:"r,omitempty"`
	User   string `json:"u"`
	Conns  int    `json:"c"`
	Newest int64  `json:"t,omitempty"`
}

// Key names an entry: a room and a user.
type Key struct {
	Room string `json:"r"`
	User string `json:"u"`
}

func (k Key) compare(o Key) int {
	if c := cmp.Compare(k.Room, o.Room); c != 0 {
		return c
	}
	return cmp.Compare(k.User, o.User)
}

// Roster is one publication of a node's presence: a delta (Entries with
// their new absolute counts, so a repeated or late delta does no harm), a
// part of the node's full roster (Full: Entries are all of the node's
// entries with From <= key < To, nil bounds being open), a digest (the
// heartbeat: Sum and Count of the node's entries, see Presence.Agrees),
// or its goodbye. Any publication proves the node alive. A node sends its
// full roster, in parts that fit a NATS message, when it starts, after a
// reconnection, and to a node whose view of it disagrees with its digest.
type Roster struct {
	Node    string  `json:"n"`
	Inc     uint64  `json:"i"` // incarnation: the node's start (Unix ns); a newer one replaces the node's state
	Seq     uint64  `json:"s"` // the node's publication counter within Inc; older or repeated ones are ignored
	Full    bool    `json:"f,omitempty"`
	From    *Key    `json:"lo,omitempty"`
	To      *Key    `json:"hi,omitempty"`
	Bye     bool    `json:"b,omitempty"` // the node is leaving: drop its entries now
	Digest  bool    `json:"d,omitempty"` // a heartbeat: Sum and Count stand for the entries
	Sum     uint64  `json:"h,omitempty"` // with Digest: the sum of entryHash over the node's entries
	Count   int     `json:"k,omitempty"` // with Digest: how many entries the node has
	Entries []Entry `json:"e,omitempty"`
}

// entryHash hashes every field of e (FNV-1a, the same in every process;
// no allocation: it runs on every presence change). A node's digest is the
// sum of its entries' hashes, so it is kept up to date entry by entry and
// does not depend on their order.
func entryHash(e Entry) uint64 {
	const prime = 1099511628211
	h := uint64(14695981039346656037)
	str := func(s string) {
		for i := 0; i < len(s); i++ {
			h = (h ^ uint64(s[i])) * prime
		}
		h *= prime // the separator 0
	}
	num := func(v uint64) {
		for i := 0; i < 8; i++ {
			h = (h ^ (v & 0xff)) * prime
			v >>= 8
		}
	}
	str(e.Room)
	str(e.User)
	num(uint64(e.Conns))
	num(uint64(e.Newest))
	return h
}

// inRange reports whether k is within the bounds of a full part.
func (r *Roster) inRange(k Key) bool {
	return (r.From == nil || k.compare(*r.From) >= 0) && (r.To == nil || k.compare(*r.To) < 0)
}

// Change is a change of the cluster-wide presence. For a room (Room set),
// Present says whether User now has a connection in Room on some live
// node: it crossed 0↔1, so the hub sends presence join or leave once for
// all of the user's tabs on all nodes. For Room "", Conns is the user's
// connection count over all live nodes, reported whenever it changes.
type Change struct {
	Room    string
	User    string
	Present bool
	Conns   int
}

// Presence is the cluster-wide presence view: the union over live nodes of
// room → user → connections, this node's own counts included. It is pure
// logic (the caller supplies the time), safe for concurrent use, and
// answers the questions the hub asks: is a user in a room anywhere, who is
// in a room, how many connections does a user have in the cluster.
type Presence struct {
	self string        // this node's id; its entries never expire
	ttl  time.Duration // a node silent for longer is dropped by Expire

	mu    sync.Mutex                // guards nodes and rooms
	nodes map[string]*nodeState     // every live node, self included
	rooms map[string]map[string]int // room → user → connections over live nodes; room "" holds user totals
}

// nodeState is one node's roster as last heard.
type nodeState struct {
	inc, seq uint64
	seen     time.Time // when it was last heard from; zero for self
	entries  map[Key]Entry
	sum      uint64 // the sum of entryHash over entries (a digest's Sum)
}

// NewPresence returns an empty view for node self whose remote entries
// expire ttl after their node was last heard from.
func NewPresence(self string, ttl time.Duration) *Presence {
	return &Presence{
		self:  self,
		ttl:   ttl,
		nodes: map[string]*nodeState{self: {entries: map[Key]Entry{}}},
		rooms: map[string]map[string]int{},
	}
}

// set changes node st's entry k to e (e.Conns 0 removes it), keeps the
// totals, and appends the resulting change to out. p.mu must be held.
func (p *Presence) set(st *nodeState, k Key, e Entry, out []Change) []Change {
	prev, had := st.entries[k]
	if had {
		st.sum -= entryHash(prev)
	}
	old := prev.Conns
	if e.Conns <= 0 {
		delete(st.entries, k)
		e.Conns = 0
	} else {
		st.entries[k] = e
		st.sum += entryHash(e)
	}
	if e.Conns == old {
		return out
	}
	users := p.rooms[k.Room]
	before := users[k.User]
	after := before - old + e.Conns
	switch {
	case after > 0 && users == nil:
		users = map[string]int{k.User: after}
		p.rooms[k.Room] = users
	case after > 0:
		users[k.User] = after
	default:
		delete(users, k.User)
		if len(users) == 0 {
			delete(p.rooms, k.Room)
		}
	}
	switch {
	case k.Room == "":
		out = append(out, Change{User: k.User, Conns: after})
	case (before > 0) != (after > 0):
		out = append(out, Change{Room: k.Room, User: k.User, Present: after > 0})
	}
	return out
}

// drop removes node id and its entries. p.mu must be held.
func (p *Presence) drop(id string, out []Change) []Change {
	st := p.nodes[id]
	if st == nil {
		return out
	}
	for k := range st.entries {
		out = p.set(st, k, Entry{}, out)
	}
	delete(p.nodes, id)
	return out
}

// SetLocal records this node's count for user in room (room "": the
// user's connections, with newest, Unix ns) and returns the change it
// causes, if any.
func (p *Presence) SetLocal(room, user string, conns int, newest int64) (Change, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var buf [1]Change
	out := p.set(p.nodes[p.self], Key{room, user}, Entry{Room: room, User: user, Conns: conns, Newest: newest}, buf[:0])
	if len(out) == 0 {
		return Change{}, false
	}
	return out[0], true
}

// Local returns this node's entries, sorted by room then user: the body of
// its full roster.
func (p *Presence) Local() []Entry {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.nodes[p.self]
	out := make([]Entry, 0, len(st.entries))
	for _, e := range st.entries {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b Entry) int { return Key{a.Room, a.User}.compare(Key{b.Room, b.User}) })
	return out
}

// Agrees reports whether this view holds the same entries for the digest
// r's node as r says it has (same incarnation, Sum and Count). When it
// does not, a delta was lost (or the node is new here): ask the node for
// its full roster.
func (p *Presence) Agrees(r *Roster) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.nodes[r.Node]
	return st != nil && st.inc == r.Inc && st.sum == r.Sum && len(st.entries) == r.Count
}

// LocalEntry returns this node's entry for user in room.
func (p *Presence) LocalEntry(room, user string) Entry {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e, ok := p.nodes[p.self].entries[Key{room, user}]; ok {
		return e
	}
	return Entry{Room: room, User: user}
}

// Apply merges a roster heard at now from another node and returns the
// changes it causes. A roster of this node itself, an older
// incarnation, or a publication already applied changes nothing.
func (p *Presence) Apply(r *Roster, now time.Time) []Change {
	if r.Node == "" || r.Node == p.self {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Change
	st := p.nodes[r.Node]
	switch {
	case st == nil:
	case r.Inc < st.inc:
		return nil // a restarted node's previous life
	case r.Inc > st.inc:
		out = p.drop(r.Node, out) // restarted: its old entries are gone
		st = nil
	case r.Seq <= st.seq:
		return nil
	}
	if r.Bye {
		out = p.drop(r.Node, out)
		sortChanges(out)
		return out
	}
	if st == nil {
		st = &nodeState{inc: r.Inc, entries: map[Key]Entry{}}
		p.nodes[r.Node] = st
	}
	st.seq, st.seen = r.Seq, now
	if r.Full {
		keep := make(map[Key]struct{}, len(r.Entries))
		for _, e := range r.Entries {
			keep[Key{e.Room, e.User}] = struct{}{}
		}
		for k := range st.entries {
			if _, ok := keep[k]; !ok && r.inRange(k) {
				out = p.set(st, k, Entry{}, out)
			}
		}
	}
	for _, e := range r.Entries {
		k := Key{e.Room, e.User}
		if r.Full && !r.inRange(k) {
			continue // a malformed part: stay within its bounds
		}
		out = p.set(st, k, e, out)
	}
	sortChanges(out)
	return out
}

// Expire drops every other node not heard from for longer than the TTL
// and returns the changes. The caller skips it while the broker is
// disconnected: then silence proves nothing, and rosters freeze.
func (p *Presence) Expire(now time.Time) []Change {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Change
	for id, st := range p.nodes {
		if id != p.self && now.Sub(st.seen) > p.ttl {
			out = p.drop(id, out)
		}
	}
	sortChanges(out)
	return out
}

// Thaw counts every node as heard from at now. Call it when the broker
// reconnects, so that nodes get a full TTL to be heard from again.
func (p *Presence) Thaw(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, st := range p.nodes {
		if id != p.self {
			st.seen = now
		}
	}
}

// Present reports whether user has a connection in room on a live node.
func (p *Presence) Present(room, user string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rooms[room][user] > 0
}

// Count returns user's connections in room over the live nodes.
func (p *Presence) Count(room, user string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rooms[room][user]
}

// Members returns the users present in room on the live nodes, sorted:
// joined.members.
func (p *Presence) Members(room string) []string {
	p.mu.Lock()
	users := p.rooms[room]
	out := make([]string, 0, len(users))
	for u := range users {
		out = append(out, u)
	}
	p.mu.Unlock()
	slices.Sort(out)
	return out
}

// Conns returns user's connections on all live nodes, this one included,
// and when the newest of those on other nodes opened (Unix ns; 0 if none).
func (p *Presence) Conns(user string) (total int, newestElsewhere int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := Key{"", user}
	for id, st := range p.nodes {
		if id != p.self {
			newestElsewhere = max(newestElsewhere, st.entries[k].Newest)
		}
	}
	return p.rooms[""][user], newestElsewhere
}

// Nodes returns the ids of the live nodes, this one included, sorted.
func (p *Presence) Nodes() []string {
	p.mu.Lock()
	out := make([]string, 0, len(p.nodes))
	for id := range p.nodes {
		out = append(out, id)
	}
	p.mu.Unlock()
	slices.Sort(out)
	return out
}

// sortChanges orders changes by room, then user, so that callers and tests
// see a stable order.
func sortChanges(cs []Change) {
	slices.SortFunc(cs, func(a, b Change) int { return Key{a.Room, a.User}.compare(Key{b.Room, b.User}) })
}
