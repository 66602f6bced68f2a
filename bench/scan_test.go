package bench

import (
	"fmt"
	"testing"
)

// Ensure scanFrame picks the right fields whatever their order and nesting.
func TestScanFrame(t *testing.T) {
	tests := []struct {
		name string
		in   string
		ok   bool
		want frame
	}{
		{"Message", `{"type":"message","room":"r1","id":43,"from":"alice","text":"hi","ts":"2024-01-01T00:00:00Z"}`,
			true, frame{typ: b("message"), room: b("r1"), text: b("hi"), id: 43, hasID: true}},
		{"Reordered", ` { "id" : 7 , "text":"a\"b", "type" : "message" }`,
			true, frame{typ: b("message"), text: b(`a\"b`), id: 7, hasID: true}},
		{"NestedSkipped", `{"type":"joined","room":"g","members":["a","b"],"messages":[{"id":1,"text":"}"}]}`,
			true, frame{typ: b("joined"), room: b("g")}},
		{"Error", `{"type":"error","code":"rate_limited","detail":"slow down","ref":"3-9"}`,
			true, frame{typ: b("error"), code: b("rate_limited"), ref: b("3-9")}},
		{"Ack", `{"type":"ack","ref":"c1","room":"g","id":2,"ok":true,"x":null}`,
			true, frame{typ: b("ack"), ref: b("c1"), room: b("g"), id: 2, hasID: true}},
		{"Empty", `{}`, true, frame{}},
		{"NotObject", `["type"]`, false, frame{}},
		{"Truncated", `{"type":"mess`, false, frame{}},
		{"NoColon", `{"type" "x"}`, false, frame{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f frame
			ok := scanFrame([]byte(tt.in), &f)
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if !ok {
				return
			}
			if string(f.typ) != string(tt.want.typ) || string(f.room) != string(tt.want.room) ||
				string(f.text) != string(tt.want.text) || string(f.ref) != string(tt.want.ref) ||
				string(f.code) != string(tt.want.code) || f.id != tt.want.id || f.hasID != tt.want.hasID {
				t.Fatalf("got %s, want %s", dumpFrame(f), dumpFrame(tt.want))
			}
		})
	}
}

// Ensure a payload survives the round trip and foreign texts are rejected.
func TestPayload(t *testing.T) {
	p := payload{round: 3, pub: 12, seq: 99999, sent: 1700000000123456789}
	buf := appendPayload(nil, p, 100)
	if len(buf) != 100 {
		t.Fatalf("padded length %d, want 100", len(buf))
	}
	got, ok := parsePayload(buf)
	if !ok || got != p {
		t.Fatalf("parsePayload = %+v %v, want %+v", got, ok, p)
	}
	for _, s := range []string{"", "hello", "bench|1|2|3", "bench|1|x|3|4|"} {
		if _, ok := parsePayload([]byte(s)); ok {
			t.Errorf("parsePayload(%q) accepted", s)
		}
	}
}

// Ensure the hot-path scan does not allocate.
func TestScanFrameAllocs(t *testing.T) {
	in := []byte(`{"type":"message","room":"bench-1","id":43,"from":"alice","text":"bench|0|1|2|3|","ts":"x"}`)
	var f frame
	allocs := testing.AllocsPerRun(100, func() {
		scanFrame(in, &f)
		parsePayload(f.text)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per frame", allocs)
	}
}

func b(s string) []byte { return []byte(s) }

// BenchmarkScanFrame measures the per-frame cost of the receive path.
func BenchmarkScanFrame(bm *testing.B) {
	in := []byte(`{"type":"message","room":"bench-1","id":43,"from":"alice","text":"bench|0|1|2|1700000000123456789|","ts":"2024-01-01T00:00:00Z"}`)
	var f frame
	for bm.Loop() {
		scanFrame(in, &f)
		parsePayload(f.text)
	}
}

// dumpFrame prints a frame for failure messages.
func dumpFrame(f frame) string {
	return fmt.Sprintf("{typ:%q room:%q text:%q ref:%q code:%q id:%d/%v}", f.typ, f.room, f.text, f.ref, f.code, f.id, f.hasID)
}

// Ensure the message fast path reads chatctl's layout, agrees with
// scanFrame, and declines everything else.
func TestScanMessage(t *testing.T) {
	tests := []struct {
		name string
		in   string
		ok   bool
		id   int64
		text string
	}{
		{"Message", `{"type":"message","room":"r1","id":43,"from":"alice","text":"hi","ts":"2024-01-01T00:00:00Z"}`, true, 43, "hi"},
		{"Escapes", `{"type":"message","room":"a\"b","id":1,"from":"c\\","text":"q\"\\\"","ts":"x"}`, true, 1, `q\"\\\"`},
		{"EmptyText", `{"type":"message","room":"r","id":9,"from":"u","text":"","ts":"x"}`, true, 9, ""},
		{"Reordered", `{"type":"message","id":43,"room":"r1","from":"alice","text":"hi","ts":"x"}`, false, 0, ""},
		{"NoTS", `{"type":"message","room":"r1","id":43,"from":"alice","text":"hi"}`, false, 0, ""},
		{"Unclosed", `{"type":"message","room":"r1","id":43,"from":"alice","text":"hi","ts":"x"`, false, 0, ""},
		{"Trailing", `{"type":"message","room":"r1","id":43,"from":"alice","text":"hi","ts":"x"} `, false, 0, ""},
		{"Spaces", `{"type": "message","room":"r1","id":43,"from":"alice","text":"hi"}`, false, 0, ""},
		{"NotMessage", `{"type":"ack","room":"r1","id":43}`, false, 0, ""},
		{"NoID", `{"type":"message","room":"r1","id":,"from":"a","text":"hi"}`, false, 0, ""},
		{"Truncated", `{"type":"message","room":"r1","id":43,"from":"alice","text":"h`, false, 0, ""},
		{"UnterminatedRoom", `{"type":"message","room":"r1`, false, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, text, ok := scanMessage([]byte(tt.in))
			if ok != tt.ok || (ok && (id != tt.id || string(text) != tt.text)) {
				t.Fatalf("scanMessage = %d %q %v, want %d %q %v", id, text, ok, tt.id, tt.text, tt.ok)
			}
			var f frame
			if ok && (!scanFrame([]byte(tt.in), &f) || string(f.typ) != "message" || f.id != id || string(f.text) != string(text)) {
				t.Fatalf("scanFrame disagrees: %s", dumpFrame(f))
			}
		})
	}
}

// FuzzScanMessage holds the fast path to scanFrame: whatever it accepts,
// scanFrame reads as the same message.
func FuzzScanMessage(f *testing.F) {
	f.Add(`{"type":"message","room":"r1","id":43,"from":"alice","text":"hi","ts":"x"}`)
	f.Add(`{"type":"message","room":"a\"b","id":1,"from":"c\\","text":"q\"","ts":"x"}`)
	f.Fuzz(func(t *testing.T, in string) {
		id, text, ok := scanMessage([]byte(in))
		if !ok {
			return
		}
		var fr frame
		if !scanFrame([]byte(in), &fr) || string(fr.typ) != "message" || !fr.hasID || fr.id != id || string(fr.text) != string(text) {
			t.Fatalf("scanMessage(%q) = %d %q, scanFrame = %s", in, id, text, dumpFrame(fr))
		}
	})
}

// BenchmarkScanMessage measures the fast path of the receive loop.
func BenchmarkScanMessage(bm *testing.B) {
	in := []byte(`{"type":"message","room":"bench-1","id":43,"from":"alice","text":"bench|0|1|2|1700000000123456789|","ts":"2024-01-01T00:00:00Z"}`)
	for bm.Loop() {
		_, text, _ := scanMessage(in)
		parsePayload(text)
	}
}
