package api

import (
	"container/list"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// fdReserve is how many descriptors the derived http.max_conns leaves for
// everything else: the store, the listeners, the admin socket and its
// connections, logs. The admin socket is not capped, so the CLI still
// works when the HTTP side is full.
const fdReserve = 128

// defaultMaxConns is the cap where the open-file limit cannot be read.
const defaultMaxConns = 10000

// maxConns returns the total connection cap for http.max_conns (0 means
// derived from the open-file limit). A configured cap above what the
// limit allows is lowered to it, with a warning: past it, accept fails
// with EMFILE and the admin socket and store go down with HTTP.
func maxConns(configured int, log *slog.Logger) int {
	limit, ok := fileLimit()
	allowed := defaultMaxConns
	if ok {
		allowed = limit - fdReserve
		if allowed < limit/2 {
			allowed = limit / 2 // a tiny ulimit: keep half for the rest
		}
	}
	switch {
	case configured == 0:
		return allowed
	case ok && configured > allowed:
		log.Warn("http.max_conns is above what the open-file limit allows; lowered",
			"configured", configured, "used", allowed, "ulimit_n", limit)
		return allowed
	}
	return configured
}

// connLimiter is the public listener with its connection caps: at most
// max connections open at once, and at most perIP from one client address
// (0: no such cap; addresses in exempt, the trusted proxies, have none).
// It counts connections from Accept to Close. At a cap, the connection
// that has been idle longest (HTTP keep-alive between requests, learnt
// through the http.Server's ConnState hook) is closed to make room;
// with none idle, the newcomer is answered 503 and closed at once, so
// it never waits in the kernel's backlog. Requests in progress and
// WebSockets are never closed for a newcomer.
type connLimiter struct {
	net.Listener
	max, perIP int
	exempt     []netip.Prefix
	log        *slog.Logger

	mu    sync.Mutex // guards total, addrs, idle and every conn's state
	total int
	addrs map[netip.Addr]*addrConns
	idle  list.List // *limitedConn, longest idle first

	lastWarn atomic.Int64 // unix nanos of the last refusal logged
}

// addrConns is what the limiter knows of one client address.
type addrConns struct {
	n    int
	idle list.List // *limitedConn of this address, longest idle first
}

// limitedConn is a connection counted by a connLimiter.
type limitedConn struct {
	net.Conn
	l      *connLimiter
	addr   netip.Addr
	capped bool // counts against perIP

	// Guarded by l.mu.
	released bool
	idleAt   *list.Element // in l.idle while idle
	addrAt   *list.Element // in the address's idle list while idle
}

func newConnLimiter(ln net.Listener, max, perIP int, exempt []netip.Prefix, log *slog.Logger) *connLimiter {
	return &connLimiter{Listener: ln, max: max, perIP: perIP, exempt: exempt, log: log, addrs: map[netip.Addr]*addrConns{}}
}

// busyBody and busyResponse are what a refused connection reads before
// it is closed.
const busyBody = `{"detail":"Too many connections; retry later"}` + "\n"

var busyResponse = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: " +
	strconv.Itoa(len(busyBody)) + "\r\n\r\n" + busyBody

// Accept returns the next connection within the caps.
func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if lc := l.admit(c); lc != nil {
			return lc, nil
		}
	}
}

// admit counts c in, making room by closing idle connections, or refuses
// it (nil).
func (l *connLimiter) admit(c net.Conn) *limitedConn {
	lc := &limitedConn{Conn: c, l: l, addr: remoteAddr(c)}
	lc.capped = l.perIP > 0 && !inPrefixes(l.exempt, lc.addr)
	var evict []*limitedConn
	l.mu.Lock()
	a := l.addrs[lc.addr]
	if lc.capped && a != nil && a.n >= l.perIP {
		if v := front(&a.idle); v != nil {
			l.releaseLocked(v)
			evict = append(evict, v)
		} else {
			l.mu.Unlock()
			l.refuse(c, "per_address", lc.addr)
			return nil
		}
	}
	if l.total >= l.max {
		if v := front(&l.idle); v != nil {
			l.releaseLocked(v)
			evict = append(evict, v)
		} else {
			l.mu.Unlock()
			for _, v := range evict { // nothing was made room for after all
				v.Conn.Close()
			}
			l.refuse(c, "total", lc.addr)
			return nil
		}
	}
	l.total++
	if a = l.addrs[lc.addr]; a == nil {
		a = &addrConns{}
		l.addrs[lc.addr] = a
	}
	a.n++
	l.mu.Unlock()
	for _, v := range evict {
		v.Conn.Close()
	}
	return lc
}

// front returns the first connection of an idle list, or nil.
func front(idle *list.List) *limitedConn {
	if e := idle.Front(); e != nil {
		return e.Value.(*limitedConn)
	}
	return nil
}

// refuse answers a connection over a cap and closes it; refusals are
// logged at most once a second.
func (l *connLimiter) refuse(c net.Conn, cap string, addr netip.Addr) {
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = io.WriteString(c, busyResponse)
	if tc, ok := c.(interface{ CloseWrite() error }); ok {
		_ = tc.CloseWrite() // the response first, then the end
	}
	c.Close()
	now := time.Now().UnixNano()
	if last := l.lastWarn.Load(); now-last > int64(time.Second) && l.lastWarn.CompareAndSwap(last, now) {
		l.log.Warn("connection refused: too many connections", "cap", cap, "client", addr.String(),
			"http.max_conns", l.max, "http.max_conns_per_ip", l.perIP)
	}
}

// releaseLocked uncounts lc once. l.mu must be held.
func (l *connLimiter) releaseLocked(lc *limitedConn) {
	if lc.released {
		return
	}
	lc.released = true
	l.total--
	a := l.addrs[lc.addr]
	l.unidleLocked(lc, a)
	if a.n--; a.n == 0 {
		delete(l.addrs, lc.addr)
	}
}

// unidleLocked takes lc off the idle lists. l.mu must be held.
func (l *connLimiter) unidleLocked(lc *limitedConn, a *addrConns) {
	if lc.idleAt != nil {
		l.idle.Remove(lc.idleAt)
		a.idle.Remove(lc.addrAt)
		lc.idleAt, lc.addrAt = nil, nil
	}
}

// connState is the http.Server's ConnState hook: it tracks which
// connections sit idle between requests.
func (l *connLimiter) connState(c net.Conn, st http.ConnState) {
	lc, ok := c.(*limitedConn)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if lc.released {
		return
	}
	a := l.addrs[lc.addr]
	switch st {
	case http.StateIdle:
		if lc.idleAt == nil {
			lc.idleAt = l.idle.PushBack(lc)
			lc.addrAt = a.idle.PushBack(lc)
		}
	default:
		l.unidleLocked(lc, a)
	}
}

// Close uncounts the connection and closes it.
func (c *limitedConn) Close() error {
	c.l.mu.Lock()
	c.l.releaseLocked(c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}

// SyscallConn passes the descriptor through, so the chat's write pool
// still writes to WebSockets directly.
func (c *limitedConn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, errors.New("no descriptor")
	}
	return sc.SyscallConn()
}

// CloseWrite passes a half-close through (http.Server uses it to let the
// client read a final response).
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}

// remoteAddr is the client address of c, IPv4 unmapped.
func remoteAddr(c net.Conn) netip.Addr {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	ap, _ := netip.ParseAddrPort(c.RemoteAddr().String())
	return ap.Addr().Unmap()
}

// inPrefixes reports whether addr is in one of ps.
func inPrefixes(ps []netip.Prefix, addr netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}
