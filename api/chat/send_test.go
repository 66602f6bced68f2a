package chat

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Ensure a send is acked to the sender and broadcast to every member
// connection, the sender's included, with the stored id and timestamp.
func TestSend(t *testing.T) {
	eachWriter(t, Config{MaxText: 10}, func(t *testing.T, cfg Config) {
		h := newHarness(t, cfg)
		alice, _ := h.join("alice", "general")
		alice2, _ := h.join("alice", "general")
		bob, _ := h.join("bob", "general")
		alice.expect("presence")  // bob
		alice2.expect("presence") // bob

		t.Run("OK", func(t *testing.T) {
			alice.send(map[string]any{"type": "send", "room": "general", "text": "hi", "ref": "c1"})
			for _, c := range []*wsClient{alice, alice2, bob} {
				m := c.expect("message")
				if m.Room != "general" || m.ID != 1 || m.From != "alice" || m.Text != "hi" {
					t.Fatalf("message = %+v", m)
				}
				if _, err := time.Parse(time.RFC3339, m.TS); err != nil || !strings.HasSuffix(m.TS, "Z") {
					t.Fatalf("ts %q is not RFC 3339 UTC: %v", m.TS, err)
				}
			}
			if a := alice.expect("ack"); a.Ref != "c1" || a.Room != "general" || a.ID != 1 {
				t.Fatalf("ack = %+v", a)
			}
			alice2.ping() // the ack went to the sending connection only
			bob.ping()
		})
		for _, tt := range []struct {
			name, room, text, code string
		}{
			{"ErrEmptyText", "general", "", CodeBadRequest},
			{"ErrTextTooLarge", "general", "12345678901", CodeTooLarge},
			{"ErrNUL", "general", "a\x00b", CodeBadRequest},
			{"ErrNotJoined", "other", "hi", CodeForbidden},
		} {
			t.Run(tt.name, func(t *testing.T) {
				bob.send(map[string]any{"type": "send", "room": tt.room, "text": tt.text, "ref": tt.name})
				bob.expectError(tt.code, tt.name)
			})
		}
		t.Run("TextAtLimit", func(t *testing.T) {
			bob.send(map[string]any{"type": "send", "room": "general", "text": "1234567890", "ref": "max"})
			bob.skipUntil("ack")
		})
		t.Run("ErrStore", func(t *testing.T) {
			h.store.setFail(errStoreDown)
			defer h.store.setFail(nil)
			bob.send(map[string]any{"type": "send", "room": "general", "text": "lost", "ref": "s"})
			bob.expectError(CodeUnavailable, "s")
		})
	})
}

// Ensure sends beyond the burst are refused with rate_limited and the
// connection stays usable.
func TestSendRateLimit(t *testing.T) {
	h := newHarness(t, Config{SendRate: 0.001, SendBurst: 3})
	c, _ := h.join("alice", "general")
	for i := range 4 {
		c.send(map[string]any{"type": "send", "room": "general", "text": "x", "ref": fmt.Sprint(i)})
	}
	var acks, limited int
	for acks+limited < 4 {
		switch f := c.next(); f.Type {
		case "ack":
			acks++
		case "error":
			if f.Code != CodeRateLimited || f.Ref != "3" {
				t.Fatalf("error = %+v", f)
			}
			limited++
		}
	}
	if acks != 3 || limited != 1 {
		t.Fatalf("acks=%d limited=%d, want 3 and 1", acks, limited)
	}
	c.ping()
}

// Ensure that with many connections sending at once, while commits return
// out of order, every member receives every id exactly once, ascending and
// without gaps, and that each sender's own messages keep their order.
func TestSendOrdering(t *testing.T) {
	eachWriter(t, Config{SendRate: 1e6, SendBurst: 1e6}, func(t *testing.T, cfg Config) {
		const senders, each, watchers = 6, 25, 3
		h := newHarness(t, cfg)
		h.store.jitter = 2 * time.Millisecond
		var all []*wsClient
		for i := range senders + watchers {
			c, _ := h.join(fmt.Sprintf("user%d", i), "general")
			all = append(all, c)
		}
		const total = senders * each

		got := make([][]srvFrame, len(all))
		var wg sync.WaitGroup
		for i, c := range all {
			wg.Go(func() {
				if i < senders {
					for j := range each {
						c.send(map[string]any{"type": "send", "room": "general", "text": fmt.Sprintf("%d/%d", i, j)})
					}
				}
				for len(got[i]) < total {
					f, err := c.tryNext(waitTimeout)
					if err != nil {
						t.Errorf("client %d after %d messages: %v", i, len(got[i]), err)
						return
					}
					if f.Type == "message" {
						got[i] = append(got[i], f)
					}
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		for i, frames := range got {
			next := map[string]int{} // per sender: the next j expected
			for k, f := range frames {
				if f.ID != uint64(k+1) {
					t.Fatalf("client %d: message %d has id %d", i, k, f.ID)
				}
				var s, j int
				fmt.Sscanf(f.Text, "%d/%d", &s, &j)
				if key := fmt.Sprint(s); j != next[key] {
					t.Fatalf("client %d: sender %d message %d arrived when %d was due", i, s, j, next[key])
				} else {
					next[key]++
				}
			}
			if i > 0 && !slices.EqualFunc(frames, got[0], func(a, b srvFrame) bool { return a.Text == b.Text }) {
				t.Fatalf("client %d saw a different order than client 0", i)
			}
		}
	})
}

// Ensure the reorder buffer never waits for an id that cannot come: after a
// failed append the next message is delivered.
func TestSendAfterStoreError(t *testing.T) {
	h := newHarness(t, Config{})
	c, _ := h.join("alice", "general")
	h.store.setFail(errStoreDown)
	c.send(map[string]any{"type": "send", "room": "general", "text": "a", "ref": "1"})
	c.expectError(CodeUnavailable, "1")
	h.store.setFail(nil)
	c.send(map[string]any{"type": "send", "room": "general", "text": "b", "ref": "2"})
	if m := c.expect("message"); m.ID != 1 || m.Text != "b" {
		t.Fatalf("message = %+v", m)
	}
	c.expect("ack")
}
