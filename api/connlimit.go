package api

import (
	"container/list"
	"crypto/tls"
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
//
// The books are kept per connection, off the per-request path: a request
// costs one atomic store (the hook marking the connection idle or busy);
// the lock is taken when a connection opens or closes, and the idle
// connections are looked for only at a cap.
type connLimiter struct {
	net.Listener
	max, perIP int
	exempt     []netip.Prefix
	log        *slog.Logger
	epoch      time.Time // idle times are monotonic nanoseconds since
	// silent: refuse without the plain-HTTP 503 (set before Accept runs,
	// under TLS, where those bytes would only be a handshake error).
	silent bool

	mu    sync.Mutex // guards total, addrs and every conn's released and elem
	total int
	addrs map[netip.Addr]*addrConns

	lastWarn atomic.Int64 // unix nanos of the last refusal logged
}

// addrConns is what the limiter knows of one client address.
type addrConns struct {
	n     int
	conns list.List // *limitedConn
}

// limitedConn is a connection counted by a connLimiter.
type limitedConn struct {
	net.Conn
	l      *connLimiter
	addr   netip.Addr
	capped bool // counts against perIP

	// idleSince is when the connection last went idle between requests
	// (nanoseconds since l.epoch), or 0 while it is new, busy or hijacked.
	idleSince atomic.Int64

	// Guarded by l.mu.
	released bool
	elem     *list.Element // in its address's conns
}

func newConnLimiter(ln net.Listener, max, perIP int, exempt []netip.Prefix, log *slog.Logger) *connLimiter {
	return &connLimiter{Listener: ln, max: max, perIP: perIP, exempt: exempt, log: log,
		epoch: time.Now(), addrs: map[netip.Addr]*addrConns{}}
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

// admit counts c in, making room by closing an idle connection, or
// refuses it (nil).
func (l *connLimiter) admit(c net.Conn) *limitedConn {
	lc := &limitedConn{Conn: c, l: l, addr: remoteAddr(c)}
	lc.capped = l.perIP > 0 && !inPrefixes(l.exempt, lc.addr)
	var evicted *limitedConn
	l.mu.Lock()
	a := l.addrs[lc.addr]
	full, capName := false, ""
	switch {
	case lc.capped && a != nil && a.n >= l.perIP:
		full, capName = true, "per_address"
		evicted = oldestIdle(a)
	case l.total >= l.max:
		full, capName = true, "total"
		for _, a := range l.addrs {
			if v := oldestIdle(a); v != nil && (evicted == nil || v.idleSince.Load() < evicted.idleSince.Load()) {
				evicted = v
			}
		}
	}
	if full && evicted == nil {
		l.mu.Unlock()
		l.refuse(c, capName, lc.addr)
		return nil
	}
	if evicted != nil {
		l.releaseLocked(evicted)
	}
	l.total++
	if a = l.addrs[lc.addr]; a == nil {
		a = &addrConns{}
		l.addrs[lc.addr] = a
	}
	a.n++
	lc.elem = a.conns.PushBack(lc)
	l.mu.Unlock()
	if evicted != nil {
		evicted.Conn.Close()
	}
	return lc
}

// oldestIdle returns a's connection idle the longest, or nil. l.mu must
// be held.
func oldestIdle(a *addrConns) *limitedConn {
	var best *limitedConn
	var bestAt int64
	for e := a.conns.Front(); e != nil; e = e.Next() {
		c := e.Value.(*limitedConn)
		if at := c.idleSince.Load(); at != 0 && (best == nil || at < bestAt) {
			best, bestAt = c, at
		}
	}
	return best
}

// refuse answers a connection over a cap and closes it; refusals are
// logged at most once a second.
func (l *connLimiter) refuse(c net.Conn, cap string, addr netip.Addr) {
	if !l.silent {
		_ = c.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = io.WriteString(c, busyResponse)
		if tc, ok := c.(interface{ CloseWrite() error }); ok {
			_ = tc.CloseWrite() // the response first, then the end
		}
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
	a.conns.Remove(lc.elem)
	if a.n--; a.n == 0 {
		delete(l.addrs, lc.addr)
	}
}

// connState is the http.Server's ConnState hook: it marks connections
// idle between requests, and busy otherwise. One atomic store: it runs
// twice per request.
func (l *connLimiter) connState(c net.Conn, st http.ConnState) {
	if tc, ok := c.(*tls.Conn); ok { // HTTPS: the limiter's conn is inside
		c = tc.NetConn()
	}
	lc, ok := c.(*limitedConn)
	if !ok {
		return
	}
	if st == http.StateIdle {
		lc.idleSince.Store(int64(time.Since(l.epoch)) + 1) // never 0
	} else {
		lc.idleSince.Store(0)
	}
}

// idleCount returns how many connections are idle (for tests). l.mu
// must be held.
func (l *connLimiter) idleCount() int {
	n := 0
	for _, a := range l.addrs {
		for e := a.conns.Front(); e != nil; e = e.Next() {
			if e.Value.(*limitedConn).idleSince.Load() != 0 {
				n++
			}
		}
	}
	return n
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
