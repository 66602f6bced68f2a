package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/chatctl/chatctl/internal/natstest"
	"github.com/chatctl/chatctl/internal/pgtest"
)

// brokerEnv is the environment that points a node at the NATS server s.
func brokerEnv(s *natsserver.Server) string {
	return "CHATCTL_BROKER=" + natstest.URL(s)
}

// twoNodes adds the users alice and bob (password password123) to the
// store of dir and starts two nodes on it, joined by broker.
func twoNodes(t *testing.T, dir, broker string) (a, b *server) {
	t.Helper()
	addUser(t, dir, "alice", "user")
	addUser(t, dir, "bob", "user")
	return startServer(t, dir, broker), startServer(t, dir, broker)
}

// watcher reads a member's socket in its own goroutine and hands on the
// ids of the messages it receives.
type watcher struct {
	ids  chan uint64 // closed when the socket ends
	err  error       // why it ended; read only once ids is closed
	seen []uint64    // ids taken from ids, in order; the test goroutine's
}

// watch joins c to room and starts reading it; c has no read deadline
// from then on.
func watch(t *testing.T, c *websocket.Conn, room string) *watcher {
	t.Helper()
	must(t, c.WriteJSON(map[string]any{"type": "join", "room": room}))
	next(t, c, "joined")
	c.SetReadDeadline(time.Time{})
	w := &watcher{ids: make(chan uint64, 4096)}
	go func() {
		defer close(w.ids)
		for {
			var f frame
			if err := c.ReadJSON(&f); err != nil {
				w.err = err
				return
			}
			if f.Type == "message" {
				w.ids <- f.ID
			}
		}
	}()
	return w
}

// until takes ids until done says so; it returns an error when the socket
// ends or timeout fires first.
func (w *watcher) until(timeout <-chan time.Time, done func() bool) error {
	for !done() {
		select {
		case id, ok := <-w.ids:
			if !ok {
				return fmt.Errorf("socket closed after %d messages: %v", len(w.seen), w.err)
			}
			w.seen = append(w.seen, id)
		case <-timeout:
			return fmt.Errorf("only %d messages in time (last %v)", len(w.seen), w.seen[max(len(w.seen)-3, 0):])
		}
	}
	return nil
}

// gapless fails unless the watcher saw 1..last, once each, in order.
func (w *watcher) gapless(t *testing.T, last uint64) {
	t.Helper()
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	if err := w.until(timeout.C, func() bool { return len(w.seen) > 0 && w.seen[len(w.seen)-1] >= last }); err != nil {
		t.Fatalf("want ids up to %d: %v", last, err)
	}
	for i, id := range w.seen {
		if id != uint64(i+1) {
			t.Fatalf("message %d has id %d, want %d: a gap or a duplicate (ids %v)", i, id, i+1, w.seen)
		}
	}
}

// sendOne sends text to room on c and returns its ack's id, or the code of
// the error frame that answered it.
func sendOne(t *testing.T, c *websocket.Conn, room, text string) (uint64, string) {
	t.Helper()
	must(t, c.WriteJSON(map[string]any{"type": "send", "room": room, "text": text, "ref": text}))
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		var f frame
		must(t, c.ReadJSON(&f))
		switch {
		case f.Type == "ack" && f.Ref == text:
			return f.ID, ""
		case f.Type == "error" && f.Ref == text:
			return 0, f.Code
		}
	}
}

// health returns the status and body of /health on s.
func health(t *testing.T, s *server) (int, string) {
	t.Helper()
	resp, err := http.Get(s.url("/health"))
	must(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	must(t, err)
	return resp.StatusCode, string(body)
}

// Ensure two `chatctl serve` processes on one PostgreSQL store with a
// broker are one service, and that a node SIGKILLed mid-burst loses
// nothing: its sender resumes on the other node with since, and a member
// there sees every acked id once, in order, without gaps (SPEC §7).
func TestPostgresClusterKillNode(t *testing.T) {
	dir, _ := pgDir(t)
	broker := brokerEnv(natstest.Start(t, -1))
	a, b := twoNodes(t, dir, broker)
	bob := watch(t, dial(t, b, login(t, b, "bob", "password123")), "k")

	acked := map[uint64]string{}
	send := func(s *server, n, from int) {
		c := dial(t, s, login(t, s, "alice", "password123"))
		must(t, c.WriteJSON(map[string]any{"type": "join", "room": "k", "since": 0}))
		next(t, c, "joined")
		for i := from; i < from+n; i++ {
			text := fmt.Sprint("m", i)
			if err := c.WriteJSON(map[string]any{"type": "send", "room": "k", "text": text, "ref": text}); err != nil {
				return
			}
			for {
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				var f frame
				if err := c.ReadJSON(&f); err != nil {
					return // the node died
				}
				if f.Type == "ack" && f.Ref == text {
					acked[f.ID] = text
					break
				}
				if f.Type == "error" {
					if f.Code != "rate_limited" {
						t.Fatalf("send: %+v", f)
					}
					time.Sleep(50 * time.Millisecond) // the limiter's refill, not a wait for an event
					i--
					break
				}
			}
		}
	}
	// Alice sends on a; a dies once bob, on b, has seen 30 of her
	// messages, with more on the wire. bob belongs to the killer until
	// killed.Wait() returns.
	var killed sync.WaitGroup
	killed.Add(1)
	go func() {
		defer killed.Done()
		timeout := time.NewTimer(60 * time.Second)
		defer timeout.Stop()
		if err := bob.until(timeout.C, func() bool { return len(bob.seen) >= 30 }); err != nil {
			t.Errorf("bob, before the kill: %v", err)
		}
		if err := a.cmd.Process.Kill(); err != nil {
			t.Error(err)
		}
	}()
	send(a, 1000, 0)
	killed.Wait()
	a.cmd.Wait()
	// She resumes on b.
	send(b, 20, 1000)

	var last uint64
	for id := range acked {
		last = max(last, id)
	}
	bob.gapless(t, last)
	t.Logf("%d acked, bob saw %d in order", len(acked), len(bob.seen))
}

// Ensure a cluster rides out a crash and restart of PostgreSQL (its own
// cluster, stopped with `pg_ctl -m immediate`, so it recovers from the WAL
// on restart): meanwhile sends fail with unavailable and nothing is acked,
// /health answers 503 on every node; afterwards both nodes accept sends
// again without anyone reconnecting, the ids go on with no gap, a member
// on the other node sees every acked id once, in order, and every acked
// message is in the store's replay.
func TestPostgresClusterStoreRestart(t *testing.T) {
	pg := pgtest.NewPrivate(t)
	dir := t.TempDir()
	useStore(t, dir, pg.URL)
	broker := brokerEnv(natstest.Start(t, -1))
	a, b := twoNodes(t, dir, broker)
	bob := watch(t, dial(t, b, login(t, b, "bob", "password123")), "r")
	onA := dial(t, a, login(t, a, "alice", "password123"))
	onB := dial(t, b, login(t, b, "alice", "password123"))
	for _, c := range []*websocket.Conn{onA, onB} {
		must(t, c.WriteJSON(map[string]any{"type": "join", "room": "r"}))
		next(t, c, "joined")
	}
	n := 0
	acked := map[uint64]string{}
	send := func(c *websocket.Conn) (uint64, string) {
		n++
		text := fmt.Sprint("m", n)
		id, code := sendOne(t, c, "r", text)
		if code == "" {
			acked[id] = text
		}
		return id, code
	}
	var last uint64
	for range 3 {
		id, code := send(onA)
		if code != "" || id != last+1 {
			t.Fatalf("before the restart: ack %d, error %q; want id %d", id, code, last+1)
		}
		last = id
	}

	pg.Crash()
	for _, c := range []*websocket.Conn{onA, onB} {
		if id, code := send(c); code != "unavailable" {
			t.Fatalf("a send while the database is away: ack %d, error %q; want error unavailable", id, code)
		}
	}
	for _, s := range []*server{a, b} {
		if st, body := health(t, s); st != http.StatusServiceUnavailable {
			t.Errorf("/health on %s with the database away: %d %s, want 503", s.addr, st, body)
		}
	}

	pg.Start()
	// A node's first send after the restart may still meet a dead pooled
	// connection; the pool replaces it, and a later one goes through.
	deadline := time.Now().Add(20 * time.Second)
	for i := range 11 {
		c := []*websocket.Conn{onA, onB}[i%2]
		id, code := send(c)
		for code == "unavailable" && time.Now().Before(deadline) {
			id, code = send(c)
		}
		if code != "" || id != last+1 {
			t.Fatalf("after the restart: ack %d, error %q; want id %d (no id used by failed sends)", id, code, last+1)
		}
		last = id
	}
	bob.gapless(t, last)
	for _, s := range []*server{a, b} {
		if st, body := health(t, s); st != http.StatusOK {
			t.Errorf("/health on %s after the restart: %d %s, want 200", s.addr, st, body)
		}
	}
	must(t, onA.WriteJSON(map[string]any{"type": "join", "room": "r", "since": 0}))
	j := next(t, onA, "joined")
	if len(j.Messages) != int(last) || j.More {
		t.Fatalf("replay after the restart: %d messages (more %v), want %d", len(j.Messages), j.More, last)
	}
	for i, m := range j.Messages {
		if m.ID != uint64(i+1) || m.Text != acked[m.ID] {
			t.Fatalf("replay after the restart: message %d is %d %q, want %d %q", i, m.ID, m.Text, i+1, acked[uint64(i+1)])
		}
	}
}

// Ensure a cluster rides out NATS stopping and coming back on the same
// address: meanwhile each node goes on acking its own sends and says
// degraded on /health, and a member on the other node still gets every
// message (from the database); afterwards the nodes reconnect by
// themselves, /health is ok again, and the member has seen every acked id
// once, in order.
func TestPostgresClusterNATSRestart(t *testing.T) {
	dir, _ := pgDir(t)
	ns := natstest.Start(t, -1)
	port := natstest.Port(ns)
	broker := brokerEnv(ns)
	a, b := twoNodes(t, dir, broker)
	bob := watch(t, dial(t, b, login(t, b, "bob", "password123")), "r")
	alice := dial(t, a, login(t, a, "alice", "password123"))
	must(t, alice.WriteJSON(map[string]any{"type": "join", "room": "r"}))
	next(t, alice, "joined")
	var last uint64
	sendSome := func(what string, count int) {
		for i := range count {
			id, code := sendOne(t, alice, "r", fmt.Sprint(what, i))
			if code != "" || id != last+1 {
				t.Fatalf("%s: ack %d, error %q; want id %d", what, id, code, last+1)
			}
			last = id
		}
	}
	sendSome("before", 3)
	bob.gapless(t, last)

	ns.Shutdown()
	ns.WaitForShutdown()
	// Until a node notices NATS is gone its sends' hints are lost; bob's
	// node reads them from the database either way.
	sendSome("down", 5)
	bob.gapless(t, last)
	waitHealth(t, a, `"degraded"`)
	waitHealth(t, b, `"degraded"`)

	natstest.Start(t, port)
	waitHealth(t, a, `"ok"`)
	waitHealth(t, b, `"ok"`)
	sendSome("back", 5)
	bob.gapless(t, last)
}

// waitHealth waits up to 30 s for /health on s to answer 200 with a body
// holding want.
func waitHealth(t *testing.T, s *server, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, body := health(t, s)
		if st == http.StatusOK && strings.Contains(body, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/health on %s: %d %s; want 200 with %s", s.addr, st, body, want)
		}
		time.Sleep(50 * time.Millisecond) // polling a state that has no event to wait on
	}
}

// ended reads c until it ends and hands on the error that ended it.
func ended(c *websocket.Conn) <-chan error {
	ch := make(chan error, 1)
	c.SetReadDeadline(time.Time{})
	go func() {
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				ch <- err
				return
			}
		}
	}()
	return ch
}

// closed4003 waits up to 15 s for end and fails unless it is a 4003 close.
func closed4003(t *testing.T, what string, end <-chan error) {
	t.Helper()
	select {
	case err := <-end:
		if !websocket.IsCloseError(err, 4003) {
			t.Fatalf("%s ended with %v, want close 4003", what, err)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("%s still open 15 s after the revocation", what)
	}
}

// Ensure what the CLI revokes, on the database alone, closes the sockets
// concerned with 4003 on every node of a cluster: `user disable` every
// socket of the user on both nodes, `token revoke JTI` the one socket
// opened with that token and no other.
func TestPostgresClusterCLIRevokes(t *testing.T) {
	dir, _ := pgDir(t)
	broker := brokerEnv(natstest.Start(t, -1))
	a, b := twoNodes(t, dir, broker)

	onA := ended(dial(t, a, login(t, a, "alice", "password123")))
	onB := ended(dial(t, b, login(t, b, "alice", "password123")))
	start := time.Now()
	if _, stderr, err := chatctl(t, dir, "", "user", "disable", "alice"); err != nil {
		t.Fatalf("user disable: %v %s", err, stderr)
	}
	closed4003(t, "alice's socket on node a", onA)
	closed4003(t, "alice's socket on node b", onB)
	t.Logf("user disable to both sockets closed: %v", time.Since(start))

	issued := issueToken(t, dir, "bob")
	gone := ended(dial(t, b, issued.Token))
	kept := dial(t, a, login(t, a, "bob", "password123"))
	start = time.Now()
	if _, stderr, err := chatctl(t, dir, "", "token", "revoke", issued.JTI); err != nil {
		t.Fatalf("token revoke: %v %s", err, stderr)
	}
	closed4003(t, "the socket of the revoked token on node b", gone)
	t.Logf("token revoke to its socket closed: %v", time.Since(start))
	// Once node a refuses the token too, it has applied the revocation;
	// bob's other socket there must still work.
	waitStatus(t, a, issued.Token, http.StatusUnauthorized, "node a refuses the revoked token")
	must(t, kept.WriteJSON(map[string]any{"type": "join", "room": "r"}))
	next(t, kept, "joined")
}
