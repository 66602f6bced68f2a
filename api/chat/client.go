package chat

import (
	"errors"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"
)

const (
	// closeGrace is how long we wait for the peer's close reply after our
	// close frame before dropping the socket. Waiting keeps our close frame
	// from being discarded by a TCP reset on unread input.
	closeGrace = time.Second
	// maxSpare caps the recycled queue array kept by an idle connection.
	maxSpare = 32
	// lingerLimit caps what we read and discard after closing with 1009.
	lingerLimit = 1 << 20
)

// expiredFrame is the error frame sent when a connection's token expires.
var expiredFrame = encodeFrame(errorFrame{Type: TypeError, Code: CodeTokenExpired,
	Detail: "token expired: send an auth frame with a fresh token"})

// client is one WebSocket connection. readPump reads and handles frames for
// the connection's whole life. Every write (messages, pings, pongs, close
// frames) is done by one writer at a time: the hub's write pool for data
// frames, or the connection's own writePump goroutine, which runs only while
// there is something for it to write (see writer.go). So an idle connection
// costs one goroutine stack, not two, and gorilla's one-writer rule holds.
type client struct {
	hub   *Hub
	conn  *websocket.Conn
	raw   syscall.RawConn // the socket's descriptor for the pool's writes; nil: slow path only
	user  string
	lim   *rate.Limiter // send limit; reader goroutine only, allocated on first send
	limOf *sendLimit    // the Hub.sendLimit lim was last set from; reader goroutine only

	readerDone chan struct{} // closed when readPump has unregistered and returned
	opened     time.Time     // when the hub took the connection (the per-user cap closes the newest)
	admin      atomic.Bool   // the user is an admin (Identity.Admin of the current token)

	mu        sync.Mutex // guards the fields below; taken after Hub.mu and room.mu
	out       []frame    // frames for the writer, oldest first
	spare     []frame    // recycled backing array for out; keeps steady state allocation-free
	queued    int        // frames accepted and not yet written (out plus the writer's batch)
	qbytes    int        // bytes of those frames not yet written
	behind    time.Time  // since when queued has been over Config.Queue; zero when it is not
	closeCode int        // 0 while open; the first close request wins
	closeText string
	writing   bool      // a writer owns the socket: queued for or in the pool, or writePump running (or stopped for good)
	ping      bool      // the writer should send a ping
	pong      bool      // the writer should answer a client ping with pongData
	pongData  string    // payload of the latest client ping
	lastPing  time.Time // when tick last asked for a ping
	expires   time.Time // token exp; zero means never
	token     tokenID   // ids of the current token, for Hub.Revoke
	warned    bool      // token_expired was sent for the current expires
	rooms     []*room   // rooms joined; short, so a slice beats a map
}

// tokenID identifies a connection's current token for revocation.
type tokenID struct{ jti, sid, kid string }

func newClient(h *Hub, conn *websocket.Conn, id Identity) *client {
	c := &client{
		hub: h, conn: conn, user: id.User,
		readerDone: make(chan struct{}),
		expires:    id.Expires,
		token:      tokenID{id.JTI, id.Session, id.Kid},
		lastPing:   time.Now(),
	}
	c.opened = c.lastPing
	c.admin.Store(id.Admin)
	if _, ok := h.writer.(*pool); ok && conn != nil { // unit tests make clients without a socket
		c.raw = poolConn(conn.NetConn())
	}
	return c
}

// kickLocked starts the hub's writer unless one owns the socket. c.mu must
// be held. Every caller has checked that no close was requested, or is
// requesting one, which means the reader is still alive and holds its own
// count in Hub.pumps: so the pumps.Add of the writer never races with
// pumps.Wait reaching zero.
func (c *client) kickLocked() {
	if c.writing {
		return
	}
	c.writing = true
	c.hub.writer.start(c)
}

// enqueue hands f to the writer without blocking. If the client is too
// slow (see tooSlowLocked) it is closed with 4008 rather than delaying
// anyone. It reports whether f was queued.
func (c *client) enqueue(f frame) bool {
	c.mu.Lock()
	ok := c.enqueueLocked(f)
	c.mu.Unlock()
	return ok
}

// enqueueLocked is enqueue with c.mu held.
func (c *client) enqueueLocked(f frame) bool {
	if c.closeCode != 0 {
		return false
	}
	if why := c.tooSlowLocked(len(f), time.Time{}); why != "" {
		c.closeTooSlowLocked(why)
		return false
	}
	if c.out == nil {
		c.out, c.spare = c.spare, nil
	}
	c.out = append(c.out, f)
	c.queued++
	c.qbytes += len(f)
	if c.queued > c.hub.cfg.Queue && c.behind.IsZero() {
		c.behind = time.Now()
	}
	c.kickLocked()
	return true
}

// tooSlowLocked applies the slow-consumer rule (ws.queue, ws.queue_wait,
// ws.queue_bytes) before n more bytes are queued, and returns why the
// client is too slow, or "". The rule looks at how far behind the client
// is in bytes and for how long, not at how many replies are waiting: a
// client that pipelines a thousand requests gets a thousand replies queued
// before a writer runs, and keeps its connection because it reads them.
// now is the zero time to read the clock only when it is needed. c.mu must
// be held.
func (c *client) tooSlowLocked(n int, now time.Time) string {
	cfg := &c.hub.cfg
	if n > 0 && c.qbytes > 0 && int64(c.qbytes)+int64(n) > cfg.QueueBytes {
		return "bytes"
	}
	if !c.behind.IsZero() {
		if now.IsZero() {
			now = time.Now()
		}
		if now.Sub(c.behind) > cfg.QueueWait {
			return "behind"
		}
	}
	return ""
}

// closeTooSlowLocked closes c with 4008. c.mu must be held.
func (c *client) closeTooSlowLocked(why string) {
	c.closeLocked(CloseTooSlow, "too slow")
	c.hub.log.Info("chat: slow consumer closed", "user", c.user, "reason", why,
		"queued_frames", c.queued, "queued_bytes", c.qbytes)
}

// wroteLocked records that a writer wrote frames whole frames, bytes bytes
// in all (a frame begun but not finished counts in bytes only). c.mu must
// be held.
func (c *client) wroteLocked(frames, bytes int) {
	c.queued -= frames
	c.qbytes -= bytes
	if c.queued <= c.hub.cfg.Queue {
		c.behind = time.Time{}
	}
}

// reply queues a frame for this connection only.
func (c *client) reply(v any) { c.enqueue(encodeFrame(v)) }

// replyError queues an error frame echoing ref.
func (c *client) replyError(code, detail, ref string) {
	c.reply(errorFrame{Type: TypeError, Code: code, Detail: detail, Ref: ref})
}

// close asks the writer to send a close frame with code and stop. Queued
// frames are written first only for 1001 (graceful shutdown).
func (c *client) close(code int, text string) {
	c.mu.Lock()
	c.closeLocked(code, text)
	c.mu.Unlock()
}

func (c *client) closeLocked(code int, text string) {
	if c.closeCode == 0 {
		c.closeCode, c.closeText = code, text
		c.kickLocked()
	}
}

// tick is called by the hub's sweep: it requests pings and enforces token
// expiry (error token_expired at exp, close 4001 ExpiryGrace later).
func (c *client) tick(now time.Time) {
	cfg := &c.hub.cfg
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closeCode != 0 {
		return
	}
	if why := c.tooSlowLocked(0, now); why != "" {
		c.closeTooSlowLocked(why)
		return
	}
	if !c.expires.IsZero() && !now.Before(c.expires) {
		if now.Sub(c.expires) >= cfg.ExpiryGrace {
			c.closeLocked(CloseTokenExpired, "token expired")
			return
		}
		if !c.warned {
			c.warned = true
			c.enqueueLocked(expiredFrame)
		}
	}
	if now.Sub(c.lastPing) >= cfg.PingInterval {
		c.lastPing = now
		c.ping = true
		c.kickLocked()
	}
}

// closing reports whether a close was requested.
func (c *client) closing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeCode != 0
}

// refresh swaps in the expiry and ids of a fresh token (auth frame).
func (c *client) refresh(id Identity) {
	c.mu.Lock()
	c.expires, c.warned = id.Expires, false
	c.token = tokenID{id.JTI, id.Session, id.Kid}
	c.mu.Unlock()
	if c.admin.Swap(id.Admin) != id.Admin {
		c.hub.enforceAccess() // a role change can take private rooms away… or rules back
	}
}

// tokenID returns the ids of the connection's current token.
func (c *client) tokenID() tokenID {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.token
}

// expired reports whether the connection's token has expired by the hub's
// clock: a send is refused at once then, not only at the next sweep.
func (c *client) expired() bool {
	now := c.hub.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.expires.IsZero() && !now.Before(c.expires)
}

func (c *client) addRoom(r *room) {
	c.mu.Lock()
	c.rooms = append(c.rooms, r)
	c.mu.Unlock()
}

func (c *client) removeRoom(r *room) {
	c.mu.Lock()
	c.rooms = slices.DeleteFunc(c.rooms, func(x *room) bool { return x == r })
	c.mu.Unlock()
}

// joined returns the live room called name if c is in it.
func (c *client) joined(name string) *room {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.rooms {
		if r.name == name {
			return r
		}
	}
	return nil
}

func (c *client) roomCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.rooms)
}

// allow applies the per-connection send rate limit.
func (c *client) allow() bool {
	cur := c.hub.sendLimit.Load()
	switch {
	case c.lim == nil:
		c.lim = rate.NewLimiter(rate.Limit(cur.rate), cur.burst)
	case c.limOf != cur: // SetSendRate since the last send
		now := time.Now()
		c.lim.SetLimitAt(now, rate.Limit(cur.rate))
		c.lim.SetBurstAt(now, cur.burst)
	}
	c.limOf = cur
	return c.lim.Allow()
}

// readPump reads frames until the connection fails or closes, handling each
// in turn, then unregisters the client. Deadlines: any frame, pong included,
// extends the read deadline by PongTimeout, so a peer that ignores our pings
// (sent every PingInterval) is dropped.
func (c *client) readPump() {
	defer c.hub.pumps.Done()
	defer close(c.readerDone)
	defer c.hub.unregister(c)

	wait := c.hub.cfg.PongTimeout
	_ = c.conn.SetReadDeadline(time.Now().Add(wait))
	c.conn.SetPongHandler(func(string) error {
		return c.conn.SetReadDeadline(time.Now().Add(wait))
	})
	// The default ping and close handlers write from the reader goroutine;
	// ours hand the write to the writer instead.
	c.conn.SetPingHandler(func(data string) error {
		c.mu.Lock()
		c.pong, c.pongData = true, data
		if c.closeCode == 0 {
			c.kickLocked()
		}
		c.mu.Unlock()
		return c.conn.SetReadDeadline(time.Now().Add(wait))
	})
	c.conn.SetCloseHandler(func(code int, _ string) error {
		if code == websocket.CloseNoStatusReceived {
			code = closeNormal
		}
		c.close(code, "") // echo, unless we are closing already
		return nil
	})

	for {
		typ, data, err := c.readMessage()
		if err != nil {
			c.readFailed(err)
			return
		}
		_ = c.conn.SetReadDeadline(time.Now().Add(wait))
		if c.closing() {
			continue // we are closing: read on until the peer's close reply, act on nothing
		}
		if typ != websocket.TextMessage {
			c.replyError(CodeBadRequest, "binary frames are not supported", "")
			continue
		}
		if !utf8.Valid(data) {
			// RFC 6455 §8.1: a text frame that is not UTF-8 fails the
			// connection with 1007. (gorilla does not check.)
			c.close(CloseInvalidData, "text frame is not valid UTF-8")
			continue
		}
		c.handleOffStack(data)
	}
}

// errTooLarge is readMessage's error for a message over Config.MaxFrame.
var errTooLarge = errors.New("message too large")

// readMessage reads the next message, at most Config.MaxFrame bytes of it;
// a longer one is errTooLarge, and the rest of it is left unread. The limit
// is ours rather than gorilla's SetReadLimit so that the 1009 close frame
// goes out through the connection's writer like every other frame, not
// from the reader behind the writer's back.
func (c *client) readMessage() (int, []byte, error) {
	typ, r, err := c.conn.NextReader()
	if err != nil {
		return 0, nil, err
	}
	limit := c.hub.cfg.MaxFrame
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err == nil && int64(len(data)) > limit {
		err = errTooLarge
	}
	return typ, data, err
}

// handleOffStack runs c.handle(data) on a short-lived goroutine and waits
// for it. Decoding and handling (json, store, sorting) need a deep stack,
// and Go does not shrink a goroutine's stack while it is parked in a read
// using more than a quarter of it; handled in place, every idle reader would
// keep an 8 KiB stack. This way the long-lived reader keeps about 4 KiB:
// BenchmarkIdleConn measures ~11 KiB per idle connection instead of ~14.
// Frames are still handled one at a time, in order, on behalf of the reader.
func (c *client) handleOffStack(data []byte) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.handle(data)
	}()
	<-done
}

// readFailed ends the connection after a read error. Whatever happened, the
// writer is then told to stop; if a close was requested already (the echo of
// a peer's close frame, or one of ours) that request wins.
func (c *client) readFailed(err error) {
	if errors.Is(err, errTooLarge) {
		// The writer sends close 1009. The rest of the oversized message is
		// unread; closing now would reset the connection and could destroy
		// that close frame, so read and discard for a while.
		c.close(CloseTooLarge, "message too big")
		nc := c.conn.NetConn()
		_ = nc.SetReadDeadline(time.Now().Add(closeGrace))
		_, _ = io.Copy(io.Discard, io.LimitReader(nc, lingerLimit))
	}
	// Note that gorilla reports a vanished peer as a CloseError (1006) too,
	// so a CloseError does not mean the close handler ran.
	c.close(closeNoFrame, "")
}
