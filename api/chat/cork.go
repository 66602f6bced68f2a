package chat

import (
	"net"
	"sync"
)

// Corking: a broadcast to a busy member often leaves several frames in its
// queue, and the writer writes them one WritePreparedMessage at a time,
// each a write syscall. On a loaded server those syscalls are most of the
// fan-out cost. A corked connection instead gathers the frames of one
// batch in memory and hands them to the kernel in one write.

// CorkListener wraps ln so that the connections it accepts can be corked
// by the hub's writers. Other writers (net/http) see no difference: an
// uncorked connection writes straight through.
func CorkListener(ln net.Listener) net.Listener { return corkListener{ln} }

type corkListener struct{ net.Listener }

func (l corkListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &corkConn{Conn: c}, nil
}

// corkBufs recycles batch buffers, so an idle connection holds none.
var corkBufs = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// corkFlushAt bounds what one corked batch holds before it is written.
const corkFlushAt = 64 << 10

// corkConn buffers writes between cork and uncork.
type corkConn struct {
	net.Conn
	mu  sync.Mutex // guards buf; gorilla may write a close frame from the reader
	buf *[]byte    // non-nil while corked
}

// corker is what the writer looks for on a connection's NetConn.
type corker interface {
	cork()
	uncork() error
}

func (c *corkConn) cork() {
	c.mu.Lock()
	if c.buf == nil {
		c.buf = corkBufs.Get().(*[]byte)
	}
	c.mu.Unlock()
}

// uncork writes what was gathered and stops gathering.
func (c *corkConn) uncork() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.buf == nil {
		return nil
	}
	err := c.flushLocked()
	*c.buf = (*c.buf)[:0]
	corkBufs.Put(c.buf)
	c.buf = nil
	return err
}

func (c *corkConn) flushLocked() error {
	b := *c.buf
	for len(b) > 0 {
		n, err := c.Conn.Write(b)
		if err != nil {
			return err
		}
		b = b[n:]
	}
	*c.buf = (*c.buf)[:0]
	return nil
}

// Write implements net.Conn.
func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.buf == nil {
		return c.Conn.Write(p)
	}
	*c.buf = append(*c.buf, p...)
	if len(*c.buf) >= corkFlushAt {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}
