package chat

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/chatctl/chatctl/access"
)

// Ensure read markers: joined carries read and unread (others' messages
// only), a read is acked with the marker, the user's other connections
// see it move, it never moves back, and ids past the end are clamped.
func TestReadState(t *testing.T) {
	h := newHarness(t, Config{})
	h.store.fill("general", 5)
	_, _ = h.store.AppendMessage(context.Background(), "general", "alice", "mine", time.Now())

	a1, jf := h.join("alice", "general")
	if jf.Read == nil || *jf.Read != 0 || jf.Unread != 5 {
		t.Fatalf("joined read=%v unread=%d, want 0 and 5 (own message not counted)", jf.Read, jf.Unread)
	}
	a2 := h.dial("alice", time.Time{}) // another tab: not joined, still told
	a2.ping()

	a1.send(map[string]any{"type": "read", "room": "general", "id": 3, "ref": "r1"})
	if f := a1.expect("ack"); f.Ref != "r1" || f.Room != "general" || f.ID != 3 {
		t.Fatalf("ack %+v", f)
	}
	if f := a2.expect("read"); f.Room != "general" || f.ID != 3 {
		t.Fatalf("other tab got %+v", f)
	}
	a1.send(map[string]any{"type": "read", "room": "general", "id": 2, "ref": "r2"})
	if f := a1.expect("ack"); f.ID != 3 {
		t.Fatalf("a lower id moved the marker: %+v", f)
	}
	a2.quiet()
	a1.send(map[string]any{"type": "read", "room": "general", "id": 100, "ref": "r3"})
	if f := a1.expect("ack"); f.ID != 6 {
		t.Fatalf("id past the end: ack %+v, want clamped to 6", f)
	}
	a2.expect("read")
	a1.send(map[string]any{"type": "read", "room": "general", "ref": "r4"})
	a1.expectError(CodeBadRequest, "r4")

	// Joining reads nothing by itself; the marker is per user.
	_, jf = h.join("alice", "general")
	if *jf.Read != 6 || jf.Unread != 0 {
		t.Fatalf("rejoin read=%d unread=%d", *jf.Read, jf.Unread)
	}
	_, jf = h.join("bob", "general")
	if *jf.Read != 0 || jf.Unread != 6 {
		t.Fatalf("bob read=%d unread=%d", *jf.Read, jf.Unread)
	}

	// A read needs read access.
	h.hub.SetAccess(access.New(access.ReadWrite, []access.Rule{{User: "carol", Pattern: "general", Perm: access.Deny}}, nil))
	carol := h.dial("carol", time.Time{})
	carol.send(map[string]any{"type": "read", "room": "general", "id": 1, "ref": "c"})
	carol.expectError(CodeForbidden, "c")
}

// Ensure typing is relayed to the room's other users only, at most once a
// second per user and room, and needs membership.
func TestTyping(t *testing.T) {
	h := newHarness(t, Config{})
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h.hub.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }

	a1, _ := h.join("alice", "general")
	a2, _ := h.join("alice", "general")
	bob, _ := h.join("bob", "general")
	a1.expect("presence")
	a2.expect("presence")

	a1.send(map[string]any{"type": "typing", "room": "general"})
	if f := bob.expect("typing"); f.Room != "general" || f.User != "alice" {
		t.Fatalf("bob got %+v", f)
	}
	a1.send(map[string]any{"type": "typing", "room": "general"}) // within the second: dropped
	a2.send(map[string]any{"type": "typing", "room": "general"}) // same user: dropped too
	a1.quiet()
	a2.quiet()
	bob.quiet()
	advance(time.Second)
	a2.send(map[string]any{"type": "typing", "room": "general"})
	bob.expect("typing")
	a1.quiet() // never echoed to the sender's connections

	carol := h.dial("carol", time.Time{})
	carol.send(map[string]any{"type": "typing", "room": "general", "ref": "t"})
	carol.expectError(CodeForbidden, "t")
}

// Ensure the directory lists the rooms the user may see with online
// users, last id and time, and unread counts; denied rooms are left out.
func TestRoomsDirectory(t *testing.T) {
	h := newHarness(t, Config{})
	ts := time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)
	for i := 0; i < 3; i++ {
		_, _ = h.store.AppendMessage(context.Background(), "general", "bob", "x", ts)
	}
	h.store.fill("ops-1", 2)
	h.hub.SetAccess(access.New(access.ReadWrite, []access.Rule{{User: "*", Pattern: "ops-*", Perm: access.Deny}}, nil))
	h.join("bob", "general")
	h.join("bob", "general") // two tabs: one user online
	alice, _ := h.join("alice", "lobby")
	alice.send(map[string]any{"type": "read", "room": "general", "id": 1})
	alice.expect("ack")
	alice.send(map[string]any{"type": "rooms", "ref": "d"})
	f := alice.expect("rooms")
	if f.Ref != "d" || len(f.Rooms) != 2 {
		t.Fatalf("directory %+v", f)
	}
	g, l := f.Rooms[0], f.Rooms[1]
	if g.Room != "general" || g.Private || g.Online != 1 || g.LastID != 3 || g.LastTS == nil || *g.LastTS != "2026-02-03T04:05:06.000Z" || g.Unread != 2 {
		t.Fatalf("general %+v", g)
	}
	if l.Room != "lobby" || l.Online != 1 || l.LastID != 0 || l.LastTS != nil || l.Unread != 0 {
		t.Fatalf("lobby %+v", l)
	}
	// Admins see every public room.
	list, err := h.hub.Directory("root", true)
	if err != nil || len(list) != 3 {
		t.Fatalf("admin directory %+v, %v", list, err)
	}
}
