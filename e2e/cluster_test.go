package e2e

import (
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
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
	var mu sync.Mutex // guards seen
	var seen []uint64 // ids bob got, in order
	bobDone := make(chan struct{})
	go func() {
		defer close(bobDone)
		for {
			var f frame
			if err := bob.ReadJSON(&f); err != nil {
				return
			}
			if f.Type == "message" {
				mu.Lock()
				seen = append(seen, f.ID)
				mu.Unlock()
			}
		}
	}()

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
		deadline := time.Now().Add(30 * time.Second)
		for {
			n := func() int { mu.Lock(); defer mu.Unlock(); return len(seen) }()
			if n >= 30 || time.Now().After(deadline) {
				if n < 30 {
					t.Errorf("bob saw only %d messages from the other node", n)
				}
				if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Error(err)
				}
				return
			}
			time.Sleep(5 * time.Millisecond) // polling bob's count, not a wait for an event
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
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(seen)
		done := n > 0 && seen[n-1] >= last
		mu.Unlock()
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bob saw %d messages, want up to id %d", n, last)
		}
		time.Sleep(5 * time.Millisecond) // polling, not a wait for an event
	}
	bob.Close()
	<-bobDone
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
