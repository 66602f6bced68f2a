package chat

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// offlineClient is a client with no socket: handle only queues frames, so
// it can be driven directly, fast enough for fuzzing.
func offlineClient(h *Hub, user string) *client {
	c := newClient(h, nil, Identity{User: user})
	c.writing = true // no writer goroutine: the test takes the queue itself
	h.mu.Lock()
	h.users[user] = append(h.users[user], c)
	h.mu.Unlock()
	return c
}

// takeReplies removes and returns the frames queued for c alone.
func takeReplies(c *client) (replies [][]byte, broadcasts int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range c.out {
		if f.pm != nil {
			broadcasts++
		} else {
			replies = append(replies, f.data)
		}
	}
	c.out, c.queued = nil, 0
	return replies, broadcasts
}

// FuzzInbound feeds arbitrary frames to the frame handler. Nothing may
// panic, every frame gets at least one reply, and every reply is a JSON
// object with a known type.
func FuzzInbound(f *testing.F) {
	for _, seed := range []string{
		`{"type":"join","room":"general"}`,
		`{"type":"join","room":"general","since":0,"ref":"r"}`,
		`{"type":"join","room":"general","since":18446744073709551615}`,
		`{"type":"send","room":"general","text":"hi","ref":"c1"}`,
		`{"type":"send","room":"general","text":""}`,
		`{"type":"history","room":"general","before":3,"limit":2}`,
		`{"type":"history","room":"general","limit":-5}`,
		`{"type":"leave","room":"general"}`,
		`{"type":"auth","token":"good"}`,
		`{"type":"auth","token":"other"}`,
		`{"type":"ping","ref":123}`,
		`{"type":"join","room":"GENERAL"}`,
		`{"type":"nope"}`,
		`[]`, `null`, `"x"`, `{`, ``, "\xff",
	} {
		f.Add([]byte(seed))
	}
	auth := &fakeAuth{tokens: map[string]Identity{
		"good":  {User: "fuzz", Expires: time.Now().Add(time.Hour)},
		"other": {User: "someone"},
	}}
	known := []string{"joined", "history", "ack", "error", "pong", "presence", "message"}
	f.Fuzz(func(t *testing.T, data []byte) {
		store := newMemStore()
		store.fill("general", 5)
		h := NewHub(store, auth, Config{MaxRooms: 4, HistoryLimit: 10}, nil)
		c := offlineClient(h, "fuzz")
		defer h.unregister(c)
		// Join first so that room-scoped frames reach their handlers.
		c.handle([]byte(`{"type":"join","room":"general"}`))
		takeReplies(c)

		c.handle(data)
		replies, _ := takeReplies(c)
		if len(replies) == 0 && c.closeCode == 0 {
			t.Fatalf("no reply to %q", data)
		}
		for _, r := range replies {
			var v struct {
				Type string `json:"type"`
			}
			if err := json.Unmarshal(r, &v); err != nil || !slices.Contains(known, v.Type) {
				t.Fatalf("reply %q to %q: %v", r, data, err)
			}
		}
	})
}

// Ensure the reorder buffer broadcasts commits that return out of order in
// id order, and moves past a hole once nothing is in flight.
func TestRoomCommitOrder(t *testing.T) {
	h := NewHub(newMemStore(), nil, Config{}, nil)
	c := offlineClient(h, "a")
	r := &room{name: "r", loaded: true, members: map[*client]struct{}{c: {}}, users: map[string]int{"a": 1}}
	pms := map[uint64]*websocket.PreparedMessage{}
	for id := uint64(1); id <= 6; id++ {
		pms[id] = prepare(ackFrame{Type: "ack", ID: id})
	}
	got := func() []*websocket.PreparedMessage {
		c.mu.Lock()
		defer c.mu.Unlock()
		var out []*websocket.PreparedMessage
		for _, f := range c.out {
			out = append(out, f.pm)
		}
		c.out, c.queued = nil, 0
		return out
	}

	r.inflight = 3
	for _, id := range []uint64{3, 2} {
		r.inflight--
		r.commit(id, pms[id], h)
		if out := got(); len(out) != 0 {
			t.Fatalf("id %d delivered before id 1", id)
		}
	}
	r.inflight--
	r.commit(1, pms[1], h)
	if out := got(); !slices.Equal(out, []*websocket.PreparedMessage{pms[1], pms[2], pms[3]}) {
		t.Fatalf("delivered %d frames out of order", len(out))
	}

	// Id 4 never commits (a broken store); 6 and 5 do.
	r.inflight = 2
	r.inflight--
	r.commit(6, pms[6], h)
	r.flushIfIdle()
	r.inflight--
	r.commit(5, pms[5], h)
	if out := got(); len(out) != 0 {
		t.Fatal("delivered across a hole while an append was in flight")
	}
	r.flushIfIdle()
	if out := got(); !slices.Equal(out, []*websocket.PreparedMessage{pms[5], pms[6]}) || r.last != 6 {
		t.Fatalf("after flush: %d frames, last=%d", len(out), r.last)
	}
}
