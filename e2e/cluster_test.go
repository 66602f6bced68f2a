package e2e

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/chatctl/chatctl/internal/pgtest"
)

// startNATS runs a NATS server in this process on a random port and
// returns its URL.
func startNATS(t *testing.T) string {
	t.Helper()
	s, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server not ready")
	}
	t.Cleanup(s.Shutdown)
	return "nats://" + s.Addr().String()
}

// Ensure two `chatctl serve` processes on one PostgreSQL store with a
// broker are one service, and that a node SIGKILLed mid-burst loses
// nothing: its sender resumes on the other node with since, and a member
// there sees every acked id once, in order, without gaps (SPEC §7).
func TestPostgresClusterKillNode(t *testing.T) {
	dir, _ := pgDir(t)
	broker := "CHATCTL_BROKER=" + startNATS(t)
	addUser(t, dir, "alice", "user")
	addUser(t, dir, "bob", "user")
	a := startServer(t, dir, broker)
	b := startServer(t, dir, broker)

	bob := dial(t, b, login(t, b, "bob", "password123"))
	must(t, bob.WriteJSON(map[string]any{"type": "join", "room": "k"}))
	next(t, bob, "joined")
	// Bob's reader hands the ids on; seen belongs to the killer goroutine
	// until killed.Wait() returns, then to the test.
	ids := make(chan uint64, 4096)
	var seen []uint64                // ids bob got, in order
	var bobErr error                 // why bob's reader stopped; read once ids is closed
	bob.SetReadDeadline(time.Time{}) // next's deadline: bob waits as long as the test runs
	go func() {
		defer close(ids)
		for {
			var f frame
			if err := bob.ReadJSON(&f); err != nil {
				bobErr = err
				return
			}
			if f.Type == "message" {
				ids <- f.ID
			}
		}
	}()
	timeout := time.NewTimer(60 * time.Second)
	defer timeout.Stop()

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
	// Alice sends on a; a dies after 30 acks with more on the wire.
	var killed sync.WaitGroup
	killed.Add(1)
	go func() {
		defer killed.Done()
		defer func() {
			if err := a.cmd.Process.Kill(); err != nil {
				t.Error(err)
			}
		}()
		for len(seen) < 30 {
			select {
			case id, ok := <-ids:
				if !ok {
					t.Errorf("bob's socket closed after %d messages: %v", len(seen), bobErr)
					return
				}
				seen = append(seen, id)
			case <-timeout.C:
				t.Errorf("bob saw only %d messages from the other node", len(seen))
				return
			}
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
	timeout.Reset(60 * time.Second)
	for len(seen) == 0 || seen[len(seen)-1] < last {
		select {
		case id, ok := <-ids:
			if !ok {
				t.Fatalf("bob's socket closed after %d messages, want up to id %d: %v", len(seen), last, bobErr)
			}
			seen = append(seen, id)
		case <-timeout.C:
			t.Fatalf("bob saw %d messages, want up to id %d", len(seen), last)
		}
	}
	bob.Close()
	for range ids { // the reader's end
	}
	for i, id := range seen {
		if id != uint64(i+1) {
			t.Fatalf("bob's message %d has id %d: a gap or a duplicate across the kill", i, id)
		}
	}
	for id := range acked {
		if id > uint64(len(seen)) {
			t.Fatalf("acked id %d never reached bob", id)
		}
	}
	t.Logf("%d acked, bob saw %d in order", len(acked), len(seen))
}

// Ensure a cluster rides out its database going away and coming back (a
// PostgreSQL restart, as its nodes see it: every connection cut, then
// refused, then accepted again). Meanwhile sends fail with unavailable
// and nothing is acked, /health answers 503 on every node; afterwards both
// nodes accept sends again without anyone reconnecting, the ids go on with
// no gap, and a member on the other node sees every acked id once, in
// order.
func TestPostgresClusterStoreRestart(t *testing.T) {
	via, proxy := pgtest.Via(t, pgtest.URL(t))
	dir := t.TempDir()
	useStore(t, dir, via)
	broker := "CHATCTL_BROKER=" + startNATS(t)
	addUser(t, dir, "alice", "user")
	addUser(t, dir, "bob", "user")
	a := startServer(t, dir, broker)
	b := startServer(t, dir, broker)

	bob := dial(t, b, login(t, b, "bob", "password123"))
	must(t, bob.WriteJSON(map[string]any{"type": "join", "room": "r"}))
	next(t, bob, "joined")
	bob.SetReadDeadline(time.Time{})
	ids := make(chan uint64, 1024)
	go func() {
		defer close(ids)
		for {
			var f frame
			if bob.ReadJSON(&f) != nil {
				return
			}
			if f.Type == "message" {
				ids <- f.ID
			}
		}
	}()
	onA := dial(t, a, login(t, a, "alice", "password123"))
	onB := dial(t, b, login(t, b, "alice", "password123"))
	for _, c := range []*websocket.Conn{onA, onB} {
		must(t, c.WriteJSON(map[string]any{"type": "join", "room": "r"}))
		next(t, c, "joined")
	}
	// send sends one message on c and returns its ack's id, or the error
	// frame's code.
	n := 0
	send := func(c *websocket.Conn) (uint64, string) {
		n++
		ref := fmt.Sprint("m", n)
		must(t, c.WriteJSON(map[string]any{"type": "send", "room": "r", "text": ref, "ref": ref}))
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		for {
			var f frame
			must(t, c.ReadJSON(&f))
			switch {
			case f.Type == "ack" && f.Ref == ref:
				return f.ID, ""
			case f.Type == "error" && f.Ref == ref:
				return 0, f.Code
			}
		}
	}
	var last uint64
	for range 3 {
		id, code := send(onA)
		if code != "" || id != last+1 {
			t.Fatalf("before the restart: ack %d, error %q; want id %d", id, code, last+1)
		}
		last = id
	}

	proxy.Stop()
	for _, c := range []*websocket.Conn{onA, onB} {
		if id, code := send(c); code != "unavailable" {
			t.Fatalf("a send while the database is away: ack %d, error %q; want error unavailable", id, code)
		}
	}
	for _, s := range []*server{a, b} {
		resp, err := http.Get(s.url("/health"))
		must(t, err)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("/health on %s with the database away: %d, want 503", s.addr, resp.StatusCode)
		}
	}

	proxy.Start()
	// The first send after the restart may still find a dead pooled
	// connection; the pool replaces it, and the next one goes through.
	deadline := time.Now().Add(20 * time.Second)
	for {
		id, code := send(onA)
		if code == "" {
			if id != last+1 {
				t.Fatalf("first ack after the restart has id %d, want %d (no id used by failed sends)", id, last+1)
			}
			last = id
			break
		}
		if code != "unavailable" || time.Now().After(deadline) {
			t.Fatalf("no ack within 20 s of the database coming back: last error %q", code)
		}
	}
	for i := range 10 {
		c := []*websocket.Conn{onA, onB}[i%2]
		id, code := send(c)
		for code == "unavailable" && time.Now().Before(deadline) {
			id, code = send(c) // node b's pool meets the restart here
		}
		if code != "" || id != last+1 {
			t.Fatalf("after the restart: ack %d, error %q; want id %d", id, code, last+1)
		}
		last = id
	}
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	var seen []uint64
	for len(seen) == 0 || seen[len(seen)-1] < last {
		select {
		case id, ok := <-ids:
			if !ok {
				t.Fatalf("bob's socket closed after %v", seen)
			}
			seen = append(seen, id)
		case <-timeout.C:
			t.Fatalf("bob saw %v, want 1..%d", seen, last)
		}
	}
	for i, id := range seen {
		if id != uint64(i+1) {
			t.Fatalf("bob saw %v: want 1..%d once each, in order", seen, last)
		}
	}
	for _, s := range []*server{a, b} {
		resp, err := http.Get(s.url("/health"))
		must(t, err)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("/health on %s after the restart: %d, want 200", s.addr, resp.StatusCode)
		}
	}
}
