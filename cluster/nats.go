package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// Defaults of Options (the config keys cluster.* default to the same).
const (
	DefaultName          = "chatctl"
	DefaultHeartbeat     = 5 * time.Second
	DefaultPresenceTTL   = 15 * time.Second
	DefaultRosterWait    = 200 * time.Millisecond
	DefaultReconnectWait = time.Second
	DefaultFlushTimeout  = 2 * time.Second
)

// Buffer sizes.
const (
	// shardQueue is the room messages one delivery goroutine may have
	// waiting; beyond it NATS drops (counted in Stats.Dropped), and the
	// receiving hub fills the hole from the store.
	shardQueue = 8192
	// rosterQueue is the same for rosters, requests and replies; a
	// dropped one is repaired by the next heartbeat.
	rosterQueue = 4096
	// maxRosterPart caps one roster publication (a NATS server's default
	// max_payload is 1 MiB).
	maxRosterPart = 256 << 10
)

// Options configure a NATS broker. Zero fields take the defaults above.
type Options struct {
	URL           string        // nats://host:port[,nats://host:port…] (config key broker)
	Name          string        // cluster name: the first token of every subject (cluster.name)
	Node          string        // this node's id; "" picks a random one (cluster.node_id)
	Heartbeat     time.Duration // period of the full roster (cluster.heartbeat)
	PresenceTTL   time.Duration // a node silent this long leaves the view (cluster.presence_ttl)
	RosterWait    time.Duration // how long Start gathers the other nodes' rosters
	ReconnectWait time.Duration // pause between reconnection attempts
	FlushTimeout  time.Duration // how long Subscribe waits for the server
	Log           *slog.Logger  // nil: discard
}

func (o Options) withDefaults() Options {
	if o.Name == "" {
		o.Name = DefaultName
	}
	if o.Node == "" {
		o.Node = NewNodeID()
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.Heartbeat, DefaultHeartbeat)
	def(&o.PresenceTTL, DefaultPresenceTTL)
	def(&o.RosterWait, DefaultRosterWait)
	def(&o.ReconnectWait, DefaultReconnectWait)
	def(&o.FlushTimeout, DefaultFlushTimeout)
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return o
}

// NATS is the broker of a node in a cluster, over NATS core pub/sub (no
// JetStream: nothing is stored in NATS; the database is the truth).
//
// Subjects, with prefix = Options.Name:
//
//	<prefix>.room.<token>  a room's committed messages and typing (token: see RoomToken)
//	<prefix>.roster        rosters: deltas, heartbeats (full) and goodbyes
//	<prefix>.roster.req    "send me your full roster", answered to the reply inbox
//	<prefix>.kick          revocations
//	<prefix>.changed       change-feed hints
//	<prefix>.read          read-marker echoes for a user's tabs on other nodes
//
// Read echoes use one subject that every node listens to, not one per
// user: a subscription per connected user would put every connect and
// disconnect on the NATS server (interest changes, a round trip to be
// sure of it) for a frame that most users never need, since most have
// their tabs on one node. Instead PublishRead publishes only when the
// presence view counts connections of the user on another node, so the
// common case costs nothing on the network and the rare one one small
// message per node.
//
// The connection never echoes a node's own publications back to it, retries
// forever, and buffers nothing while disconnected: a publication then fails
// with ErrDown at once (a stale kick delivered minutes later could close a
// connection opened since; stale messages are refetched from the store
// anyway).
type NATS struct {
	opts Options
	subj subjects
	inc  uint64 // this incarnation: start time, Unix ns
	view *Presence
	log  *slog.Logger
	seed maphash.Seed // spreads rooms over shards

	nc       *nats.Conn           // set by Start
	h        Handler              // set by Start, before any goroutine that reads it
	inbox    string               // replies to our roster requests
	rsubs    []*nats.Subscription // the roster subjects and the inbox; set by Start
	shards   []chan *nats.Msg     // room messages, one delivery goroutine each
	rosterCh chan *nats.Msg       // rosters, requests and replies, for the loop
	connCh   chan bool            // loop: (re)connected; true for a reconnect
	wake     chan struct{}        // loop: dirty presence entries to publish
	done     chan struct{}        // closed by Close
	wg       sync.WaitGroup       // the loop and the delivery goroutines

	mu     sync.Mutex          // guards rooms, dirty, closed, synced
	rooms  map[string]*roomSub // subscribed rooms
	dirty  map[Key]struct{}    // local entries changed since the last delta
	closed bool                // Close began
	synced bool                // Start gathered rosters over a live connection

	seq       uint64 // roster publication counter; loop goroutine only (and Start before it runs)
	warnedDup bool   // logged a duplicate node id; loop goroutine only
	// asked is when this node last asked each other node for its full
	// roster because a digest disagreed; loop goroutine only.
	asked map[string]time.Time
	// pub and pubSum are this node's entries as the other nodes were sent
	// them, and the sum of their hashes: the digest's content. Loop
	// goroutine only (and Start before it runs).
	pub    map[Key]Entry
	pubSum uint64

	// Counters for Stats.
	published, received, dropped, reconnects, rosters atomic.Uint64

	droppedGone atomic.Uint64 // messages NATS dropped on subscriptions since unsubscribed
	slowWarned  atomic.Bool   // logged that a delivery queue overflowed
	frozenTicks atomic.Uint64 // expiry checks skipped while disconnected (tests watch it)
	fullAsks    atomic.Uint64 // full rosters asked for because a digest disagreed (tests watch it)
}

// roomSub is one room's subscription, counted.
type roomSub struct {
	refs  int
	sub   *nats.Subscription
	ready chan struct{} // closed once the server confirmed the subscription (or gave up)
}

var _ Broker = (*NATS)(nil)

// NewNATS returns a NATS broker; Start connects it.
func NewNATS(opts Options) (*NATS, error) {
	opts = opts.withDefaults()
	if strings.TrimSpace(opts.URL) == "" {
		return nil, errors.New("cluster: no NATS URL")
	}
	if !ValidName(opts.Name) {
		return nil, fmt.Errorf("cluster: invalid cluster name %q (want 1..64 of A-Z a-z 0-9 _ -)", opts.Name)
	}
	if !ValidNodeID(opts.Node) {
		return nil, fmt.Errorf("cluster: invalid node id %q (want 1..64 of A-Z a-z 0-9 _ -)", opts.Node)
	}
	b := &NATS{
		opts:     opts,
		subj:     newSubjects(opts.Name),
		inc:      uint64(time.Now().UnixNano()),
		view:     NewPresence(opts.Node, opts.PresenceTTL),
		log:      opts.Log.With("node", opts.Node),
		seed:     maphash.MakeSeed(),
		rosterCh: make(chan *nats.Msg, rosterQueue),
		connCh:   make(chan bool, 4),
		wake:     make(chan struct{}, 1),
		done:     make(chan struct{}),
		rooms:    map[string]*roomSub{},
		dirty:    map[Key]struct{}{},
		pub:      map[Key]Entry{},
	}
	n := min(max(runtime.GOMAXPROCS(0), 1), 8)
	b.shards = make([]chan *nats.Msg, n)
	for i := range b.shards {
		b.shards[i] = make(chan *nats.Msg, shardQueue)
	}
	return b, nil
}

// Start implements Broker. It connects (a server that is down is not an
// error: the broker keeps trying, Up is false meanwhile, and Reconnected
// follows the first connection), subscribes to the cluster subjects and,
// when connected, gathers the live nodes' rosters for Options.RosterWait.
func (b *NATS) Start(h Handler) error {
	if b.isClosed() {
		return ErrClosed
	}
	b.h = h
	nc, err := nats.Connect(b.opts.URL,
		nats.Name("chatctl "+b.opts.Node),
		nats.NoEcho(),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.ReconnectWait(b.opts.ReconnectWait),
		nats.ReconnectJitter(b.opts.ReconnectWait/10, b.opts.ReconnectWait/10),
		nats.ReconnectBufSize(-1),
		// A silent server is found dead after a few heartbeats (not
		// faster than every 2s: a busy server is not a dead one).
		nats.PingInterval(max(b.opts.Heartbeat, 2*time.Second)),
		nats.MaxPingsOutstanding(3),
		nats.ConnectHandler(func(*nats.Conn) { b.connEvent(false) }),
		nats.ReconnectHandler(func(*nats.Conn) { b.connEvent(true) }),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			b.log.Warn("cluster: NATS disconnected", "err", err)
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrSlowConsumer) {
				if !b.slowWarned.Swap(true) {
					b.log.Warn("cluster: delivery queue full, NATS drops messages (the store fills the holes)", "subject", sub.Subject)
				}
				return
			}
			b.log.Warn("cluster: NATS error", "err", err)
		}),
	)
	if err != nil {
		return fmt.Errorf("cluster: connect to NATS: %w", err)
	}
	b.mu.Lock()
	b.nc = nc
	b.mu.Unlock()
	b.inbox = nc.NewInbox()
	fail := func(err error) error {
		nc.Close()
		return fmt.Errorf("cluster: subscribe: %w", err)
	}
	for _, s := range []string{b.subj.roster, b.subj.rosterReq, b.inbox} {
		sub, err := nc.ChanSubscribe(s, b.rosterCh)
		if err != nil {
			return fail(err)
		}
		b.rsubs = append(b.rsubs, sub)
	}
	if _, err := nc.Subscribe(b.subj.kick, b.onKick); err != nil {
		return fail(err)
	}
	if _, err := nc.Subscribe(b.subj.changed, b.onChanged); err != nil {
		return fail(err)
	}
	if _, err := nc.Subscribe(b.subj.read, b.onRead); err != nil {
		return fail(err)
	}
	if nc.IsConnected() {
		if err := nc.FlushTimeout(b.opts.FlushTimeout); err == nil {
			b.mu.Lock()
			b.synced = true
			b.mu.Unlock()
			b.publishFull(b.subj.roster)
			b.requestRosters()
		}
	} else {
		b.log.Warn("cluster: NATS unreachable; serving local members and retrying", "url", redactURLs(b.opts.URL))
	}
	b.wg.Add(1 + len(b.shards))
	for _, ch := range b.shards {
		go b.deliverLoop(ch)
	}
	go b.loop()
	b.mu.Lock()
	synced := b.synced
	b.mu.Unlock()
	if synced {
		// The replies are applied by the loop as they come.
		t := time.NewTimer(b.opts.RosterWait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-b.done:
		}
	}
	return nil
}

// connEvent passes a (re)connection to the loop.
func (b *NATS) connEvent(reconnect bool) {
	select {
	case b.connCh <- reconnect:
	default: // several pending: one resync covers them
	}
}

// Node implements Broker.
func (b *NATS) Node() string { return b.opts.Node }

// View implements Broker.
func (b *NATS) View() *Presence { return b.view }

// Up implements Broker.
func (b *NATS) Up() bool {
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	return !closed && b.nc != nil && b.nc.IsConnected()
}

// Stats implements Broker. Dropped counts failed publications and the
// messages NATS dropped because a delivery queue was full.
func (b *NATS) Stats() Stats {
	dropped := b.dropped.Load() + b.droppedGone.Load()
	count := func(sub *nats.Subscription) {
		if n, err := sub.Dropped(); err == nil {
			dropped += uint64(n)
		}
	}
	b.mu.Lock()
	for _, rs := range b.rooms {
		count(rs.sub)
	}
	b.mu.Unlock()
	for _, sub := range b.rsubs {
		count(sub)
	}
	return Stats{
		Published:     b.published.Load(),
		Received:      b.received.Load(),
		Dropped:       dropped,
		Reconnects:    b.reconnects.Load(),
		RosterUpdates: b.rosters.Load(),
		Nodes:         len(b.view.Nodes()),
	}
}

// publish sends data on subject, failing fast while disconnected.
func (b *NATS) publish(subject string, data []byte) error {
	if err := b.nc.Publish(subject, data); err != nil {
		b.dropped.Add(1)
		if errors.Is(err, nats.ErrConnectionClosed) {
			return ErrClosed
		}
		if !b.nc.IsConnected() {
			return fmt.Errorf("%w: %v", ErrDown, err)
		}
		return err
	}
	return nil
}

func (b *NATS) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// PublishMessages implements Broker.
func (b *NATS) PublishMessages(room, epoch string, msgs []Message) error {
	if len(msgs) == 0 {
		return nil
	}
	subject, err := b.subj.room(room)
	if err != nil {
		return err
	}
	if b.nc == nil || b.isClosed() {
		return ErrClosed
	}
	if err := b.publish(subject, appendMessages(nil, b.opts.Node, epoch, msgs)); err != nil {
		return err
	}
	b.published.Add(uint64(len(msgs)))
	return nil
}

// PublishTyping implements Broker.
func (b *NATS) PublishTyping(room, user string) error {
	if user == "" || len(user) > MaxUserName {
		return fmt.Errorf("cluster: invalid user name (%d bytes)", len(user))
	}
	subject, err := b.subj.room(room)
	if err != nil {
		return err
	}
	if b.nc == nil || b.isClosed() {
		return ErrClosed
	}
	return b.publish(subject, appendTyping(nil, b.opts.Node, user))
}

// wireRead is the payload of <prefix>.read.
type wireRead struct {
	Node string `json:"n"`
	User string `json:"u"`
	Room string `json:"r"`
	ID   uint64 `json:"i"`
}

// valid reports whether w may be delivered: a user, a room the broker
// accepts, an id.
func (w *wireRead) valid() bool {
	return w.User != "" && len(w.User) <= MaxUserName && w.Room != "" && len(w.Room) <= MaxRoomName && w.ID > 0
}

// PublishRead implements Broker.
func (b *NATS) PublishRead(user, room string, id uint64) error {
	w := wireRead{Node: b.opts.Node, User: user, Room: room, ID: id}
	if !w.valid() {
		return fmt.Errorf("cluster: invalid read echo (user %d bytes, room %d bytes, id %d)", len(user), len(room), id)
	}
	if b.nc == nil || b.isClosed() {
		return ErrClosed
	}
	if _, elsewhere := b.view.Conns(user); elsewhere == 0 {
		return nil // no connection of user on another node: nobody to tell
	}
	data, _ := json.Marshal(w)
	return b.publish(b.subj.read, data)
}

func (b *NATS) onRead(m *nats.Msg) {
	var w wireRead
	if err := json.Unmarshal(m.Data, &w); err != nil || w.Node == b.opts.Node || !w.valid() {
		return
	}
	b.h.Read(w.User, w.Room, w.ID)
}

// shard returns the delivery queue of room.
func (b *NATS) shard(room string) chan *nats.Msg {
	return b.shards[maphash.String(b.seed, room)%uint64(len(b.shards))]
}

// Subscribe implements Broker.
func (b *NATS) Subscribe(room string) error {
	subject, err := b.subj.room(room)
	if err != nil {
		return err
	}
	b.mu.Lock()
	if b.closed || b.nc == nil {
		b.mu.Unlock()
		return ErrClosed
	}
	if rs := b.rooms[room]; rs != nil {
		rs.refs++
		ready := rs.ready
		b.mu.Unlock()
		<-ready // the first subscriber's round trip covers this one
		return nil
	}
	sub, err := b.nc.ChanSubscribe(subject, b.shard(room))
	if err != nil {
		b.mu.Unlock()
		if errors.Is(err, nats.ErrConnectionClosed) {
			return ErrClosed
		}
		return fmt.Errorf("cluster: subscribe %s: %w", room, err)
	}
	rs := &roomSub{refs: 1, sub: sub, ready: make(chan struct{})}
	b.rooms[room] = rs
	b.mu.Unlock()
	defer close(rs.ready)
	if !b.nc.IsConnected() {
		return nil // sent on reconnect; Reconnected follows
	}
	if err := b.nc.FlushTimeout(b.opts.FlushTimeout); err != nil && b.nc.IsConnected() {
		return fmt.Errorf("cluster: subscribe %s: %w", room, err)
	}
	return nil
}

// Unsubscribe implements Broker.
func (b *NATS) Unsubscribe(room string) error {
	if _, err := RoomToken(room); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	rs := b.rooms[room]
	if rs == nil {
		return nil
	}
	if rs.refs--; rs.refs > 0 {
		return nil
	}
	delete(b.rooms, room)
	if n, err := rs.sub.Dropped(); err == nil {
		b.droppedGone.Add(uint64(n))
	}
	if err := rs.sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		return fmt.Errorf("cluster: unsubscribe %s: %w", room, err)
	}
	return nil
}

// SetPresence implements Broker.
func (b *NATS) SetPresence(room, user string, conns int) (Change, bool) {
	c, ok := b.view.SetLocal(room, user, conns, 0)
	b.markDirty(Key{room, user})
	return c, ok
}

// SetConns implements Broker.
func (b *NATS) SetConns(user string, conns int, newest time.Time) int {
	var ns int64
	if conns > 0 {
		ns = newest.UnixNano()
	}
	b.view.SetLocal("", user, conns, ns)
	b.markDirty(Key{"", user})
	total, _ := b.view.Conns(user)
	return total
}

// markDirty queues k for the next delta and wakes the loop.
func (b *NATS) markDirty(k Key) {
	b.mu.Lock()
	b.dirty[k] = struct{}{}
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// wireKick is the payload of <prefix>.kick.
type wireKick struct {
	Node string `json:"n"`
	Kick
}

// wireChanged is the payload of <prefix>.changed.
type wireChanged struct {
	Node string `json:"n"`
	Seq  uint64 `json:"q"`
}

// Kick implements Broker.
func (b *NATS) Kick(k Kick) error {
	if b.nc == nil || b.isClosed() {
		return ErrClosed
	}
	if k.empty() {
		return nil
	}
	b.h.Kick(k)
	data, _ := json.Marshal(wireKick{Node: b.opts.Node, Kick: k})
	return b.publish(b.subj.kick, data)
}

// Changed implements Broker.
func (b *NATS) Changed(seq uint64) error {
	if b.nc == nil || b.isClosed() {
		return ErrClosed
	}
	b.h.Changed(seq)
	data, _ := json.Marshal(wireChanged{Node: b.opts.Node, Seq: seq})
	return b.publish(b.subj.changed, data)
}

func (b *NATS) onKick(m *nats.Msg) {
	var w wireKick
	if err := json.Unmarshal(m.Data, &w); err != nil || w.Node == b.opts.Node || w.Kick.empty() {
		return
	}
	b.h.Kick(w.Kick)
}

func (b *NATS) onChanged(m *nats.Msg) {
	var w wireChanged
	if err := json.Unmarshal(m.Data, &w); err != nil || w.Node == b.opts.Node {
		return
	}
	b.h.Changed(w.Seq)
}

// deliverLoop hands one shard's room messages to the Handler, in order.
func (b *NATS) deliverLoop(ch chan *nats.Msg) {
	defer b.wg.Done()
	for {
		select {
		case <-b.done:
			return
		case m := <-ch:
			room, err := b.subj.roomOf(m.Subject)
			if err != nil {
				continue
			}
			p, err := decodeRoom(m.Data)
			if errors.Is(err, errKind) {
				continue // a newer node's kind
			}
			if err != nil {
				b.log.Warn("cluster: bad message payload", "room", room, "err", err)
				continue
			}
			if p.node == b.opts.Node {
				continue
			}
			switch p.kind {
			case kindTyping:
				b.h.Typing(room, p.user)
			case kindMessages:
				if len(p.msgs) > 0 {
					b.received.Add(uint64(len(p.msgs)))
					b.h.Messages(room, p.epoch, p.msgs)
				}
			}
		}
	}
}

// loop owns the roster side: it applies rosters and answers requests,
// publishes deltas and heartbeats, expires silent nodes, and resyncs after
// a reconnection.
func (b *NATS) loop() {
	defer b.wg.Done()
	hb := time.NewTicker(b.opts.Heartbeat)
	defer hb.Stop()
	exp := time.NewTicker(max(b.opts.PresenceTTL/4, time.Millisecond))
	defer exp.Stop()
	for {
		select {
		case <-b.done:
			return
		case m := <-b.rosterCh:
			b.onRoster(m)
		case <-b.wake:
			b.publishDeltas()
		case <-hb.C:
			if b.nc.IsConnected() {
				b.publishDeltas() // first: the digest covers them
				b.publishDigest()
			}
		case <-exp.C:
			// While disconnected silence proves nothing: rosters freeze.
			if !b.nc.IsConnected() {
				b.frozenTicks.Add(1)
				continue
			}
			if cs := b.view.Expire(time.Now()); len(cs) > 0 {
				b.h.Presence(cs)
			}
		case reconnect := <-b.connCh:
			b.mu.Lock()
			first := !reconnect && b.synced
			b.synced = true
			b.mu.Unlock()
			if first {
				continue // Start's own connection, synced already
			}
			b.reconnects.Add(1)
			b.log.Info("cluster: NATS connected; resyncing")
			// nats.go has resent the subscriptions; one round trip makes
			// sure the server has them before the node resyncs, so that
			// nothing published after the resync's reads can miss us.
			if err := b.nc.FlushTimeout(b.opts.FlushTimeout); err != nil {
				b.log.Warn("cluster: NATS flush after reconnecting", "err", err)
			}
			b.view.Thaw(time.Now())
			b.publishFull(b.subj.roster)
			b.requestRosters()
			b.h.Reconnected()
		}
	}
}

// onRoster handles a message on the roster subjects or the inbox.
func (b *NATS) onRoster(m *nats.Msg) {
	if m.Subject == b.subj.rosterReq {
		// An empty request is a starting node's, to every node; one that
		// names a node is for that node only.
		var req wireRosterReq
		if m.Reply != "" && (len(m.Data) == 0 || json.Unmarshal(m.Data, &req) == nil && req.Node == b.opts.Node) {
			b.publishFull(m.Reply)
		}
		return
	}
	if len(m.Data) == 0 && m.Header.Get("Status") == "503" {
		return // "no responders" to our request: no other node is up yet
	}
	var r Roster
	if err := json.Unmarshal(m.Data, &r); err != nil {
		b.log.Warn("cluster: bad roster", "err", err)
		return
	}
	if r.Node == b.opts.Node {
		if r.Inc != b.inc && !b.warnedDup {
			b.warnedDup = true
			b.log.Error("cluster: another process uses this node id: give each node its own cluster.node_id")
		}
		return
	}
	b.rosters.Add(1)
	now := time.Now()
	if cs := b.view.Apply(&r, now); len(cs) > 0 {
		b.h.Presence(cs)
	}
	// A digest that disagrees means a lost delta (or a node new here): ask
	// that node for its full roster, at most once a heartbeat.
	if r.Digest && !b.view.Agrees(&r) && now.Sub(b.asked[r.Node]) >= b.opts.Heartbeat {
		if b.asked == nil {
			b.asked = map[string]time.Time{}
		}
		b.asked[r.Node] = now
		data, _ := json.Marshal(wireRosterReq{Node: r.Node})
		_ = b.nc.PublishRequest(b.subj.rosterReq, b.inbox, data)
		b.fullAsks.Add(1)
	}
}

// wireRosterReq is the body of a roster request for one node's roster.
type wireRosterReq struct {
	Node string `json:"n"`
}

// requestRosters asks every node for its full roster (empty body); the
// replies reach the inbox and the loop.
func (b *NATS) requestRosters() {
	_ = b.nc.PublishRequest(b.subj.rosterReq, b.inbox, nil)
}

// publishDeltas publishes the local entries changed since the last call.
func (b *NATS) publishDeltas() {
	b.mu.Lock()
	keys := b.dirty
	if len(keys) == 0 {
		b.mu.Unlock()
		return
	}
	b.dirty = map[Key]struct{}{}
	b.mu.Unlock()
	entries := make([]Entry, 0, len(keys))
	for k := range keys {
		e := b.view.LocalEntry(k.Room, k.User)
		entries = append(entries, e)
		b.sent(e)
	}
	for _, part := range splitEntries(entries) {
		b.publishRoster(b.subj.roster, &Roster{Entries: part})
	}
}

// sent records that the other nodes were sent e (Conns 0: its
// removal), for the digest. Loop goroutine only (or Start before it).
func (b *NATS) sent(e Entry) {
	k := Key{e.Room, e.User}
	if prev, ok := b.pub[k]; ok {
		b.pubSum -= entryHash(prev)
		delete(b.pub, k)
	}
	if e.Conns > 0 {
		b.pub[k] = e
		b.pubSum += entryHash(e)
	}
}

// publishDigest publishes this node's heartbeat: the digest of the entries
// it has sent the other nodes (deltas and full rosters to all), not the
// entries, so that a heartbeat costs the same whatever the roster's size.
// (Not the view's own entries: a change whose delta has not gone out yet
// would make every node ask for the full roster.)
func (b *NATS) publishDigest() {
	b.publishRoster(b.subj.roster, &Roster{Digest: true, Sum: b.pubSum, Count: len(b.pub)})
}

// publishFull publishes this node's full roster to subject, in parts.
func (b *NATS) publishFull(subject string) {
	local := b.view.Local()
	if subject == b.subj.roster { // to every node: what they have now
		clear(b.pub)
		b.pubSum = 0
		for _, e := range local {
			b.sent(e)
		}
	}
	parts := splitEntries(local)
	for i, part := range parts {
		r := &Roster{Full: true, Entries: part}
		if i > 0 {
			r.From = &Key{part[0].Room, part[0].User}
		}
		if i+1 < len(parts) {
			next := parts[i+1][0]
			r.To = &Key{next.Room, next.User}
		}
		b.publishRoster(subject, r)
	}
}

// publishRoster stamps r and publishes it. Loop goroutine only (or Start
// before the loop runs).
func (b *NATS) publishRoster(subject string, r *Roster) {
	b.seq++
	r.Node, r.Inc, r.Seq = b.opts.Node, b.inc, b.seq
	data, err := json.Marshal(r)
	if err != nil {
		return
	}
	_ = b.publish(subject, data)
}

// splitEntries cuts entries into parts that each encode to about
// maxRosterPart bytes at most. There is always at least one part, so an
// empty roster still goes out (as a heartbeat).
func splitEntries(entries []Entry) [][]Entry {
	var parts [][]Entry
	size, start := 0, 0
	for i, e := range entries {
		n := len(e.Room) + len(e.User) + 48
		if size+n > maxRosterPart && i > start {
			parts = append(parts, entries[start:i])
			start, size = i, 0
		}
		size += n
	}
	return append(parts, entries[start:])
}

// Close implements Broker.
func (b *NATS) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.mu.Unlock()
	if b.nc == nil {
		return nil
	}
	close(b.done)
	b.wg.Wait() // the loop no longer publishes: seq is ours
	if b.nc.IsConnected() {
		b.seq++
		data, _ := json.Marshal(&Roster{Node: b.opts.Node, Inc: b.inc, Seq: b.seq, Bye: true})
		_ = b.nc.Publish(b.subj.roster, data)
		_ = b.nc.FlushTimeout(b.opts.FlushTimeout)
	}
	b.nc.Close()
	return nil
}

// redactURLs hides passwords in a comma-separated list of NATS URLs.
func redactURLs(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		if at := strings.LastIndex(p, "@"); at >= 0 {
			if scheme := strings.Index(p, "://"); scheme >= 0 && scheme < at {
				parts[i] = p[:scheme+3] + "xxxxx" + p[at:]
			}
		}
	}
	return strings.Join(parts, ",")
}
