package e2e

import (
	"fmt"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// frame is any server frame, with the fields these tests read.
type frame struct {
	Type     string    `json:"type"`
	Ref      string    `json:"ref"`
	Room     string    `json:"room"`
	ID       uint64    `json:"id"`
	Code     string    `json:"code"`
	Text     string    `json:"text"`
	Messages []frame   `json:"messages"`
	More     bool      `json:"more"`
	Members  []string  `json:"members"`
	TS       time.Time `json:"ts"`
}

func dial(t testing.TB, s *server, token string) *websocket.Conn {
	t.Helper()
	h := http.Header{"Authorization": {"Bearer " + token}}
	c, resp, err := websocket.DefaultDialer.Dial("ws://"+s.addr+"/ws", h)
	if err != nil {
		status := ""
		if resp != nil {
			status = resp.Status
		}
		t.Fatalf("dial: %v %s", err, status)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// next reads frames until one of type typ arrives.
func next(t testing.TB, c *websocket.Conn, typ string) frame {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		var f frame
		if err := c.ReadJSON(&f); err != nil {
			t.Fatalf("waiting for %s: %v", typ, err)
		}
		if f.Type == typ {
			return f
		}
	}
}

// Ensure every acknowledged message survives a SIGKILL mid-traffic, with
// ids 1..n in each room and no gaps.
func TestKillKeepsAckedMessages(t *testing.T) { testKillKeepsAcked(t, t.TempDir()) }

// testKillKeepsAcked is TestKillKeepsAckedMessages on the store of the
// processes run in dir (see useStore).
func testKillKeepsAcked(t *testing.T, dir string) {
	addUser(t, dir, "alice", "user")
	srv := startServer(t, dir)
	tok := login(t, srv, "alice", "password123")

	const senders = 6
	rooms := []string{"r1", "r2", "r3"}
	var mu sync.Mutex
	acked := map[string]map[uint64]string{} // room -> id -> text
	for _, r := range rooms {
		acked[r] = map[uint64]string{}
	}
	var wg sync.WaitGroup
	killed := make(chan struct{})
	enough := make(chan struct{})
	var enoughOnce sync.Once
	for i := range senders {
		room := rooms[i%len(rooms)]
		c := dial(t, srv, tok)
		must(t, c.WriteJSON(map[string]any{"type": "join", "room": room}))
		next(t, c, "joined")
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Send one at a time, as fast as the limiter allows, until the
			// kill breaks the connection.
			for n := 0; ; n++ {
				text := fmt.Sprintf("s%d-%d", i, n)
				ref := fmt.Sprint(n)
				if err := c.WriteJSON(map[string]any{"type": "send", "room": room, "text": text, "ref": ref}); err != nil {
					return
				}
				for {
					c.SetReadDeadline(time.Now().Add(10 * time.Second))
					var f frame
					if err := c.ReadJSON(&f); err != nil {
						return
					}
					if f.Type == "ack" && f.Ref == ref {
						mu.Lock()
						acked[room][f.ID] = text
						total := 0
						for _, m := range acked {
							total += len(m)
						}
						mu.Unlock()
						if total >= 150 {
							enoughOnce.Do(func() { close(enough) })
						}
						break
					}
					if f.Type == "error" && f.Code == "rate_limited" {
						break // not sent; try the next
					}
				}
				select {
				case <-killed:
					return
				default:
				}
			}
		}()
	}
	select {
	case <-enough:
	case <-time.After(30 * time.Second):
		t.Fatal("too few acks within 30 s")
	}
	must(t, srv.cmd.Process.Signal(syscall.SIGKILL))
	close(killed)
	srv.cmd.Wait()
	wg.Wait()

	srv2 := startServer(t, dir)
	tok2 := login(t, srv2, "alice", "password123")
	c := dial(t, srv2, tok2)
	for _, room := range rooms {
		must(t, c.WriteJSON(map[string]any{"type": "join", "room": room, "since": 0}))
		j := next(t, c, "joined")
		got := map[uint64]string{}
		for i, m := range j.Messages {
			if m.ID != uint64(i+1) {
				t.Fatalf("room %s: message %d has id %d: ids must run 1, 2, 3 … without gaps", room, i, m.ID)
			}
			got[m.ID] = m.Text
		}
		if j.More {
			t.Fatalf("room %s: replay truncated", room)
		}
		mu.Lock()
		for id, text := range acked[room] {
			if got[id] != text {
				t.Errorf("room %s: acked message %d %q is %q after restart", room, id, text, got[id])
			}
		}
		t.Logf("room %s: %d acked, %d stored", room, len(acked[room]), len(got))
		mu.Unlock()
	}
}

// Ensure SIGTERM drains: sockets get 1001, the process exits 0, and
// messages acked before it are there after a restart.
func TestSIGTERMDrains(t *testing.T) {
	dir := t.TempDir()
	addUser(t, dir, "bob", "user")
	srv := startServer(t, dir)
	tok := login(t, srv, "bob", "password123")
	c := dial(t, srv, tok)
	must(t, c.WriteJSON(map[string]any{"type": "join", "room": "lobby"}))
	next(t, c, "joined")
	for i := range 5 {
		must(t, c.WriteJSON(map[string]any{"type": "send", "room": "lobby", "text": fmt.Sprint("m", i), "ref": fmt.Sprint(i)}))
		next(t, c, "ack")
	}
	must(t, srv.cmd.Process.Signal(syscall.SIGTERM))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var closeErr error
	for closeErr == nil {
		_, _, closeErr = c.ReadMessage()
	}
	if !websocket.IsCloseError(closeErr, websocket.CloseGoingAway) {
		t.Fatalf("socket ended with %v, want close 1001", closeErr)
	}
	if err := srv.cmd.Wait(); err != nil {
		t.Fatalf("serve exited with %v after SIGTERM, want 0", err)
	}
	srv2 := startServer(t, dir)
	c2 := dial(t, srv2, login(t, srv2, "bob", "password123"))
	must(t, c2.WriteJSON(map[string]any{"type": "join", "room": "lobby", "since": 0}))
	if j := next(t, c2, "joined"); len(j.Messages) != 5 || j.Messages[4].ID != 5 {
		t.Fatalf("after restart: %+v", j.Messages)
	}
}
