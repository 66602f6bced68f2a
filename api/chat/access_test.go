package chat

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/chatctl/chatctl/access"
)

// dialAs dials user, an admin when admin is true.
func (h *harness) dialAs(user string, admin bool) *wsClient {
	h.t.Helper()
	q := "user=" + user
	if admin {
		q += "&admin=1"
	}
	conn, _, err := websocket.DefaultDialer.Dial("ws"+h.srv.URL[len("http"):]+"/ws?"+q, nil)
	if err != nil {
		h.t.Fatalf("dial %s: %v", user, err)
	}
	h.t.Cleanup(func() { conn.Close() })
	return &wsClient{t: h.t, conn: conn}
}

// quiet checks that nothing but the pong of a ping arrives: proof that
// no frame was queued before it.
func (c *wsClient) quiet() {
	c.t.Helper()
	c.send(map[string]any{"type": "ping", "ref": "q"})
	if f := c.next(); f.Type != "pong" {
		c.t.Fatalf("got %+v, want nothing before the pong", f)
	}
}

// Ensure a join without read access and a send without write access get
// forbidden, the connection stays, and rules never apply to admins.
func TestAccessRulesJoinSend(t *testing.T) {
	h := newHarness(t, Config{})
	h.hub.SetAccess(access.New(access.ReadWrite, []access.Rule{
		{User: "*", Pattern: "ops-*", Perm: access.Deny},
		{User: "bob", Pattern: "news", Perm: access.ReadOnly},
	}, nil))

	bob := h.dial("bob", time.Time{})
	bob.send(map[string]any{"type": "join", "room": "ops-x", "ref": "j"})
	bob.expectError(CodeForbidden, "j")
	bob.send(map[string]any{"type": "join", "room": "news"})
	bob.expect("joined")
	bob.send(map[string]any{"type": "send", "room": "news", "text": "hi", "ref": "s"})
	bob.expectError(CodeForbidden, "s")
	bob.send(map[string]any{"type": "typing", "room": "news", "ref": "t"})
	bob.expectError(CodeForbidden, "t")
	bob.ping() // still connected

	root := h.dialAs("root", true)
	root.send(map[string]any{"type": "join", "room": "ops-x"})
	root.expect("joined")
	root.send(map[string]any{"type": "send", "room": "ops-x", "text": "hi", "ref": "s"})
	root.expect("message")
	if f := root.expect("ack"); f.ID != 1 {
		t.Fatalf("admin's send: %+v", f)
	}

	// rooms.default_access deny: only rules open rooms.
	h.hub.SetAccess(access.New(access.Deny, []access.Rule{{User: "carol", Pattern: "open", Perm: access.ReadWrite}}, nil))
	carol := h.dial("carol", time.Time{})
	carol.send(map[string]any{"type": "join", "room": "general", "ref": "g"})
	carol.expectError(CodeForbidden, "g")
	carol.send(map[string]any{"type": "join", "room": "open"})
	carol.expect("joined")
}

// Ensure taking read access away from live members sends each of their
// connections a left frame with reason forbidden, tells the others the
// user left, and delivers nothing more of the room to them.
func TestAccessWithdrawnFromLiveMember(t *testing.T) {
	h := newHarness(t, Config{})
	alice, _ := h.join("alice", "ops")
	bob1, _ := h.join("bob", "ops")
	alice.expect("presence")
	bob2 := h.dial("bob", time.Time{})
	bob2.send(map[string]any{"type": "join", "room": "ops"})
	bob2.expect("joined")

	var loads atomic.Int32
	if err := h.hub.SetAccessLoader(func() (*access.Table, error) {
		loads.Add(1)
		return access.New(access.ReadWrite, []access.Rule{{User: "bob", Pattern: "ops", Perm: access.Deny}}, nil), nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, b := range []*wsClient{bob1, bob2} {
		if f := b.expect("left"); f.Room != "ops" || f.Reason != "forbidden" {
			t.Fatalf("left frame %+v", f)
		}
	}
	if f := alice.expect("presence"); f.User != "bob" || f.Event != "leave" {
		t.Fatalf("presence %+v", f)
	}
	alice.send(map[string]any{"type": "send", "room": "ops", "text": "secret", "ref": "s"})
	alice.expect("message")
	alice.expect("ack")
	bob1.quiet()
	bob2.send(map[string]any{"type": "send", "room": "ops", "text": "x", "ref": "s"})
	bob2.expectError(CodeForbidden, "s")
	bob2.send(map[string]any{"type": "join", "room": "ops", "ref": "j"})
	bob2.expectError(CodeForbidden, "j")

	// RecheckAccess reloads with the loader.
	if err := h.hub.RecheckAccess(); err != nil || loads.Load() != 2 {
		t.Fatalf("RecheckAccess: %v, %d loads", err, loads.Load())
	}
}

// Ensure only members join a private room, admins included, and that
// removing a member closes the room for it.
func TestPrivateRoom(t *testing.T) {
	h := newHarness(t, Config{})
	h.hub.SetAccess(access.New(access.ReadWrite, nil, map[string][]string{"board": {"alice"}}))
	alice, _ := h.join("alice", "board")
	for _, c := range []*wsClient{h.dial("bob", time.Time{}), h.dialAs("root", true)} {
		c.send(map[string]any{"type": "join", "room": "board", "ref": "j"})
		c.expectError(CodeForbidden, "j")
		c.send(map[string]any{"type": "rooms", "ref": "r"})
		for _, e := range c.expect("rooms").Rooms {
			if e.Room == "board" {
				t.Fatalf("an outsider's directory lists the private room: %+v", e)
			}
		}
	}
	// The admin adds itself: it may read now.
	h.hub.SetAccess(access.New(access.ReadWrite, nil, map[string][]string{"board": {"alice", "root"}}))
	root := h.dialAs("root", true)
	root.send(map[string]any{"type": "join", "room": "board"})
	root.expect("joined")
	alice.expect("presence")
	// Kick alice.
	h.hub.SetAccess(access.New(access.ReadWrite, nil, map[string][]string{"board": {"root"}}))
	if f := alice.expect("left"); f.Room != "board" || f.Reason != "forbidden" {
		t.Fatalf("left %+v", f)
	}
	alice.send(map[string]any{"type": "rooms", "ref": "r"})
	if f := alice.expect("rooms"); len(f.Rooms) != 0 {
		t.Fatalf("kicked member still lists %+v", f.Rooms)
	}
	if f := root.expect("presence"); f.User != "alice" || f.Event != "leave" {
		t.Fatalf("presence %+v", f)
	}
	root.send(map[string]any{"type": "rooms", "ref": "r"})
	if f := root.expect("rooms"); len(f.Rooms) != 1 || !f.Rooms[0].Private || f.Rooms[0].Online != 1 {
		t.Fatalf("member's directory %+v", f.Rooms)
	}
}

// Ensure a DM is reached from either side by the other's name, carries
// its canonical name, and is closed to everyone else, admins included.
func TestDirectMessages(t *testing.T) {
	h := newHarness(t, Config{})
	h.store.users = map[string]bool{"alice": true, "bob": true, "carol": true}
	alice, jf := h.join("alice", "@bob")
	if jf.Room != "@alice+bob" {
		t.Fatalf("joined %q, want @alice+bob", jf.Room)
	}
	bob, jf := h.join("bob", "@alice")
	if jf.Room != "@alice+bob" {
		t.Fatalf("bob joined %q", jf.Room)
	}
	alice.expect("presence")
	alice.send(map[string]any{"type": "send", "room": "@bob", "text": "hi bob", "ref": "s"})
	if f := bob.expect("message"); f.Room != "@alice+bob" || f.From != "alice" {
		t.Fatalf("bob got %+v", f)
	}
	alice.expect("message")
	if f := alice.expect("ack"); f.Room != "@alice+bob" {
		t.Fatalf("ack %+v", f)
	}
	bob.send(map[string]any{"type": "history", "room": "@bob+alice", "ref": "h"})
	if f := bob.expect("history"); f.Room != "@alice+bob" || len(f.Messages) != 1 {
		t.Fatalf("history %+v", f)
	}
	for _, c := range []*wsClient{h.dial("carol", time.Time{}), h.dialAs("root", true)} {
		c.send(map[string]any{"type": "join", "room": "@alice+bob", "ref": "j"})
		c.expectError(CodeForbidden, "j")
	}
	alice.send(map[string]any{"type": "join", "room": "@alice", "ref": "self"})
	alice.expectError(CodeBadRequest, "self")
	alice.send(map[string]any{"type": "join", "room": "@nobody", "ref": "n"})
	alice.expectError(CodeNotFound, "n")
	// Listed for both, private.
	bob.send(map[string]any{"type": "rooms"})
	if f := bob.expect("rooms"); len(f.Rooms) != 1 || f.Rooms[0].Room != "@alice+bob" || !f.Rooms[0].Private || f.Rooms[0].Online != 2 {
		t.Fatalf("bob's directory %+v", f.Rooms)
	}
}

// Ensure a failed reload keeps the table in force and reports the error.
func TestRecheckAccessLoaderError(t *testing.T) {
	h := newHarness(t, Config{})
	deny := access.New(access.ReadWrite, []access.Rule{{User: "bob", Pattern: "ops", Perm: access.Deny}}, nil)
	fail := false
	if err := h.hub.SetAccessLoader(func() (*access.Table, error) {
		if fail {
			return nil, errStoreDown
		}
		return deny, nil
	}); err != nil {
		t.Fatal(err)
	}
	fail = true
	if err := h.hub.RecheckAccess(); err != errStoreDown {
		t.Fatalf("RecheckAccess = %v, want the loader's error", err)
	}
	bob := h.dial("bob", time.Time{})
	bob.send(map[string]any{"type": "join", "room": "ops", "ref": "j"})
	bob.expectError(CodeForbidden, "j")
}
