package api

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/chatctl/chatctl/admin"
)

// wsNext reads frames from conn until one satisfies match.
func wsNext(t *testing.T, conn *websocket.Conn, match func(map[string]any) bool) map[string]any {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		var f map[string]any
		if err := conn.ReadJSON(&f); err != nil {
			t.Fatalf("reading frames: %v", err)
		}
		if match(f) {
			return f
		}
	}
}

func ofType(typ string) func(map[string]any) bool {
	return func(f map[string]any) bool { return f["type"] == typ }
}

// dialJoin connects as name and joins room, returning the joined frame.
func (e *env) dialJoin(t *testing.T, name, room string) (*websocket.Conn, map[string]any) {
	t.Helper()
	conn, r, err := e.dialWS(e.issue(name), false, nil)
	if err != nil {
		t.Fatalf("dial as %s: %v (%d %s)", name, err, r.status, r.body)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.WriteJSON(map[string]any{"type": "join", "room": room}); err != nil {
		t.Fatal(err)
	}
	return conn, wsNext(t, conn, func(f map[string]any) bool { return f["type"] == "joined" || f["type"] == "error" })
}

// Ensure GET /rooms lists the bearer's directory as the rooms frame does:
// public rooms it may read, its private rooms and DMs, unread counts.
func TestRoomsDirectoryHTTP(t *testing.T) {
	e := newEnv(t, nil)
	for _, u := range []string{"alice", "bob", "carol"} {
		e.addUser(u, "")
	}
	ctx := context.Background()
	for _, m := range []struct{ room, from string }{{"general", "bob"}, {"general", "alice"}, {"general", "bob"}, {"ops-db", "bob"}, {"@alice+bob", "bob"}, {"@bob+carol", "bob"}} {
		if _, err := e.db.AppendMessage(ctx, m.room, m.from, "x", e.clock.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.svc.SetAccess(ctx, admin.AccessRule{User: "*", Pattern: "ops-*", Permission: "deny"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.CreateRoom(ctx, admin.CreateRoomRequest{Name: "board", Private: true, Members: []string{"alice"}}); err != nil {
		t.Fatal(err)
	}
	var list []map[string]any
	e.call(http.MethodGet, "/rooms", e.issue("alice"), nil).into(t, &list)
	var names []string
	for _, r := range list {
		names = append(names, r["room"].(string))
	}
	if want := []string{"@alice+bob", "board", "general"}; len(names) != 3 || names[0] != want[0] || names[1] != want[1] || names[2] != want[2] {
		t.Fatalf("alice's rooms %v, want %v", names, want)
	}
	if g := list[2]; g["unread"] != float64(2) || g["last_id"] != float64(3) || g["private"] != false || g["last_ts"] == nil {
		t.Errorf("general %v: want unread 2 (own message not counted), last_id 3", g)
	}
	if b := list[1]; b["private"] != true || b["last_ts"] != nil || b["unread"] != float64(0) {
		t.Errorf("board %v", b)
	}
	if r := e.call(http.MethodGet, "/rooms", "", nil); r.status != http.StatusUnauthorized {
		t.Errorf("GET /rooms without a token: %d", r.status)
	}
}

// Ensure changes through /admin reach live connections at once: a kick
// from a private room and a deny rule each send left (forbidden), and a
// DM is joined by the other's name with its canonical name.
func TestAccessChangesReachHub(t *testing.T) {
	e := newEnv(t, nil)
	e.addUser("root", "admin")
	e.addUser("alice", "")
	e.addUser("bob", "")
	root := e.issue("root")
	if r := e.call(http.MethodPost, "/admin/rooms", root, map[string]any{"name": "board", "private": true, "members": []string{"alice", "bob"}}); r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	alice, jf := e.dialJoin(t, "alice", "board")
	if jf["type"] != "joined" {
		t.Fatalf("member's join: %v", jf)
	}
	if _, jf := e.dialJoin(t, "root", "board"); jf["type"] != "error" || jf["code"] != "forbidden" {
		t.Fatalf("admin's join of a private room it is not in: %v", jf)
	}
	if r := e.call(http.MethodDelete, "/admin/rooms/board/members/alice", root, nil); r.status != http.StatusOK {
		t.Fatalf("kick: %d %s", r.status, r.body)
	}
	if f := wsNext(t, alice, ofType("left")); f["room"] != "board" || f["reason"] != "forbidden" {
		t.Fatalf("left %v", f)
	}

	bob, _ := e.dialJoin(t, "bob", "general")
	if r := e.call(http.MethodPut, "/admin/access", root, map[string]any{"user": "bob", "pattern": "gen*", "permission": "deny"}); r.status != http.StatusOK {
		t.Fatalf("access: %d %s", r.status, r.body)
	}
	if f := wsNext(t, bob, ofType("left")); f["room"] != "general" {
		t.Fatalf("left %v", f)
	}

	if _, jf := e.dialJoin(t, "bob", "@alice"); jf["room"] != "@alice+bob" {
		t.Fatalf("DM join: %v", jf)
	}
	if _, jf := e.dialJoin(t, "bob", "@nobody"); jf["code"] != "not_found" {
		t.Fatalf("DM with an unknown user: %v", jf)
	}
}

// Ensure a reload applies rooms.default_access to live members, and
// auth.users and auth.access.
func TestReloadRoomsAccess(t *testing.T) {
	e := newEnv(t, nil)
	e.addUser("alice", "")
	alice, _ := e.dialJoin(t, "alice", "general")
	next := *e.cfg
	next.Rooms.DefaultAccess = "deny"
	next.Auth.Users = []string{"dave:$2a$10$HwhPlplaIAZBG9Nhx/z/eOS1Ywhm9yGqwxKVZJw0fkAmfx7UVqgoq:user"}
	next.Auth.Access = []string{"dave:*:read-only"}
	if res := e.srv.Reload(&next); res.Err != nil {
		t.Fatalf("reload: %v", res.Err)
	}
	if f := wsNext(t, alice, ofType("left")); f["room"] != "general" || f["reason"] != "forbidden" {
		t.Fatalf("left %v", f)
	}
	if _, err := e.db.User("dave"); err != nil {
		t.Fatalf("declared user: %v", err)
	}
	if rules, _ := e.db.AccessRules(); len(rules) != 1 || rules[0].User != "dave" {
		t.Fatalf("declared rules %v", rules)
	}
}

// Ensure a demoted admin is held to the rules at once.
func TestDemotedAdminLosesAccess(t *testing.T) {
	e := newEnv(t, nil)
	e.addUser("root", "admin")
	e.addUser("boss", "admin")
	if _, err := e.svc.SetAccess(context.Background(), admin.AccessRule{User: "*", Pattern: "ops", Permission: "deny"}); err != nil {
		t.Fatal(err)
	}
	conn, jf := e.dialJoin(t, "boss", "ops")
	if jf["type"] != "joined" {
		t.Fatalf("an admin's join: %v", jf)
	}
	if r := e.call(http.MethodPut, "/admin/users/boss/role", e.issue("root"), map[string]any{"role": "user"}); r.status != http.StatusOK {
		t.Fatalf("role: %d %s", r.status, r.body)
	}
	if f := wsNext(t, conn, ofType("left")); f["room"] != "ops" {
		t.Fatalf("left %v", f)
	}
}
