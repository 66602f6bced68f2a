package chat

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Ensure bad frames get bad_request and leave the connection up.
func TestBadFrames(t *testing.T) {
	h := newHarness(t, Config{})
	c := h.dial("alice", time.Time{})
	for _, tt := range []struct{ name, frame, ref string }{
		{"NotJSON", `{"type":`, ""},
		{"NotObject", `[1,2]`, ""},
		{"Null", `null`, ""},
		{"NoType", `{"ref":"a"}`, "a"},
		{"UnknownType", `{"type":"dance","ref":"b"}`, "b"},
		{"WrongFieldType", `{"type":"join","room":5,"ref":"c"}`, "c"},
		{"NegativeSince", `{"type":"join","room":"x","since":-1,"ref":"d"}`, "d"},
		{"RefTooLong", `{"type":"ping","ref":"` + strings.Repeat("r", maxRefLen+1) + `"}`, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c.sendRaw([]byte(tt.frame))
			c.expectError(CodeBadRequest, tt.ref)
		})
	}
	t.Run("Binary", func(t *testing.T) {
		if err := c.conn.WriteMessage(websocket.BinaryMessage, []byte(`{"type":"ping"}`)); err != nil {
			t.Fatal(err)
		}
		c.expectError(CodeBadRequest, "")
	})
	c.ping()
}

// Ensure a frame over MaxFrame closes the connection with 1009.
func TestMaxFrame(t *testing.T) {
	eachWriter(t, Config{MaxFrame: 1024}, func(t *testing.T, cfg Config) {
		h := newHarness(t, cfg)
		c := h.dial("alice", time.Time{})
		c.sendRaw([]byte(`{"type":"ping","ref":"` + strings.Repeat("x", 900) + `"}`)) // under the limit
		c.expectError(CodeBadRequest, "")                                             // ref too long, but read
		c.sendRaw([]byte(strings.Repeat("x", 2048)))
		c.expectClose(CloseTooLarge)
		eventually(t, "connection to be dropped", func() bool { return h.hub.Conns() == 0 })
	})
}

// Ensure a user's connection over MaxConnsPerUser is closed with 4029 and
// the others keep working.
func TestTooManyConns(t *testing.T) {
	eachWriter(t, Config{MaxConnsPerUser: 2}, func(t *testing.T, cfg Config) {
		h := newHarness(t, cfg)
		a1, a2 := h.dial("alice", time.Time{}), h.dial("alice", time.Time{})
		a1.ping() // registered
		a2.ping()
		h.dial("alice", time.Time{}).expectClose(CloseTooManyConns)
		h.dial("ALICE", time.Time{}).expectClose(CloseTooManyConns) // names are case-insensitive
		b := h.dial("bob", time.Time{})
		a1.ping()
		a2.ping()
		b.ping()
		a1.conn.Close()
		eventually(t, "a slot to free up", func() bool { return h.hub.Conns() == 2 })
		h.dial("alice", time.Time{}).ping()
	})
}

// Ensure the protocol ping gets a pong and the server sends WebSocket
// pings every PingInterval.
func TestPing(t *testing.T) {
	eachWriter(t, Config{PingInterval: 20 * time.Millisecond}, func(t *testing.T, cfg Config) {
		h := newHarness(t, cfg)
		c := h.dial("alice", time.Time{})
		pings := make(chan struct{}, 100)
		def := c.conn.PingHandler()
		c.conn.SetPingHandler(func(s string) error {
			pings <- struct{}{}
			return def(s)
		})
		// Control frames are handled while reading, so keep reading (protocol
		// pings) until two server pings have arrived.
		deadline := time.Now().Add(waitTimeout)
		for len(pings) < 2 {
			if time.Now().After(deadline) {
				t.Fatal("no WebSocket pings from the server")
			}
			c.ping()
		}
		// And the server answers our pings, through its writer.
		pong := make(chan struct{}, 1)
		c.conn.SetPongHandler(func(string) error { pong <- struct{}{}; return nil })
		if err := c.conn.WriteControl(websocket.PingMessage, []byte("hi"), time.Now().Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		c.ping() // the pong is written before the reply to this
		select {
		case <-pong:
		default:
			t.Fatal("no pong for our ping")
		}
	})
}

// Ensure a peer that stops answering pings is dropped after PongTimeout.
func TestPongTimeout(t *testing.T) {
	h := newHarness(t, Config{PingInterval: 20 * time.Millisecond, PongTimeout: 100 * time.Millisecond})
	c := h.dial("alice", time.Time{})
	c.conn.SetPingHandler(func(string) error { return nil }) // never pong
	start := time.Now()
	_, err := c.tryNext(waitTimeout)
	if err == nil || strings.Contains(err.Error(), "timeout") {
		t.Fatalf("read = %v, want the server to drop us", err)
	}
	if d := time.Since(start); d < 80*time.Millisecond {
		t.Fatalf("dropped after %v, before PongTimeout", d)
	}
	eventually(t, "connection to be dropped", func() bool { return h.hub.Conns() == 0 })
}

// Ensure token expiry sends token_expired at exp and closes with 4001
// within ExpiryGrace (+ one sweep) unless a valid auth frame came first.
func TestTokenExpiry(t *testing.T) {
	eachWriter(t, Config{ExpiryGrace: 200 * time.Millisecond}, func(t *testing.T, cfg Config) {
		t.Run("Closed", func(t *testing.T) {
			h := newHarness(t, cfg)
			exp := time.Now().Add(100 * time.Millisecond)
			c := h.dial("alice", exp)
			c.expectError(CodeTokenExpired, "")
			if time.Now().Before(exp) {
				t.Fatal("token_expired before exp")
			}
			c.expectClose(CloseTokenExpired)
			if d := time.Since(exp); d > time.Second {
				t.Fatalf("closed %v after exp", d)
			}
		})
		t.Run("Renewed", func(t *testing.T) {
			h := newHarness(t, cfg)
			h.auth.add("fresh", Identity{User: "alice", Expires: time.Now().Add(time.Hour)})
			h.auth.add("bobs", Identity{User: "bob", Expires: time.Now().Add(time.Hour)})
			c := h.dial("alice", time.Now().Add(50*time.Millisecond))
			c.expectError(CodeTokenExpired, "")
			c.send(map[string]any{"type": "auth", "token": "bogus", "ref": "a1"})
			c.expectError(CodeUnauthorized, "a1")
			c.send(map[string]any{"type": "auth", "token": "bobs", "ref": "a2"})
			c.expectError(CodeUnauthorized, "a2")
			c.send(map[string]any{"type": "auth", "ref": "a3"})
			c.expectError(CodeBadRequest, "a3")
			c.send(map[string]any{"type": "auth", "token": "fresh", "ref": "a4"})
			if a := c.expect("ack"); a.Ref != "a4" {
				t.Fatalf("auth ack = %+v", a)
			}
			// Past the grace period the connection must still be up.
			if f, err := c.tryNext(400 * time.Millisecond); err == nil || !strings.Contains(err.Error(), "timeout") {
				t.Fatalf("after auth: frame %+v err %v, want silence", f, err)
			}
		})
	})
}

// Ensure Kick closes all of a user's connections with 4003 within a second
// and leaves other users alone.
func TestKick(t *testing.T) {
	eachWriter(t, Config{}, func(t *testing.T, cfg Config) {
		h := newHarness(t, cfg)
		a1, _ := h.join("alice", "general")
		a2 := h.dial("alice", time.Time{})
		a2.ping() // registered
		b, _ := h.join("bob", "general")
		a1.expect("presence")
		start := time.Now()
		h.hub.Kick("Alice")
		a1.expectClose(CloseRevoked)
		a2.expectClose(CloseRevoked)
		if d := time.Since(start); d > time.Second {
			t.Fatalf("kick took %v", d)
		}
		if p := b.expect("presence"); p.User != "alice" || p.Event != "leave" {
			t.Fatalf("presence = %+v", p)
		}
		b.ping()
	})
}

// Ensure a client that does not read is closed with 4008 once it has been
// more than Queue frames behind for QueueWait, while the other members keep
// receiving promptly.
func TestSlowConsumer(t *testing.T) {
	cfg := Config{Queue: 8, QueueWait: 200 * time.Millisecond, QueueBytes: 1 << 30, SendRate: 1e6, SendBurst: 1e6}
	eachWriter(t, cfg, func(t *testing.T, cfg Config) {
		h := newHarness(t, cfg, withSmallSendBuffers)
		// The server's send buffer is small (withSmallSendBuffers); the
		// client's receive buffer is left alone, so that once it reads, the
		// backlog drains at loopback speed, not at the pace of zero-window
		// probes.
		slow, _ := h.join("slow", "general") // and never reads again
		fast, _ := h.join("fast", "general")
		sender, _ := h.join("sender", "general")

		text := strings.Repeat("x", 4000)
		for i := 0; closeCode(h.hub, "slow") == 0 && i < 200; i++ {
			sender.send(map[string]any{"type": "send", "room": "general", "text": text})
			start := time.Now()
			if m := fast.skipUntil("message"); m.ID != uint64(i+1) {
				t.Fatalf("fast got id %d, want %d", m.ID, i+1)
			}
			if d := time.Since(start); d > time.Second {
				t.Fatalf("fast waited %v for message %d", d, i+1)
			}
			sender.skipUntil("ack") // the sender reads too, or it would be slow itself
		}
		// The sweep closes it even if nothing more is queued.
		eventually(t, "slow consumer to be closed", func() bool { return closeCode(h.hub, "slow") == CloseTooSlow })
		slow.expectClose(CloseTooSlow) // reading now drains the backlog and then the close frame
	})
}

// Ensure Shutdown lets in-flight sends commit and be acked, then closes
// every socket with 1001, and that later connections are refused with 1001.
func TestShutdown(t *testing.T) {
	eachWriter(t, Config{}, func(t *testing.T, cfg Config) {
		h := newHarness(t, cfg)
		a, _ := h.join("alice", "general")
		b, _ := h.join("bob", "general")
		a.expect("presence")
		h.store.gate = make(chan struct{})
		a.send(map[string]any{"type": "send", "room": "general", "text": "last words", "ref": "w"})
		done := make(chan error, 1)
		eventually(t, "the send to reach the store", func() bool {
			h.hub.sendMu.RLock()
			defer h.hub.sendMu.RUnlock()
			return inflight(h.hub, "general") == 1
		})
		go func() { done <- h.hub.Shutdown(context.Background()) }()
		select {
		case err := <-done:
			t.Fatalf("Shutdown returned %v with a send in flight", err)
		case h.store.gate <- struct{}{}: // commit now
		}
		for _, c := range []*wsClient{a, b} {
			if m := c.expect("message"); m.Text != "last words" {
				t.Fatalf("message = %+v", m)
			}
		}
		if ack := a.expect("ack"); ack.Ref != "w" {
			t.Fatalf("ack = %+v", ack)
		}
		a.expectClose(CloseGoingAway)
		b.expectClose(CloseGoingAway)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		h.dial("carol", time.Time{}).expectClose(CloseGoingAway)
	})
}

// closeCode returns the close code requested for user's first connection.
func closeCode(h *Hub, user string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.users[user] {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.closeCode
	}
	return 0
}

func inflight(h *Hub, name string) int {
	h.mu.Lock()
	r := h.rooms[name]
	h.mu.Unlock()
	if r == nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.inflight
}

// Ensure connections that come and go, cleanly or not, leave no goroutines
// behind once the hub has stopped.
func TestNoLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Run("Churn", func(t *testing.T) {
		h := newHarness(t, Config{MaxFrame: 512})
		for i := range 20 {
			c, _ := h.join(fmt.Sprintf("u%d", i%5), fmt.Sprintf("room%d", i%3))
			switch i % 4 {
			case 0: // vanish without a close frame
				c.conn.Close()
			case 1: // close politely
				_ = c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(time.Second))
				c.expectClose(1000)
			case 2: // get thrown out
				c.sendRaw([]byte(strings.Repeat("x", 1024)))
				c.expectClose(CloseTooLarge)
			case 3: // still connected at shutdown
			}
		}
	})
	eventually(t, "goroutines to exit", func() bool { return runtime.NumGoroutine() <= before })
}

// Ensure a text frame that is not valid UTF-8 closes the connection with
// 1007 (RFC 6455 §8.1), and that a send behind it is not stored.
func TestInvalidUTF8(t *testing.T) {
	eachWriter(t, Config{}, func(t *testing.T, cfg Config) {
		h := newHarness(t, cfg)
		c, _ := h.join("alice", "general")
		c.sendRaw([]byte("{\"type\":\"send\",\"room\":\"general\",\"text\":\"caf\xe9\"}"))
		c.send(map[string]any{"type": "send", "room": "general", "text": "after"})
		c.expectClose(CloseInvalidData)
		if got, _ := h.store.MessagesBefore("general", 0, 10); len(got) != 0 {
			t.Fatalf("stored %+v", got)
		}
		eventually(t, "connection to be dropped", func() bool { return h.hub.Conns() == 0 })
	})
}
