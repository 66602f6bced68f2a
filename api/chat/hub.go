package chat

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/chatctl/chatctl/access"
	"github.com/chatctl/chatctl/cluster"
	"github.com/chatctl/chatctl/configs"
)

// Config holds the limits of SPEC §6 (config keys ws.* and history.*). A zero
// field takes its default: for a field backed by a config key, the value in
// configs/chatctl.yaml (the one place those defaults live; see ConfigFrom);
// for the others, the constant named in its comment. So Config{} is usable.
type Config struct {
	MaxFrame        int64         // largest inbound frame in bytes (ws.max_frame); larger closes with 1009
	MaxText         int           // largest "text" of a send in bytes (ws.max_text); larger is too_large
	SendRate        float64       // sends per second per connection (ws.send_rate)
	SendBurst       int           // send burst per connection (ws.send_burst)
	Queue           int           // frames a connection may fall behind by (ws.queue); see QueueWait
	QueueBytes      int64         // bytes a connection may fall behind by (ws.queue_bytes); beyond it, 4008 at once
	QueueWait       time.Duration // how long the queue may stay over Queue frames (ws.queue_wait); then 4008
	PingInterval    time.Duration // WebSocket ping period (ws.ping_interval); must be less than PongTimeout
	PongTimeout     time.Duration // a connection silent this long is dead (ws.pong_timeout)
	MaxConnsPerUser int           // connections per user (ws.max_conns_per_user); one more is closed with 4029
	OnJoin          int           // messages replayed by a join without since (history.on_join); negative means none
	HistoryLimit    int           // largest "limit" a history request gets (defaultMaxHistory)
	MaxReplay       int           // largest replay of a join with since (defaultMaxReplay); see joinedFrame.More
	MaxRooms        int           // rooms one connection may join at once (defaultMaxRooms)
	ExpiryGrace     time.Duration // time between token_expired and close 4001 (defaultExpiryGrace; SPEC says within 5s)
	WriteTimeout    time.Duration // deadline of one socket write (defaultWriteTimeout)
	StoreTimeout    time.Duration // deadline of one Store or Authenticator call (defaultStoreTimeout)
	// NoWritePool turns the hub's write pool off (ws.write_pool: false):
	// every connection then writes through its own writer goroutine, as in
	// gorilla's chat example. See writer.go.
	NoWritePool bool
}

// Limits that have no config key. The others default to configs/chatctl.yaml.
const (
	defaultMaxHistory   = 200
	defaultMaxReplay    = 1000
	defaultMaxRooms     = 100
	defaultExpiryGrace  = 3 * time.Second
	defaultWriteTimeout = 10 * time.Second
	defaultStoreTimeout = 10 * time.Second
)

// ConfigFrom maps the ws.* and history.* keys of cfg onto the hub's Config.
func ConfigFrom(cfg *configs.Config) Config {
	ws := &cfg.WS
	onJoin := cfg.History.OnJoin
	if onJoin == 0 {
		onJoin = -1 // Config reads 0 as "default"; the operator meant none
	}
	return Config{
		MaxFrame: ws.MaxFrame, MaxText: ws.MaxText,
		SendRate: ws.SendRate, SendBurst: ws.SendBurst,
		Queue: ws.Queue, QueueBytes: ws.QueueBytes, QueueWait: ws.QueueWait,
		PingInterval: ws.PingInterval, PongTimeout: ws.PongTimeout,
		MaxConnsPerUser: ws.MaxConnsPerUser, OnJoin: onJoin,
		NoWritePool: !ws.WritePool,
	}
}

// builtin is the hub's Config from the built-in configuration.
var builtin = sync.OnceValue(func() Config { return ConfigFrom(configs.Default()) })

// withDefaults returns cfg with every zero field replaced by its default.
func (cfg Config) withDefaults() Config {
	def := builtin()
	num := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	dur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	if cfg.MaxFrame <= 0 {
		cfg.MaxFrame = def.MaxFrame
	}
	if cfg.QueueBytes <= 0 {
		cfg.QueueBytes = def.QueueBytes
	}
	if cfg.SendRate <= 0 {
		cfg.SendRate = def.SendRate
	}
	num(&cfg.MaxText, def.MaxText)
	num(&cfg.SendBurst, def.SendBurst)
	num(&cfg.Queue, def.Queue)
	num(&cfg.MaxConnsPerUser, def.MaxConnsPerUser)
	num(&cfg.OnJoin, def.OnJoin)
	num(&cfg.HistoryLimit, defaultMaxHistory)
	num(&cfg.MaxReplay, defaultMaxReplay)
	num(&cfg.MaxRooms, defaultMaxRooms)
	if cfg.OnJoin < 0 {
		cfg.OnJoin = 0
	}
	dur(&cfg.QueueWait, def.QueueWait)
	dur(&cfg.PingInterval, def.PingInterval)
	dur(&cfg.PongTimeout, def.PongTimeout)
	dur(&cfg.ExpiryGrace, defaultExpiryGrace)
	dur(&cfg.WriteTimeout, defaultWriteTimeout)
	dur(&cfg.StoreTimeout, defaultStoreTimeout)
	return cfg
}

// Identity is who a connection belongs to, from the token the HTTP layer
// verified before the upgrade.
type Identity struct {
	User    string    // username (matched case-insensitively, kept lower-case)
	Expires time.Time // token exp; the zero time means the token never expires
	JTI     string    // the token's id: revoking it closes the connection
	Session string    // the session the token was minted for (sid), if any
	Kid     string    // the key that signed the token
	Admin   bool      // the user has role admin: access rules do not apply (SPEC §8)
}

// Revoked names tokens that stopped verifying: every token of User, the
// token JTI, the tokens of Session, or those signed with Kid (the fields
// that are set). See Hub.Revoke.
type Revoked struct {
	User, JTI, Session, Kid string
}

// matches reports whether a connection of user holding the token id is
// revoked by r.
func (r Revoked) matches(user string, id tokenID) bool {
	return (r.User != "" && strings.EqualFold(r.User, user)) ||
		(r.JTI != "" && r.JTI == id.jti) ||
		(r.Session != "" && r.Session == id.sid) ||
		(r.Kid != "" && r.Kid == id.kid)
}

// Authenticator re-verifies a token sent in an {"type":"auth"} frame. It must
// apply every check the HTTP layer applies at upgrade time (signature, exp,
// user enabled, token version) and return an error if any fails.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (Identity, error)
}

// Message is one stored chat message.
type Message struct {
	Room  string
	ID    uint64 // 1, 2, 3, … within Room
	From  string
	Text  string
	TS    time.Time
	Epoch string // the room's epoch (see Store.Epoch); set by AppendMessage only
}

// Store persists messages. See the package documentation, "Store contract",
// for the guarantees the Hub relies on. (A join with since needs no
// MessagesAfter: it reads the newest messages up to the room's last
// broadcast id and keeps those above since.)
type Store interface {
	// AppendMessage commits a message and returns it with its id. It returns
	// only once the message is durable. An error means nothing was committed
	// and no id was used.
	AppendMessage(ctx context.Context, room, from, text string, ts time.Time) (Message, error)
	// MessagesBefore returns the limit newest messages with id < before
	// (before == 0: the newest), ascending.
	MessagesBefore(room string, before uint64, limit int) ([]Message, error)
	// Epoch returns the room's epoch: an opaque id of the room's stored
	// history that changes when the room is deleted and created again (its
	// ids then restart at 1). It is "" while the room has no history.
	Epoch(room string) (string, error)
}

// RoomStats describes one room with at least one connection in it.
type RoomStats struct {
	Name    string `json:"name"`
	Members int    `json:"members"`     // unique users online
	Conns   int    `json:"connections"` // connections joined
}

// Hub owns the rooms and connections of the chat service. Create it with
// NewHub, run Run in a goroutine, and hand it upgraded connections with Serve.
// All methods are safe for concurrent use.
type Hub struct {
	store Store
	auth  Authenticator
	cfg   Config
	log   *slog.Logger
	tick  time.Duration    // sweep period: pings and token expiry
	now   func() time.Time // message timestamps; tests may replace it

	mu      sync.Mutex           // guards rooms, users, closing; taken before room.mu and client.mu
	rooms   map[string]*room     // rooms with members or in-flight sends
	users   map[string][]*client // live connections per user
	closing bool                 // Shutdown began: Serve refuses new connections

	sendMu   sync.RWMutex   // guards draining against appends.Add
	draining bool           // Shutdown began: no new AppendMessage calls
	appends  sync.WaitGroup // AppendMessage calls in progress
	pumps    sync.WaitGroup // reader, writePump and write pool goroutines

	writer writer // how queues reach sockets: the write pool, or per-connection writers; set once by NewHub

	// sendLimit is the per-connection send rate now in force (cfg's at
	// first; SetSendRate swaps it). Each reader compares it by pointer
	// before a send, so a change reaches live connections too.
	sendLimit atomic.Pointer[sendLimit]

	// acc is the access table in force (see access.go); never nil.
	acc      atomic.Pointer[access.Table]
	loaderMu sync.Mutex   // guards loader and serialises table reloads
	loader   AccessLoader // RecheckAccess reloads the table with it; nil: keep acc

	cl clusterState // the broker (cluster.Local unless UseBroker set another); see cluster.go

	shutdownOnce sync.Once
	done         chan struct{} // closed once every pump has exited after Shutdown
}

// NewHub returns a Hub that persists messages in store and re-verifies auth
// frames with auth. A nil log discards log output.
func NewHub(store Store, auth Authenticator, cfg Config, log *slog.Logger) *Hub {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	// One sweep serves every connection, so there are no per-connection
	// timers; its period bounds how late a ping or an expiry can be.
	tick := min(time.Second, cfg.PingInterval/2, cfg.ExpiryGrace/2, cfg.QueueWait/2)
	tick = max(tick, 5*time.Millisecond)
	h := &Hub{
		store: store, auth: auth, cfg: cfg, log: log, tick: tick, now: time.Now,
		rooms: make(map[string]*room),
		users: make(map[string][]*client),
		done:  make(chan struct{}),
	}
	h.cl.broker = cluster.NewLocal("")
	h.cl.resync = make(chan struct{}, 1)
	_ = h.cl.broker.Start(brokerHandler{h}) // a new Local never fails
	h.sendLimit.Store(&sendLimit{rate: cfg.SendRate, burst: cfg.SendBurst})
	h.acc.Store(access.New(access.ReadWrite, nil, nil))
	h.writer = pumpWriter{}
	if !cfg.NoWritePool {
		h.writer = &pool{h: h}
	}
	return h
}

// sendLimit is a send rate (per second) and burst; never changed once
// stored in Hub.sendLimit.
type sendLimit struct {
	rate  float64
	burst int
}

// SetSendRate changes the per-connection send limit (ws.send_rate,
// ws.send_burst) of new and live connections alike; each live one picks it
// up at its next send. Values that are not positive keep the current ones.
func (h *Hub) SetSendRate(perSecond float64, burst int) {
	cur := h.sendLimit.Load()
	next := *cur
	if perSecond > 0 {
		next.rate = perSecond
	}
	if burst > 0 {
		next.burst = burst
	}
	h.sendLimit.Store(&next)
}

// Run pings connections and enforces token expiry until ctx is done, then
// shuts the hub down (see Shutdown) and returns once every socket is closed.
func (h *Hub) Run(ctx context.Context) {
	t := time.NewTicker(h.tick)
	defer t.Stop()
	if h.cl.multi {
		stop, stopped := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(stopped)
			h.resyncLoop(stop)
		}()
		defer func() { close(stop); <-stopped }()
	}
	for {
		select {
		case <-ctx.Done():
			_ = h.Shutdown(context.Background())
			return
		case now := <-t.C:
			h.sweep(now)
		}
	}
}

// sweep visits every connection once; it only flips flags and enqueues, so it
// is cheap enough to hold h.mu throughout.
func (h *Hub) sweep(now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, cs := range h.users {
		for _, c := range cs {
			c.tick(now)
		}
	}
}

// Serve takes over an upgraded connection for the authenticated id and starts
// its reader goroutine (a writer goroutine runs whenever there is something
// to write); it returns at once. The caller must not
// use conn afterwards. A connection over the user's limit is closed with 4029
// and one arriving during shutdown with 1001; Serve then blocks until the
// close handshake ends (at most about a second).
func (h *Hub) Serve(conn *websocket.Conn, id Identity) {
	id.User = strings.ToLower(id.User)
	c := newClient(h, conn, id)
	h.mu.Lock()
	if h.closing {
		h.mu.Unlock()
		h.reject(conn, CloseGoingAway, "server shutting down")
		return
	}
	if len(h.users[id.User]) >= h.cfg.MaxConnsPerUser ||
		h.cl.multi && h.clusterConns(id.User) >= h.cfg.MaxConnsPerUser {
		h.mu.Unlock()
		h.log.Info("chat: too many connections", "user", id.User)
		h.reject(conn, CloseTooManyConns, "too many connections")
		return
	}
	h.users[id.User] = append(h.users[id.User], c)
	h.pumps.Add(1) // under h.mu with closing false, so never after pumps.Wait began
	total := 0
	if h.cl.multi {
		total = h.countConnsLocked(id.User)
	}
	h.mu.Unlock()
	if total > h.cfg.MaxConnsPerUser {
		h.enforceCap(id.User, total) // another node admitted one at the same moment
	}
	h.log.Debug("chat: connected", "user", id.User)
	go c.readPump() // the writer starts when there is something to write
}

// reject closes a connection that never got pumps, waiting briefly for the
// peer's close reply so our close frame is not lost to a TCP reset.
func (h *Hub) reject(conn *websocket.Conn, code int, text string) {
	defer conn.Close()
	deadline := time.Now().Add(closeGrace)
	if err := conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), deadline); err != nil {
		return
	}
	conn.SetReadLimit(h.cfg.MaxFrame)
	_ = conn.SetReadDeadline(deadline)
	for {
		if _, _, err := conn.NextReader(); err != nil {
			return
		}
	}
}

// unregister removes c from the hub and from every room it joined. It is
// called once, by c's reader as it exits.
func (h *Hub) unregister(c *client) {
	h.mu.Lock()
	cs := slices.DeleteFunc(h.users[c.user], func(x *client) bool { return x == c })
	if len(cs) == 0 {
		delete(h.users, c.user)
	} else {
		h.users[c.user] = cs
	}
	if h.cl.multi {
		h.countConnsLocked(c.user)
	}
	h.mu.Unlock()

	c.mu.Lock()
	rooms := c.rooms
	c.rooms = nil
	c.mu.Unlock()
	for _, r := range rooms {
		h.leave(r, c)
	}
	h.log.Debug("chat: disconnected", "user", c.user)
}

// Kick closes every connection of user with 4003 (disabled, removed or
// revoked). Queued frames are dropped so the close frame goes out at once.
func (h *Hub) Kick(user string) { h.Revoke(Revoked{User: user}) }

// Revoke closes with 4003 every connection whose current token r revokes:
// the one it was opened with, or the last one an auth frame swapped in.
// Revocations are rare, so matching by token scans every connection
// rather than keeping indexes on the hot paths.
func (h *Hub) Revoke(r Revoked) {
	h.mu.Lock()
	var cs []*client
	if r.JTI == "" && r.Session == "" && r.Kid == "" {
		cs = slices.Clone(h.users[strings.ToLower(r.User)])
	} else {
		for _, list := range h.users {
			for _, c := range list {
				if r.matches(c.user, c.tokenID()) {
					cs = append(cs, c)
				}
			}
		}
	}
	h.mu.Unlock()
	for _, c := range cs {
		c.close(CloseRevoked, "access revoked")
	}
	if len(cs) > 0 {
		h.log.Info("chat: closed revoked connections", "user", r.User, "jti", r.JTI, "session", r.Session, "kid", r.Kid, "connections", len(cs))
	}
}

// Conns returns the number of live connections.
func (h *Hub) Conns() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, cs := range h.users {
		n += len(cs)
	}
	return n
}

// liveRooms returns a snapshot of the hub's rooms, to visit one by one
// under each room's own lock (never with h.mu held).
func (h *Hub) liveRooms() []*room {
	h.mu.Lock()
	defer h.mu.Unlock()
	rooms := make([]*room, 0, len(h.rooms))
	for _, r := range h.rooms {
		rooms = append(rooms, r)
	}
	return rooms
}

// Rooms returns the rooms that have members, sorted by name.
func (h *Hub) Rooms() []RoomStats {
	rooms := h.liveRooms()
	out := make([]RoomStats, 0, len(rooms))
	for _, r := range rooms {
		r.mu.Lock()
		if len(r.members) > 0 {
			out = append(out, RoomStats{Name: r.name, Members: len(r.users), Conns: len(r.members)})
		}
		r.mu.Unlock()
	}
	slices.SortFunc(out, func(a, b RoomStats) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// CloseRoom removes every member from the room (call it after an admin
// deleted the room). Each member connection gets an error frame with code
// not_found naming the room; no presence frames are sent. Joining the name
// again creates a fresh room.
func (h *Hub) CloseRoom(name string) {
	h.mu.Lock()
	r := h.rooms[name]
	delete(h.rooms, name)
	h.mu.Unlock()
	if r == nil {
		return
	}
	r.mu.Lock()
	r.dead = true
	f := encodeFrame(errorFrame{Type: TypeError, Code: CodeNotFound, Detail: "room deleted", Room: name})
	for c := range r.members {
		c.removeRoom(r)
		c.enqueue(f)
	}
	if h.cl.multi {
		for u := range r.users {
			h.cl.broker.SetPresence(name, u, 0)
		}
	}
	r.members, r.users, r.present = nil, nil, nil
	subscribed := r.subscribed
	r.mu.Unlock()
	if subscribed {
		h.unsubscribe(name)
	}
}

// Shutdown stops new sends, waits until every AppendMessage in progress has
// committed and its ack and broadcast are queued, then closes every socket
// with 1001 after its queue is written, and waits for all goroutines. If ctx
// ends first, it closes the remaining sockets abruptly and returns ctx.Err().
// It is safe to call more than once and concurrently with Run.
func (h *Hub) Shutdown(ctx context.Context) error {
	h.shutdownOnce.Do(func() { go h.drain() })
	select {
	case <-h.done:
		return nil
	case <-ctx.Done():
		h.mu.Lock()
		for _, cs := range h.users {
			for _, c := range cs {
				_ = c.conn.NetConn().Close()
			}
		}
		h.mu.Unlock()
		return ctx.Err()
	}
}

// drain is the body of Shutdown; it runs once.
func (h *Hub) drain() {
	h.sendMu.Lock()
	h.draining = true
	h.sendMu.Unlock()
	h.mu.Lock()
	h.closing = true
	h.mu.Unlock()

	h.appends.Wait()

	h.mu.Lock()
	var cs []*client
	for _, list := range h.users {
		cs = append(cs, list...)
	}
	h.mu.Unlock()
	for _, c := range cs {
		c.close(CloseGoingAway, "server shutting down")
	}
	h.pumps.Wait()
	close(h.done)
}
