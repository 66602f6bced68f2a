package cluster

import (
	"sync/atomic"
	"time"
)

// Local is the broker of a node that is alone: the default (broker: "").
// It publishes nothing, because nobody listens: the hub already delivers
// its own commits (and typing, and read echoes) to its own members, so
// PublishMessages, PublishTyping, PublishRead, Subscribe and Unsubscribe
// cost nothing and today's single-node figures stay as they are. Kick
// and Changed loop back to the Handler synchronously, as they
// would reach this node through NATS; presence is this node's own counts.
type Local struct {
	node   string
	view   *Presence
	h      atomic.Pointer[Handler] // set by Start
	closed atomic.Bool
}

var _ Broker = (*Local)(nil)

// NewLocal returns the broker of a single node called node ("" picks a
// random id).
func NewLocal(node string) *Local {
	if node == "" {
		node = NewNodeID()
	}
	return &Local{node: node, view: NewPresence(node, time.Hour)}
}

// Start implements Broker.
func (l *Local) Start(h Handler) error {
	if l.closed.Load() {
		return ErrClosed
	}
	l.h.Store(&h)
	return nil
}

// Node implements Broker.
func (l *Local) Node() string { return l.node }

// PublishMessages implements Broker: there is no other node to tell.
func (l *Local) PublishMessages(room, epoch string, msgs []Message) error {
	if l.closed.Load() {
		return ErrClosed
	}
	return nil
}

// PublishTyping implements Broker: the hub relays typing to its own
// members itself.
func (l *Local) PublishTyping(room, user string) error {
	if l.closed.Load() {
		return ErrClosed
	}
	return nil
}

// PublishRead implements Broker: the hub echoes a read marker to the
// user's other connections itself.
func (l *Local) PublishRead(user, room string, id uint64) error {
	if l.closed.Load() {
		return ErrClosed
	}
	return nil
}

// Subscribe implements Broker: this node hears its own commits already.
func (l *Local) Subscribe(room string) error {
	if room == "" || len(room) > MaxRoomName {
		return ErrRoomName
	}
	if l.closed.Load() {
		return ErrClosed
	}
	return nil
}

// Unsubscribe implements Broker.
func (l *Local) Unsubscribe(room string) error { return l.Subscribe(room) }

// SetPresence implements Broker.
func (l *Local) SetPresence(room, user string, conns int) (Change, bool) {
	return l.view.SetLocal(room, user, conns, 0)
}

// SetConns implements Broker.
func (l *Local) SetConns(user string, conns int, newest time.Time) int {
	var ns int64
	if conns > 0 {
		ns = newest.UnixNano()
	}
	l.view.SetLocal("", user, conns, ns)
	return conns
}

// View implements Broker.
func (l *Local) View() *Presence { return l.view }

// Kick implements Broker: the Handler gets k before Kick returns.
func (l *Local) Kick(k Kick) error {
	if l.closed.Load() {
		return ErrClosed
	}
	if h := l.h.Load(); h != nil && !k.empty() {
		(*h).Kick(k)
	}
	return nil
}

// Changed implements Broker: the Handler gets seq before Changed returns.
func (l *Local) Changed(seq uint64) error {
	if l.closed.Load() {
		return ErrClosed
	}
	if h := l.h.Load(); h != nil {
		(*h).Changed(seq)
	}
	return nil
}

// Up implements Broker: a single node is always whole.
func (l *Local) Up() bool { return !l.closed.Load() }

// Stats implements Broker.
func (l *Local) Stats() Stats { return Stats{Nodes: 1} }

// Close implements Broker.
func (l *Local) Close() error {
	l.closed.Store(true)
	return nil
}
