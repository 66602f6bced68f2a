package api

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chatctl/chatctl/admin"
	"github.com/chatctl/chatctl/configs"
)

// connTest is an http.Server behind a connLimiter whose /block requests
// wait until the test ends, and whose /ok requests answer at once.
type connTest struct {
	t       *testing.T
	l       *connLimiter
	addr    string
	entered chan struct{} // one per /block request in its handler
}

func startLimited(t *testing.T, max, perIP int, exempt []netip.Prefix) *connTest {
	t.Helper()
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	lt := &connTest{t: t, addr: tcp.Addr().String(), entered: make(chan struct{}, 64),
		l: newConnLimiter(tcp, max, perIP, exempt, slog.New(slog.NewJSONHandler(logs, nil)))}
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/block", func(w http.ResponseWriter, r *http.Request) {
		lt.entered <- struct{}{}
		<-release
	})
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	hs := &http.Server{Handler: mux, ConnState: lt.l.connState}
	go hs.Serve(lt.l)
	t.Cleanup(func() {
		close(release)
		hs.Close()
	})
	return lt
}

// dial opens a connection and sends one GET of path on it.
func (lt *connTest) dial(path string) (net.Conn, *bufio.Reader) {
	lt.t.Helper()
	c, err := net.Dial("tcp", lt.addr)
	if err != nil {
		lt.t.Fatal(err)
	}
	lt.t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n")
	return c, bufio.NewReader(c)
}

// blocked opens n connections whose requests are in progress.
func (lt *connTest) blocked(n int) {
	lt.t.Helper()
	for range n {
		lt.dial("/block")
		select {
		case <-lt.entered:
		case <-time.After(10 * time.Second):
			lt.t.Fatal("a /block request never reached its handler")
		}
	}
}

// idle opens n keep-alive connections that have had one answer, and
// waits until the server counts them idle.
func (lt *connTest) idle(n int) []*bufio.Reader {
	lt.t.Helper()
	var rs []*bufio.Reader
	for range n {
		_, r := lt.dial("/ok")
		if status := readStatus(lt.t, r); status != http.StatusOK {
			lt.t.Fatalf("/ok = %d", status)
		}
		rs = append(rs, r)
	}
	lt.waitFor(func() bool { return lt.l.idleCount() == n })
	return rs
}

// waitFor waits until cond (run under the limiter's lock) holds.
func (lt *connTest) waitFor(cond func() bool) {
	lt.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		lt.l.mu.Lock()
		ok := cond()
		lt.l.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			lt.t.Fatal("condition not reached in 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

// readStatus reads one response and returns its status.
func readStatus(t *testing.T, r *bufio.Reader) int {
	t.Helper()
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatalf("reading a response: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// Ensure the total cap holds with real connections: with every slot busy
// a newcomer gets 503 and is closed; with idle keep-alive connections the
// longest idle is closed for the newcomer, which is served.
func TestConnLimitTotal(t *testing.T) {
	t.Run("BusyRefused", func(t *testing.T) {
		lt := startLimited(t, 3, 0, nil)
		lt.blocked(3)
		_, r := lt.dial("/ok")
		if status := readStatus(t, r); status != http.StatusServiceUnavailable {
			t.Fatalf("newcomer at the cap = %d, want 503", status)
		}
		if _, err := r.ReadByte(); err != io.EOF {
			t.Errorf("refused connection not closed: %v", err)
		}
		lt.waitFor(func() bool { return lt.l.total == 3 })
	})
	t.Run("IdleEvicted", func(t *testing.T) {
		lt := startLimited(t, 3, 0, nil)
		idle := lt.idle(3)
		_, r := lt.dial("/ok")
		if status := readStatus(t, r); status != http.StatusOK {
			t.Fatalf("newcomer with idle connections open = %d, want 200", status)
		}
		if _, err := idle[0].ReadByte(); err == nil {
			t.Error("the longest-idle connection was not closed")
		}
		lt.waitFor(func() bool { return lt.l.total == 3 })
	})
}

// Ensure the per-address cap holds with real connections, the same way,
// and that addresses of trusted proxies are exempt from it.
func TestConnLimitPerAddress(t *testing.T) {
	t.Run("BusyRefused", func(t *testing.T) {
		lt := startLimited(t, 100, 2, nil)
		lt.blocked(2)
		_, r := lt.dial("/ok")
		if status := readStatus(t, r); status != http.StatusServiceUnavailable {
			t.Fatalf("third connection from one address = %d, want 503", status)
		}
	})
	t.Run("IdleEvicted", func(t *testing.T) {
		lt := startLimited(t, 100, 2, nil)
		idle := lt.idle(2)
		_, r := lt.dial("/ok")
		if status := readStatus(t, r); status != http.StatusOK {
			t.Fatalf("newcomer with idle connections open = %d, want 200", status)
		}
		if _, err := idle[0].ReadByte(); err == nil {
			t.Error("the longest-idle connection was not closed")
		}
		lt.waitFor(func() bool { return lt.l.total == 2 && lt.l.addrs[netip.MustParseAddr("127.0.0.1")].n == 2 })
	})
	t.Run("ProxyExempt", func(t *testing.T) {
		lt := startLimited(t, 100, 2, []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")})
		lt.blocked(5)
		lt.waitFor(func() bool { return lt.l.total == 5 })
	})
}

// Ensure counted connections keep their descriptor reachable, so the
// chat's write pool still works on them.
func TestLimitedConnSyscall(t *testing.T) {
	lt := startLimited(t, 10, 0, nil)
	c, err := net.Dial("tcp", lt.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	lc := &limitedConn{Conn: c, l: lt.l}
	sc, ok := net.Conn(lc).(syscall.Conn)
	if !ok {
		t.Fatal("limitedConn is not a syscall.Conn")
	}
	if _, err := sc.SyscallConn(); err != nil {
		t.Fatal(err)
	}
}

// Ensure the derived cap leaves the reserve below the open-file limit, and
// a configured cap above it is lowered.
func TestMaxConns(t *testing.T) {
	limit, ok := fileLimit()
	if !ok {
		t.Skip("no open-file limit here")
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	derived := maxConns(0, log)
	if derived >= limit || derived < limit/2 || (limit > 2*fdReserve && derived != limit-fdReserve) {
		t.Errorf("derived cap %d for ulimit -n %d", derived, limit)
	}
	if got := maxConns(10, log); got != 10 {
		t.Errorf("maxConns(10) = %d", got)
	}
	if got := maxConns(limit*2, log); got != derived {
		t.Errorf("maxConns(2×limit) = %d, want %d", got, derived)
	}
}

// Ensure the admin socket keeps working when the HTTP side is full: the
// CLI's way in is not counted against http.max_conns.
func TestAdminSocketWhenHTTPFull(t *testing.T) {
	shortTimeouts(t, 30*time.Second)
	s := runServe(t, func(c *configs.Config) { c.HTTP.MaxConns = 2 })
	var held []net.Conn
	for range 2 { // two requests whose bodies never come
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nu")
		held = append(held, c)
	}
	// A third client is refused once both are counted.
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + s.addr + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("a third connection was not refused: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	a, err := admin.Dial(s.cfg.SocketPath(), 5*time.Second)
	if err != nil {
		t.Fatalf("admin socket with HTTP full: %v", err)
	}
	defer a.Close()
	if _, err := a.Users(bg); err != nil {
		t.Fatalf("admin socket with HTTP full: %v", err)
	}
	if !strings.Contains(s.logs.String(), "too many connections") {
		t.Errorf("refusal not logged: %s", s.logs.String())
	}
}

// BenchmarkConnState measures what the connection caps add to every
// request: the ConnState hook runs twice (active, then idle).
func BenchmarkConnState(b *testing.B) {
	l := newConnLimiter(nil, 10, 0, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	b.RunParallel(func(pb *testing.PB) {
		lc := &limitedConn{l: l} // one connection per goroutine, as in the server
		for pb.Next() {
			l.connState(lc, http.StateActive)
			l.connState(lc, http.StateIdle)
		}
	})
}
