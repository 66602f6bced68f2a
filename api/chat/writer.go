package chat

import (
	"crypto/tls"
	"errors"
	"net"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

// Writing has a fast path and a slow path, behind one seam: the writer
// interface, chosen once per hub (ws.write_pool).
//
// The fast path is the hub's write pool: a few goroutines (at most one per
// P) that take connections with queued frames from a FIFO and write each
// one's whole queue with a single non-blocking write. A broadcast to a
// thousand members thus readies no goroutine per member: no goroutine is
// created per wake, no write deadline (a runtime timer) is set per batch,
// and the run queue stays short, so the readers and the store commits that
// feed the next broadcast are not queued behind a thousand writers (Go's
// run queue is FIFO). A write that would block does not block the pool: it
// writes what the socket takes and hands the rest to the slow path.
//
// The slow path is the connection's own writePump goroutine, which writes
// with deadlines. With the pool on, a connection takes it when its socket
// is full (a slow reader: it falls behind and is closed with 4008, without
// delaying anyone else), when it has a control frame to send (ping, pong,
// close: those go through gorilla's blocking WriteControl), or when its
// socket offers no raw descriptor (see newRawConn), as under TLS (see
// poolConn). With the pool off
// (pumpWriter) it is the only path, as in gorilla's chat example, except
// that writePump exits once the queue is empty, and the next frame starts
// it again.
//
// Either way exactly one writer owns the socket at a time (client.writing).
// Only the close frames of WebSocket protocol errors (1002) are written by
// gorilla itself, from the reader (see the package Caveats).

// writer moves a connection's queue to its socket.
type writer interface {
	// start begins writing c's queue and control frames. c.mu is held and
	// the caller has just set c.writing; the writer clears it when it has
	// nothing left to do. The caller holds or is guaranteed a count in
	// Hub.pumps (see kickLocked), so start may add goroutines to it.
	start(c *client)
}

// poolConn returns the descriptor access for the pool's non-blocking
// writes to nc, or nil when nc must always use the slow path.
//
// A TLS connection (wss://) always does. The pool writes ready-made
// WebSocket frames straight to the socket's descriptor, which under TLS
// would bypass the record layer and corrupt the stream; and a TLS write
// cannot be made non-blocking instead, since a tls.Conn whose write
// deadline expires is broken for good. So over TLS every connection writes
// through its own writePump, whatever ws.write_pool says: the per-connection
// writer, with the cost of encryption and of a goroutine wake per batch
// (BenchmarkFanout1000TLS measures it against plain TCP).
func poolConn(nc net.Conn) syscall.RawConn {
	if _, ok := nc.(*tls.Conn); ok {
		return nil
	}
	return newRawConn(nc)
}

// pumpWriter writes every connection through its own writePump goroutine.
type pumpWriter struct{}

func (pumpWriter) start(c *client) { c.startPump(nil) }

// pool is the hub's write pool, the fast path.
type pool struct {
	h *Hub

	mu      sync.Mutex // guards the fields below; taken after client.mu
	wq      []*client  // connections waiting for a pool goroutine, FIFO from whead
	whead   int
	workers int // pool goroutines running
}

// start queues c for the pool; control frames and closes, and sockets
// without a raw descriptor, go to writePump.
func (p *pool) start(c *client) {
	if c.raw == nil || c.closeCode != 0 || c.ping || c.pong {
		c.startPump(nil)
		return
	}
	p.schedule(c)
}

// poolChunk is how many connections a pool goroutine takes from the FIFO at
// once; it yields the processor between chunks. A chunk of writes (about
// 15 µs each here) is what the store's committer waits for after each of
// its blocking syscalls (it loses its P in them), and what a sender's reader
// waits for before it broadcasts: at 16 a chunk takes a quarter of a
// millisecond. Measured into 1,000 members at 1,400-1,600 msg/s: p99 about
// 10 ms lower than at 64; 8 and 4 were no better.
const poolChunk = 16

// schedule queues c for the write pool, starting a pool goroutine if fewer
// than GOMAXPROCS run. c.mu must be held and c.writing set by the caller
// (p.mu is taken after client.mu). As in kickLocked, the caller holds or
// is guaranteed a count in Hub.pumps, so pumps.Add cannot race with Wait.
func (p *pool) schedule(c *client) {
	p.mu.Lock()
	p.wq = append(p.wq, c)
	start := p.workers < runtime.GOMAXPROCS(0)
	if start {
		p.workers++
		p.h.pumps.Add(1)
	}
	p.mu.Unlock()
	if start {
		go p.writeLoop()
	}
}

// writeLoop is a pool goroutine: it flushes queued connections until the
// FIFO is empty, then exits (an idle hub has no pool goroutines).
func (p *pool) writeLoop() {
	defer p.h.pumps.Done()
	var w rawWriter
	var chunk [poolChunk]*client
	for {
		p.mu.Lock()
		n := copy(chunk[:], p.wq[p.whead:])
		clear(p.wq[p.whead : p.whead+n])
		p.whead += n
		if p.whead == len(p.wq) {
			p.wq, p.whead = p.wq[:0], 0
		}
		if n == 0 {
			p.workers--
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		for _, c := range chunk[:n] {
			p.flush(c, &w)
		}
		clear(chunk[:n])
		// Let readers, handlers and the commit path run between chunks
		// instead of after the whole broadcast.
		runtime.Gosched()
	}
}

// flush is the fast path for c, on a pool goroutine: one non-blocking write
// of c's queue. c.writing is set, so no other writer runs.
func (p *pool) flush(c *client, w *rawWriter) {
	c.mu.Lock()
	if c.closeCode != 0 || c.ping || c.pong || c.raw == nil {
		c.mu.Unlock()
		c.startPump(nil)
		return
	}
	batch := c.out
	c.out = nil
	if len(batch) == 0 {
		c.writing = false
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()

	n, err := w.write(c.raw, batch)
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		c.close(closeNoFrame, "")
		_ = c.conn.Close() // wakes the reader, which unregisters
		return
	}
	// Skip what was written; a frame may have gone out in part.
	rest, bytes := batch, n
	for len(rest) > 0 && n >= len(rest[0]) {
		n -= len(rest[0])
		rest = rest[1:]
	}
	if len(rest) > 0 {
		rest[0] = rest[0][n:] // reslices our queue entry; the shared frame is untouched
	}
	written := len(batch) - len(rest)
	clear(batch[:written]) // let the frames be collected

	c.mu.Lock()
	c.wroteLocked(written, bytes)
	if len(rest) > 0 {
		// The socket is full (or the batch exceeded one write): the rest,
		// which may start mid-frame, goes out first on the slow path.
		c.mu.Unlock()
		c.startPump(rest)
		return
	}
	if c.spare == nil && cap(batch) <= maxSpare {
		c.spare = batch[:0]
	}
	if len(c.out) > 0 || c.closeCode != 0 || c.ping || c.pong {
		p.schedule(c) // more arrived meanwhile: back of the FIFO, so it batches
	} else {
		c.writing = false
	}
	c.mu.Unlock()
}

// startPump moves c to the slow path. c.writing is set and the caller holds
// or is guaranteed a count in Hub.pumps (a pool goroutine, or kickLocked's
// caller), so the Add is safe.
func (c *client) startPump(rest []frame) {
	c.hub.pumps.Add(1)
	go c.writePump(rest)
}

// writePump writes rest (the unwritten end of a pool batch, possibly
// starting mid-frame), then takes the whole queue at a time and writes it,
// until there is nothing left to do (it then exits; the next enqueue goes to
// the pool) or a close is requested (it then closes the socket and stays
// marked as writing, so no writer starts again).
func (c *client) writePump(rest []frame) {
	defer c.hub.pumps.Done()
	timeout := c.hub.cfg.WriteTimeout
	if len(rest) > 0 {
		if err := c.writeBatch(rest, false, false, "", timeout); err != nil {
			c.close(closeNoFrame, "")
			_ = c.conn.Close()
			return
		}
	}
	for {
		c.mu.Lock()
		batch := c.out
		c.out = nil
		code, text := c.closeCode, c.closeText
		ping, pong, pongData := c.ping, c.pong, c.pongData
		c.ping, c.pong = false, false
		if len(batch) == 0 && code == 0 && !ping && !pong {
			c.writing = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()

		if code != 0 && code != CloseGoingAway {
			c.finish(code, text) // queued frames are moot: drop them
			return
		}
		if err := c.writeBatch(batch, ping, pong, pongData, timeout); err != nil {
			c.close(closeNoFrame, "")
			_ = c.conn.Close() // wakes the reader, which unregisters
			return
		}
		if code == CloseGoingAway {
			c.finish(code, text) // the queue, complete at close time, is written
			return
		}
	}
}

// writeBatch writes control frames and then the batch, each with a
// deadline, and recycles the batch's array. It clears the deadline
// afterwards: the pool's writes would fail on an expired one.
func (c *client) writeBatch(batch []frame, ping, pong bool, pongData string, timeout time.Duration) error {
	nc := c.conn.NetConn()
	defer nc.SetWriteDeadline(time.Time{})
	if pong {
		if err := c.conn.WriteControl(websocket.PongMessage, []byte(pongData), time.Now().Add(timeout)); err != nil {
			return err
		}
	}
	if ping {
		if err := c.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(timeout)); err != nil {
			return err
		}
	}
	if len(batch) == 0 {
		return nil
	}
	bytes := 0
	for _, f := range batch {
		bytes += len(f)
	}
	// The frames are complete WebSocket frames (but for the first, which
	// may be the end of one the pool began), so they go out copied together
	// (see writeFrames). gorilla's own writes (control frames) are whole
	// Write calls too, and the socket serialises Write calls, so frames
	// never interleave.
	_ = nc.SetWriteDeadline(time.Now().Add(timeout))
	if err := writeFrames(nc, batch); err != nil {
		return err
	}
	clear(batch) // let the frames be collected
	c.mu.Lock()
	c.wroteLocked(len(batch), bytes)
	if c.spare == nil && cap(batch) <= maxSpare {
		c.spare = batch[:0]
	}
	c.mu.Unlock()
	return nil
}

// pumpChunk bounds what writeFrames copies together for one Write.
const pumpChunk = 64 << 10

// pumpBufs recycles writeFrames' buffers (*[]byte of capacity pumpChunk or
// so) between the pumps, so an idle connection keeps none.
var pumpBufs = sync.Pool{New: func() any { b := make([]byte, 0, pumpChunk); return &b }}

// writeFrames writes batch to nc with one Write per pumpChunk bytes,
// copying the frames together, as the pool does (see rawWriter). Neither
// writev nor a Write per frame: the socket under nc is wrapped (the
// server's connection limiter), so net.Buffers cannot reach writev and
// falls back to one write syscall per frame. Into 1,000 members that was
// 1,000 syscalls per message: at 800 msg/s the pumps delivered about 35,000
// frames/s, and the queues grew without end. A frame of pumpChunk bytes or
// more goes out on its own, uncopied.
func writeFrames(nc net.Conn, batch []frame) error {
	if len(batch) == 1 {
		_, err := nc.Write(batch[0])
		return err
	}
	bp := pumpBufs.Get().(*[]byte)
	buf := (*bp)[:0]
	var err error
	for i := 0; i < len(batch) && err == nil; {
		if len(batch[i]) >= pumpChunk {
			_, err = nc.Write(batch[i])
			i++
			continue
		}
		buf = buf[:0]
		for i < len(batch) && len(buf)+len(batch[i]) <= pumpChunk {
			buf = append(buf, batch[i]...)
			i++
		}
		_, err = nc.Write(buf)
	}
	*bp = buf[:0]
	pumpBufs.Put(bp)
	return err
}

// finish sends the close frame (unless there is none to send), waits for
// the reader to see the peer's reply, bounded by closeGrace, and closes the
// socket.
func (c *client) finish(code int, text string) {
	defer c.conn.Close()
	if code == closeNoFrame {
		return
	}
	msg := websocket.FormatCloseMessage(code, text)
	if err := c.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(c.hub.cfg.WriteTimeout)); err != nil {
		return
	}
	t := time.NewTimer(closeGrace)
	defer t.Stop()
	select {
	case <-c.readerDone:
	case <-t.C:
	}
}
