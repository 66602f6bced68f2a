package cluster

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// Ensure the message payload round-trips (UTF-8, empty text, big ids,
// timestamps to the nanosecond) and that every truncation, and trailing
// bytes, are errors, never a panic.
func TestCodec(t *testing.T) {
	in := []Message{
		{ID: 1, From: "alice", Text: "hi", TS: time.Date(2026, 11, 30, 14, 0, 0, 123456789, time.UTC)},
		{ID: 1 << 40, From: "bob", Text: "", TS: time.Unix(0, 0).UTC()},
		{ID: 3, From: "été", Text: strings.Repeat("x", 4096) + "\x00\"\\", TS: time.Date(1999, 1, 1, 0, 0, 0, 1, time.UTC)},
	}
	data := appendMessages([]byte("prefix"), "node-1", "ep", in)
	if string(data[:6]) != "prefix" {
		t.Fatal("appendMessages lost what buf held")
	}
	data = data[6:]
	node, epoch, out, err := decodeMessages(data)
	if err != nil || node != "node-1" || epoch != "ep" || !reflect.DeepEqual(out, in) {
		t.Fatalf("round trip: %q %q %+v %v", node, epoch, out, err)
	}
	for n := 0; n < len(data); n++ {
		if _, _, _, err := decodeMessages(data[:n]); err == nil {
			t.Fatalf("truncated to %d bytes: no error", n)
		}
	}
	if _, _, _, err := decodeMessages(append(data, 0)); err == nil {
		t.Error("trailing byte accepted")
	}
	zero := appendMessages(nil, "n", "", []Message{{ID: 0, From: "a", Text: "b"}})
	if _, _, _, err := decodeMessages(zero); err == nil {
		t.Error("id 0 accepted")
	}
}

// Ensure a typing payload round-trips, keeps what buf held, and that every
// truncation, trailing bytes, an empty or oversized user are errors; and
// that decodeRoom tells the kinds apart, decodes the original message
// format (kind 1, byte for byte as nodes before typing sent it) as before,
// and reports an unknown kind as errKind.
func TestCodecTyping(t *testing.T) {
	data := appendTyping([]byte("x"), "node-1", "été")
	if data[0] != 'x' {
		t.Fatal("appendTyping lost what buf held")
	}
	data = data[1:]
	node, user, err := decodeTyping(data)
	if err != nil || node != "node-1" || user != "été" {
		t.Fatalf("round trip: %q %q %v", node, user, err)
	}
	p, err := decodeRoom(data)
	if err != nil || p.kind != kindTyping || p.node != "node-1" || p.user != "été" || p.msgs != nil {
		t.Fatalf("decodeRoom(typing) = %+v, %v", p, err)
	}
	for n := 0; n < len(data); n++ {
		if _, err := decodeRoom(data[:n]); err == nil {
			t.Fatalf("truncated to %d bytes: no error", n)
		}
	}
	if _, err := decodeRoom(append(data, 0)); err == nil {
		t.Error("trailing byte accepted")
	}
	for _, bad := range []string{"", strings.Repeat("u", MaxUserName+1)} {
		if _, err := decodeRoom(appendTyping(nil, "n", bad)); err == nil {
			t.Errorf("user of %d bytes accepted", len(bad))
		}
	}
	// A kind-1 payload as the first release wrote it: kind, node "n",
	// epoch "e", one message (id 7, from "a", text "hi", ts 0).
	old := []byte{1, 1, 'n', 1, 'e', 1, 7, 1, 'a', 2, 'h', 'i', 0}
	p, err = decodeRoom(old)
	want := []Message{{ID: 7, From: "a", Text: "hi", TS: time.Unix(0, 0).UTC()}}
	if err != nil || p.kind != kindMessages || p.node != "n" || p.epoch != "e" || !reflect.DeepEqual(p.msgs, want) {
		t.Fatalf("decodeRoom(kind 1) = %+v, %v", p, err)
	}
	if got := appendMessages(nil, "n", "e", want); !reflect.DeepEqual(got, old) {
		t.Fatalf("the message format changed: %v, was %v", got, old)
	}
	if _, err := decodeRoom([]byte{9, 0, 0}); !errors.Is(err, errKind) {
		t.Errorf("unknown kind: %v, want errKind", err)
	}
}

// Ensure no room payload, of any kind, makes the decoder panic, returns
// ids of 0 or an empty typist, or decodes as something other than its
// kind byte says.
func FuzzDecodeMessages(f *testing.F) {
	f.Add(appendMessages(nil, "n", "e", []Message{{ID: 1, From: "a", Text: "b"}}))
	f.Add([]byte{1, 0, 0, 255, 255, 255, 255, 255, 255, 255, 255, 255, 1})
	f.Add(appendTyping(nil, "n", "alice"))
	f.Add([]byte{2, 1, 'n', 0})
	f.Add([]byte{2, 255, 255, 255, 255, 255, 255, 255, 255, 255, 1})
	f.Add([]byte{3})
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := decodeRoom(data)
		if err != nil {
			return
		}
		if p.kind != data[0] {
			t.Fatalf("kind %d decoded from a payload of kind %d", p.kind, data[0])
		}
		switch p.kind {
		case kindMessages:
			for _, m := range p.msgs {
				if m.ID == 0 {
					t.Fatal("id 0")
				}
			}
		case kindTyping:
			if p.user == "" || len(p.user) > MaxUserName {
				t.Fatalf("typist %q", p.user)
			}
		default:
			t.Fatalf("unknown kind %d decoded", p.kind)
		}
	})
}
