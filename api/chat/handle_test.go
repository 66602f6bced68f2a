package chat

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"
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

// takeFrames removes and returns the payloads of the frames queued for c,
// checking that each is a well-formed unmasked final text frame.
func takeFrames(t testing.TB, c *client) [][]byte {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	var out [][]byte
	for _, f := range c.out {
		p, err := payloadOf(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	c.out, c.queued = nil, 0
	return out
}

// payloadOf parses a frame built by textFrame.
func payloadOf(f frame) ([]byte, error) {
	if len(f) < 2 || f[0] != 0x81 || f[1]&0x80 != 0 {
		return nil, fmt.Errorf("bad frame header % x", f[:min(len(f), 2)])
	}
	n, rest := uint64(f[1]), f[2:]
	switch n {
	case 126:
		n, rest = uint64(binary.BigEndian.Uint16(rest)), rest[2:]
	case 127:
		n, rest = binary.BigEndian.Uint64(rest), rest[8:]
	}
	if uint64(len(rest)) != n {
		return nil, fmt.Errorf("frame length %d, payload %d", n, len(rest))
	}
	return rest, nil
}

// Ensure textFrame picks the right length encoding at each boundary.
func TestTextFrame(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 127, 0xffff, 0x10000, 70000} {
		p := bytes.Repeat([]byte("x"), n)
		got, err := payloadOf(textFrame(p))
		if err != nil || !bytes.Equal(got, p) {
			t.Fatalf("n=%d: %v", n, err)
		}
	}
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
		takeFrames(t, c)

		c.handle(data)
		replies := takeFrames(t, c)
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
	frames := map[uint64]frame{}
	for id := uint64(1); id <= 6; id++ {
		frames[id] = encodeFrame(ackFrame{Type: "ack", ID: id})
	}
	got := func() []uint64 {
		var ids []uint64
		for _, p := range takeFrames(t, c) {
			var a ackFrame
			if err := json.Unmarshal(p, &a); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, a.ID)
		}
		return ids
	}

	r.inflight = 3
	for _, id := range []uint64{3, 2} {
		r.inflight--
		r.commit(id, frames[id], h)
		if out := got(); len(out) != 0 {
			t.Fatalf("id %d delivered before id 1", id)
		}
	}
	r.inflight--
	r.commit(1, frames[1], h)
	if out := got(); !slices.Equal(out, []uint64{1, 2, 3}) {
		t.Fatalf("delivered %v", out)
	}

	// Id 4 never commits (a broken store); 6 and 5 do.
	r.inflight = 2
	r.inflight--
	r.commit(6, frames[6], h)
	r.flushIfIdle()
	r.inflight--
	r.commit(5, frames[5], h)
	if out := got(); len(out) != 0 {
		t.Fatal("delivered across a hole while an append was in flight")
	}
	r.flushIfIdle()
	if out := got(); !slices.Equal(out, []uint64{5, 6}) || r.last != 6 {
		t.Fatalf("after flush: %v, last=%d", out, r.last)
	}
}
