package cluster

import (
	"errors"
	"strings"
	"testing"
)

// safeToken reports whether tok can be one NATS subject token: non-empty,
// and only [a-z2-7] (so no '.', '*', '>', whitespace or control bytes).
func safeToken(tok string) bool {
	if tok == "" {
		return false
	}
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

// Ensure every legal room name (and names with '.', '@', '+', '*', '>',
// spaces, UTF-8) maps to one safe token and back, and distinct names to
// distinct tokens.
func TestRoomToken(t *testing.T) {
	tests := []struct {
		room, token string
	}{
		{"general", "m5sw4zlsmfwa"},
		{"a", "me"},
		{".", "fy"},
		{"..", "fyxa"},
		{"a.b", "mexge"},
		{"a.b.c", "mexgeltd"},
		{"dm:alice+bob", ""},
		{"alice@example.com", ""},
		{"*", ""},
		{">", ""},
		{"a b", ""},
		{"été", ""},
		{"x_y-z.0", ""},
		{strings.Repeat("z", 64), ""},
		{strings.Repeat("z", MaxRoomName), ""},
	}
	seen := map[string]string{}
	for _, tc := range tests {
		tok, err := RoomToken(tc.room)
		if err != nil {
			t.Fatalf("RoomToken(%q): %v", tc.room, err)
		}
		if tc.token != "" && tok != tc.token {
			t.Errorf("RoomToken(%q) = %q, want %q", tc.room, tok, tc.token)
		}
		if !safeToken(tok) {
			t.Errorf("RoomToken(%q) = %q is not a safe subject token", tc.room, tok)
		}
		if other, dup := seen[tok]; dup {
			t.Errorf("rooms %q and %q share token %q", other, tc.room, tok)
		}
		seen[tok] = tc.room
		back, err := RoomFromToken(tok)
		if err != nil || back != tc.room {
			t.Errorf("RoomFromToken(%q) = %q, %v; want %q", tok, back, err, tc.room)
		}
		s := newSubjects("chatctl")
		subj, err := s.room(tc.room)
		if err != nil || strings.Count(subj, ".") != 2 {
			t.Errorf("subject of %q = %q (%v): want exactly three tokens", tc.room, subj, err)
		}
		if r, err := s.roomOf(subj); err != nil || r != tc.room {
			t.Errorf("roomOf(%q) = %q, %v", subj, r, err)
		}
	}
	for _, bad := range []string{"", strings.Repeat("z", MaxRoomName+1)} {
		if _, err := RoomToken(bad); !errors.Is(err, ErrRoomName) {
			t.Errorf("RoomToken(%d bytes) = %v, want ErrRoomName", len(bad), err)
		}
	}
	for _, bad := range []string{"", "M5SW4", "m5sw4zlsmfwa=", "1", "a.b"} {
		if _, err := RoomFromToken(bad); !errors.Is(err, ErrRoomName) {
			t.Errorf("RoomFromToken(%q) = %v, want ErrRoomName", bad, err)
		}
	}
	s := newSubjects("chatctl")
	for _, bad := range []string{"chatctl.room.", "other.room.me", "chatctl.roster", "chatctl.room.ME"} {
		if r, err := s.roomOf(bad); err == nil {
			t.Errorf("roomOf(%q) = %q, want an error", bad, r)
		}
	}
}

// Ensure cluster names and node ids are checked.
func TestValidName(t *testing.T) {
	for name, want := range map[string]bool{
		"chatctl": true, "prod-eu_1": true, "A9": true,
		"": false, "a.b": false, "a*": false, "a>": false, "a b": false, "é": false,
		strings.Repeat("n", 64): true, strings.Repeat("n", 65): false,
	} {
		if ValidName(name) != want || ValidNodeID(name) != want {
			t.Errorf("ValidName(%q) = %v, want %v", name, ValidName(name), want)
		}
	}
	if id := NewNodeID(); !ValidNodeID(id) || id == NewNodeID() {
		t.Errorf("NewNodeID = %q: invalid or not random", id)
	}
}

// Ensure any string at all maps to a safe token that decodes back to it.
func FuzzRoomToken(f *testing.F) {
	for _, s := range []string{"general", "a.b", "dm:alice+bob", "x@y", "*", ">", "\x00", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, room string) {
		tok, err := RoomToken(room)
		if room == "" || len(room) > MaxRoomName {
			if err == nil {
				t.Fatalf("RoomToken accepted %d bytes", len(room))
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if !safeToken(tok) {
			t.Fatalf("unsafe token %q for %q", tok, room)
		}
		back, err := RoomFromToken(tok)
		if err != nil || back != room {
			t.Fatalf("round trip %q -> %q -> %q, %v", room, tok, back, err)
		}
	})
}
