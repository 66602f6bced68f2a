package api

import (
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Ensure room delete works through the admin socket (the CLI's path while
// the server runs) for every name a store may hold, "." and ".." (which
// older versions let anyone create) included.
func TestRoomDeleteAnyName(t *testing.T) {
	e := newEnv(t, nil)
	r, _ := e.serveSocket(t)
	names := []string{".", "..", "...", "a.b", "-x_", "semi;colon", "sl/ash", "per%cent"}
	for _, name := range names {
		if _, err := e.db.AppendMessage(bg, name, "alice", "hi", e.clock.Now()); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range names {
		if err := r.DeleteRoom(bg, name); err != nil {
			t.Errorf("delete %q: %v", name, err)
		}
	}
	rooms, err := e.db.Rooms()
	if err != nil {
		t.Fatal(err)
	}
	if len(rooms) != 0 {
		t.Fatalf("rooms left: %+v", rooms)
	}
}

// Ensure a client resuming with since after the room was deleted and
// created again (ids restarted at 1) is told to reset and gets the new
// room from the start, instead of silently missing ids up to since.
func TestRoomEpochAfterDelete(t *testing.T) {
	e := newEnv(t, nil)
	e.addUser("root", "admin")
	e.addUser("alice", "")
	tok, admin := e.issue("alice"), e.issue("root")
	type frame struct {
		Type     string `json:"type"`
		Epoch    string `json:"epoch"`
		Reset    bool   `json:"reset"`
		Code     string `json:"code"`
		Messages []struct {
			ID uint64 `json:"id"`
		} `json:"messages"`
	}
	dial := func() *websocket.Conn {
		conn, _, err := e.dialWS(tok, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		return conn
	}
	// next reads frames until one of type typ.
	next := func(conn *websocket.Conn, typ string) frame {
		t.Helper()
		for {
			var f frame
			if err := conn.ReadJSON(&f); err != nil {
				t.Fatalf("waiting for %s: %v", typ, err)
			}
			if f.Type == typ {
				return f
			}
		}
	}
	send := func(conn *websocket.Conn, v map[string]any) {
		t.Helper()
		if err := conn.WriteJSON(v); err != nil {
			t.Fatal(err)
		}
	}
	c := dial()
	send(c, map[string]any{"type": "join", "room": "general"})
	next(c, "joined")
	for range 3 {
		send(c, map[string]any{"type": "send", "room": "general", "text": "before"})
		next(c, "ack")
	}
	send(c, map[string]any{"type": "join", "room": "general", "since": 0})
	old := next(c, "joined").Epoch
	if old == "" {
		t.Fatal("no epoch after three messages")
	}
	if r := e.call(http.MethodDelete, "/admin/rooms/general", admin, nil); r.status != http.StatusOK {
		t.Fatalf("delete = %d %s", r.status, r.body)
	}
	if f := next(c, "error"); f.Code != "not_found" {
		t.Fatalf("after delete: %+v", f)
	}
	send(c, map[string]any{"type": "join", "room": "general"})
	next(c, "joined")
	for range 2 {
		send(c, map[string]any{"type": "send", "room": "general", "text": "after"})
		next(c, "ack")
	}

	r := dial()
	send(r, map[string]any{"type": "join", "room": "general", "since": 3, "epoch": old})
	f := next(r, "joined")
	if !f.Reset || f.Epoch == old || len(f.Messages) != 2 || f.Messages[0].ID != 1 || f.Messages[1].ID != 2 {
		t.Fatalf("resume = %+v, want reset with ids 1 and 2 under a new epoch", f)
	}
}
