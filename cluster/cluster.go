package cluster

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"time"
)

// Message is one committed chat message as it travels between nodes.
type Message struct {
	ID   uint64    // the room's id for it, assigned by the store's commit
	From string    // the author
	Text string    // the text
	TS   time.Time // the timestamp the store kept
}

// Kick names connections to close with 4003 on every node: every
// connection of User, the one holding token JTI, those of Session, or
// those whose token Kid signed (the fields that are set). It mirrors
// chat.Revoked.
type Kick struct {
	User    string `json:"u,omitempty"`
	JTI     string `json:"j,omitempty"`
	Session string `json:"s,omitempty"`
	Kid     string `json:"k,omitempty"`
}

func (k Kick) empty() bool { return k == Kick{} }

// Handler receives what other nodes publish. The broker calls it from its
// own goroutines:
//   - Messages: from one of a few delivery goroutines; the messages of one
//     room always come from the same goroutine, in the order published. A
//     room may still be delivered a moment after Unsubscribe, and messages
//     may be lost, duplicated by a resync, or arrive with holes: they are
//     hints, and the store is the truth.
//   - Presence, Reconnected: from the broker's loop goroutine, one at a
//     time. They should return quickly (hand store work to a goroutine).
//   - Typing: from the room's delivery goroutine, in order with the
//     room's messages.
//   - Kick, Changed, Read: from the goroutine of their subscription, and
//     (Kick, Changed) synchronously from Broker.Kick and Broker.Changed
//     for this node's own.
type Handler interface {
	// Messages delivers messages committed on another node to room, whose
	// epoch is epoch (see chat.Store.Epoch), in ascending id order.
	Messages(room, epoch string, msgs []Message)
	// Presence reports changes of the cluster-wide presence caused by
	// other nodes (their rosters, or their expiry); see Change. Changes by
	// this node's own SetPresence and SetConns are returned to the caller
	// instead. Presence changes are state, not events: reconcile with
	// Broker.View rather than trusting the order of calls.
	Presence(changes []Change)
	// Typing relays a typing indicator of user in room, published by
	// another node (which applied the rate limit and checked the typist's
	// access), to this node's members of room other than user. Ephemeral:
	// lost ones are not repaired.
	Typing(room, user string)
	// Read echoes user's read marker of room, moved to id on another node
	// (and stored there), to this node's connections of user. Lost ones
	// are not repaired: a client catches up on its next rooms frame or
	// join, which read the stored marker.
	Read(user, room string, id uint64)
	// Kick closes the connections k names (4003).
	Kick(k Kick)
	// Changed says the store's change feed has reached seq: read it now
	// rather than at the next poll.
	Changed(seq uint64)
	// Reconnected says the broker is connected again after an outage (or
	// for the first time, when it started while the server was down).
	// Subscriptions are restored by then; what was published meanwhile is
	// lost, so the node re-reads the heads of its rooms and the change feed.
	Reconnected()
}

// Broker carries messages, presence, kicks and change hints between the
// nodes of a cluster. Everything it carries is a hint: a node must stay
// correct, only slower, when a publication is lost. Local serves a single
// node; NATS joins the nodes of a cluster through NATS core pub/sub.
type Broker interface {
	// Start begins delivery to h. The NATS broker also gathers the rosters
	// of the live nodes (for a short window) before it returns, so that
	// View is complete when the node starts serving. Call it once.
	Start(h Handler) error
	// Node is this node's id.
	Node() string
	// PublishMessages sends a room's committed messages (ascending ids) to
	// the other nodes subscribed to the room. Call it after the commit,
	// never before. It does not block on the network; an error means the
	// publication is lost (the receivers fill the hole from the store).
	PublishMessages(room, epoch string, msgs []Message) error
	// PublishTyping sends a typing indicator of user in room to the other
	// nodes subscribed to the room (on the room's subject). Best effort,
	// never stored, not repeated: the caller rate-limits it.
	PublishTyping(room, user string) error
	// PublishRead tells the other nodes that user's read marker of room
	// is now id (already stored), so that they echo it to the user's
	// connections there. It publishes only when the cluster-wide view
	// counts connections of user on another node. Best effort.
	PublishRead(user, room string, id uint64) error
	// Subscribe registers this node's interest in a room and returns once
	// the NATS server has it (a round trip), so that any message published
	// after Subscribe returns reaches the node. Calls are counted: the
	// interest ends with the matching number of Unsubscribe calls. While
	// the broker is disconnected it returns nil at once; the subscription
	// is restored on reconnect and Reconnected follows. An error other
	// than ErrRoomName or ErrClosed leaves the interest registered.
	Subscribe(room string) error
	// Unsubscribe undoes one Subscribe.
	Unsubscribe(room string) error
	// SetPresence records that user has conns connections (0: none) of
	// this node in room. It returns the change of the cluster-wide
	// presence this caused, if any (ok). Other nodes learn it at once (a
	// delta); a node that missed it learns it from the full roster it
	// asks for when this node's next heartbeat digest disagrees.
	SetPresence(room, user string, conns int) (c Change, ok bool)
	// SetConns records that user has conns live connections on this node,
	// the newest opened at newest; it returns the user's connections on all
	// live nodes, for the per-user cap.
	SetConns(user string, conns int, newest time.Time) int
	// View is the cluster-wide presence: rosters of the live nodes and
	// this node's own.
	View() *Presence
	// Kick delivers k to this node's Handler (synchronously, before it
	// returns: the caller must not hold a lock the Handler takes) and
	// publishes it to every other node.
	Kick(k Kick) error
	// Changed delivers seq to this node's Handler (synchronously) and to
	// every other node.
	Changed(seq uint64) error
	// Up reports whether the broker reaches the other nodes now.
	Up() bool
	// Stats returns counters for /metrics.
	Stats() Stats
	// Close tells the other nodes this one is leaving (its presence goes at
	// once) and stops delivery. Safe to call more than once.
	Close() error
}

// Stats are a broker's counters since it started.
type Stats struct {
	Published     uint64 // messages published (not counting presence, kicks, changes)
	Received      uint64 // messages received from other nodes
	Dropped       uint64 // publications dropped: publish errors and full delivery queues
	Reconnects    uint64 // times the connection came back
	Nodes         int    // live nodes, this one included
	RosterUpdates uint64 // rosters (full or delta) applied
}

// Errors.
var (
	// ErrClosed is returned by every method after Close.
	ErrClosed = errors.New("cluster: broker closed")
	// ErrDown is returned by publications while the broker is
	// disconnected: they are dropped, not buffered (stale kicks and
	// messages are worse than none; the store catches the node up).
	ErrDown = errors.New("cluster: broker disconnected")
)

// NewNodeID returns a random node id: 12 hex digits, unique enough to tell
// a cluster's processes apart.
func NewNodeID() string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
}

// ValidNodeID reports whether id may be a node id: 1..64 of [A-Za-z0-9_-].
func ValidNodeID(id string) bool { return validPrefix(id) }

// ValidName reports whether name may be a cluster name (the first token
// of every subject): 1..64 of [A-Za-z0-9_-].
func ValidName(name string) bool { return validPrefix(name) }
