package cluster

import (
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

// Ensure no input makes the decoder panic or return ids of 0.
func FuzzDecodeMessages(f *testing.F) {
	f.Add(appendMessages(nil, "n", "e", []Message{{ID: 1, From: "a", Text: "b"}}))
	f.Add([]byte{1, 0, 0, 255, 255, 255, 255, 255, 255, 255, 255, 255, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _, msgs, err := decodeMessages(data)
		for _, m := range msgs {
			if err == nil && m.ID == 0 {
				t.Fatal("id 0")
			}
		}
	})
}
