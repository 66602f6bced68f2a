package api

import (
	"testing"
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
