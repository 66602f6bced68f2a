package chat

import (
	"slices"
	"testing"
	"time"
)

// Ensure join validates the room, replies with members and the last OnJoin
// messages, and replays from since.
func TestJoin(t *testing.T) {
	h := newHarness(t, Config{OnJoin: 3, MaxReplay: 4})
	h.store.fill("general", 10)

	t.Run("OK", func(t *testing.T) {
		c := h.dial("alice", time.Time{})
		c.send(map[string]any{"type": "join", "room": "general", "ref": "j1"})
		f := c.expect("joined")
		if f.Ref != "j1" || f.Room != "general" || !slices.Equal(f.Members, []string{"alice"}) {
			t.Fatalf("joined = %+v", f)
		}
		if ids := wireIDs(f.Messages); !slices.Equal(ids, []uint64{8, 9, 10}) || f.More {
			t.Fatalf("replay ids = %v more=%v, want [8 9 10]", ids, f.More)
		}
		if m := f.Messages[0]; m.Room != "general" || m.From != "seed" || m.Text != "old" || m.TS == "" {
			t.Fatalf("message = %+v", m)
		}
	})
	t.Run("Since", func(t *testing.T) {
		c := h.dial("bob", time.Time{})
		c.send(map[string]any{"type": "join", "room": "general", "since": 7})
		if f := c.expect("joined"); !slices.Equal(wireIDs(f.Messages), []uint64{8, 9, 10}) || f.More {
			t.Fatalf("since 7: %+v", f)
		}
		c.send(map[string]any{"type": "join", "room": "general", "since": 10}) // already joined: a fresh replay
		if f := c.expect("joined"); len(f.Messages) != 0 || f.Messages == nil {
			t.Fatalf("since 10: %+v", f)
		}
	})
	t.Run("SinceCapped", func(t *testing.T) {
		c := h.dial("carol", time.Time{})
		c.send(map[string]any{"type": "join", "room": "general", "since": 0})
		if f := c.expect("joined"); !slices.Equal(wireIDs(f.Messages), []uint64{7, 8, 9, 10}) || !f.More {
			t.Fatalf("since 0: ids %v more=%v, want the newest 4 and more", wireIDs(f.Messages), f.More)
		}
	})
	t.Run("ErrBadRoom", func(t *testing.T) {
		c := h.dial("dave", time.Time{})
		for _, name := range []string{"", "General", "a b", "ü", string(make([]byte, 65)), ".", ".."} {
			c.send(map[string]any{"type": "join", "room": name, "ref": "r"})
			c.expectError(CodeBadRequest, "r")
		}
		for _, name := range []string{"a.b_c-9", "...", ".a"} {
			c.send(map[string]any{"type": "join", "room": name})
			c.expect("joined")
		}
	})
	t.Run("ErrTooManyRooms", func(t *testing.T) {
		h := newHarness(t, Config{MaxRooms: 1})
		c, _ := h.join("alice", "one")
		c.send(map[string]any{"type": "join", "room": "two", "ref": "x"})
		c.expectError(CodeForbidden, "x")
	})
}

// Ensure presence counts users, not connections: join and leave are
// announced once per user, for the first and the last connection.
func TestPresence(t *testing.T) {
	h := newHarness(t, Config{})
	alice, _ := h.join("alice", "general")
	bob1, f := h.join("bob", "general")
	if !slices.Equal(f.Members, []string{"alice", "bob"}) {
		t.Fatalf("members = %v", f.Members)
	}
	if p := alice.expect("presence"); p.User != "bob" || p.Event != "join" || p.Room != "general" {
		t.Fatalf("presence = %+v", p)
	}
	bob2, f := h.join("bob", "general")
	if !slices.Equal(f.Members, []string{"alice", "bob"}) {
		t.Fatalf("members with two bob connections = %v", f.Members)
	}
	if got := h.hub.Rooms(); !slices.Equal(got, []RoomStats{{Name: "general", Members: 2, Conns: 3}}) {
		t.Fatalf("Rooms() = %+v", got)
	}

	// bob's first connection leaves: bob is still there, nothing announced.
	bob1.send(map[string]any{"type": "leave", "room": "general", "ref": "l"})
	if a := bob1.expect("ack"); a.Ref != "l" || a.Room != "general" || a.ID != 0 {
		t.Fatalf("leave ack = %+v", a)
	}
	bob1.send(map[string]any{"type": "leave", "room": "general", "ref": "l2"})
	bob1.expectError(CodeNotFound, "l2")
	// bob's last connection goes away: now alice hears it.
	bob2.conn.Close()
	if p := alice.expect("presence"); p.User != "bob" || p.Event != "leave" {
		t.Fatalf("presence = %+v", p)
	}
	alice.ping() // nothing else was queued for alice
	alice.send(map[string]any{"type": "leave", "room": "general"})
	alice.expect("ack")
	eventually(t, "empty room to be dropped", func() bool { return len(h.hub.Rooms()) == 0 })
}

// Ensure history pages backwards in ascending order and needs membership.
func TestHistory(t *testing.T) {
	h := newHarness(t, Config{HistoryLimit: 5})
	h.store.fill("general", 20)
	c := h.dial("alice", time.Time{})
	c.send(map[string]any{"type": "history", "room": "general", "ref": "h0"})
	c.expectError(CodeForbidden, "h0")
	c.send(map[string]any{"type": "join", "room": "general"})
	c.expect("joined")

	for _, tt := range []struct {
		name   string
		before uint64
		limit  int
		want   []uint64
	}{
		{"Newest", 0, 3, []uint64{18, 19, 20}},
		{"Before", 10, 2, []uint64{8, 9}},
		{"LimitClamped", 0, 500, []uint64{16, 17, 18, 19, 20}},
		{"DefaultLimit", 4, 0, []uint64{1, 2, 3}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c.send(map[string]any{"type": "history", "room": "general", "before": tt.before, "limit": tt.limit, "ref": tt.name})
			f := c.expect("history")
			if f.Ref != tt.name || f.Room != "general" || !slices.Equal(wireIDs(f.Messages), tt.want) {
				t.Fatalf("history = %+v, want ids %v", f, tt.want)
			}
		})
	}
	t.Run("ErrNegativeLimit", func(t *testing.T) {
		c.send(map[string]any{"type": "history", "room": "general", "limit": -1, "ref": "n"})
		c.expectError(CodeBadRequest, "n")
	})
}

// Ensure CloseRoom removes every member with a not_found error and that the
// name can be joined afresh.
func TestCloseRoom(t *testing.T) {
	h := newHarness(t, Config{})
	a, _ := h.join("alice", "doomed")
	b, _ := h.join("bob", "doomed")
	a.expect("presence")
	h.hub.CloseRoom("doomed")
	for _, c := range []*wsClient{a, b} {
		if f := c.expectError(CodeNotFound, ""); f.Room != "doomed" {
			t.Fatalf("error = %+v", f)
		}
		c.send(map[string]any{"type": "send", "room": "doomed", "text": "x", "ref": "s"})
		c.expectError(CodeForbidden, "s")
	}
	if got := h.hub.Rooms(); len(got) != 0 {
		t.Fatalf("Rooms() = %+v", got)
	}
	a.send(map[string]any{"type": "join", "room": "doomed"})
	if f := a.expect("joined"); !slices.Equal(f.Members, []string{"alice"}) {
		t.Fatalf("rejoin members = %v", f.Members)
	}
}

func wireIDs(ms []wireMessage) []uint64 {
	ids := make([]uint64, len(ms))
	for i, m := range ms {
		ids[i] = m.ID
	}
	return ids
}

// Ensure joined and history carry the room's epoch, and that a join with
// since from another epoch (the room was deleted and created again since)
// is told to reset and replays the new room from the start, where the same
// since with the current epoch replays only what is newer.
func TestJoinEpoch(t *testing.T) {
	h := newHarness(t, Config{})
	epochOf := func(f srvFrame) string {
		t.Helper()
		if f.Epoch == nil {
			t.Fatalf("%s frame without epoch: %+v", f.Type, f)
		}
		return *f.Epoch
	}

	// A room without history has the empty epoch until its first message.
	a, f := h.join("alice", "general")
	if e := epochOf(f); e != "" {
		t.Fatalf("epoch of an empty room = %q", e)
	}
	for range 5 {
		a.send(map[string]any{"type": "send", "room": "general", "text": "hi", "ref": "s"})
		a.skipUntil("ack")
	}
	_, f = h.join("bob", "general")
	old := epochOf(f)
	if old == "" || len(f.Messages) != 5 {
		t.Fatalf("joined after the first message: epoch %q, %d messages", old, len(f.Messages))
	}

	t.Run("SameEpoch", func(t *testing.T) {
		c := h.dial("carol", time.Time{})
		c.send(map[string]any{"type": "join", "room": "general", "since": 3, "epoch": old})
		f := c.expect("joined")
		if f.Reset || epochOf(f) != old || !slices.Equal(wireIDs(f.Messages), []uint64{4, 5}) {
			t.Fatalf("joined = %+v", f)
		}
		c.send(map[string]any{"type": "history", "room": "general", "before": 3})
		if f := c.expect("history"); epochOf(f) != old || !slices.Equal(wireIDs(f.Messages), []uint64{1, 2}) {
			t.Fatalf("history = %+v", f)
		}
	})

	// Delete the room (store first, then the hub, as the admin API does)
	// and start it again: ids restart at 1.
	h.store.drop("general")
	h.hub.CloseRoom("general")
	if f := a.skipUntil("error"); f.Code != CodeNotFound {
		t.Fatalf("after delete: %+v", f)
	}
	h.store.fill("general", 2)

	t.Run("OtherEpoch", func(t *testing.T) {
		c := h.dial("dave", time.Time{})
		c.send(map[string]any{"type": "join", "room": "general", "since": 3, "epoch": old})
		f := c.expect("joined")
		if !f.Reset || epochOf(f) == old || epochOf(f) == "" || !slices.Equal(wireIDs(f.Messages), []uint64{1, 2}) {
			t.Fatalf("joined = %+v, want reset and ids 1, 2 under a new epoch", f)
		}
		c.send(map[string]any{"type": "history", "room": "general"})
		if h := c.expect("history"); epochOf(h) != epochOf(f) {
			t.Fatalf("history epoch %q, joined %q", epochOf(h), epochOf(f))
		}
	})
	t.Run("NoEpoch", func(t *testing.T) {
		// A client that sends no epoch gets what it asked for, as before.
		c := h.dial("erin", time.Time{})
		c.send(map[string]any{"type": "join", "room": "general", "since": 1})
		if f := c.expect("joined"); f.Reset || !slices.Equal(wireIDs(f.Messages), []uint64{2}) {
			t.Fatalf("joined = %+v", f)
		}
	})
}
