package bench

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// streamConn is a net.Conn whose reads come from a fixed byte stream, in
// chunks of at most chunk bytes, and whose writes are kept.
type streamConn struct {
	net.Conn
	in    []byte
	chunk int
	out   bytes.Buffer
}

func (c *streamConn) Read(p []byte) (int, error) {
	if len(c.in) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.chunk)], c.in)
	c.in = c.in[n:]
	return n, nil
}
func (c *streamConn) Write(p []byte) (int, error)      { return c.out.Write(p) }
func (c *streamConn) SetWriteDeadline(time.Time) error { return nil }
func (c *streamConn) SetReadDeadline(time.Time) error  { return nil }
func (c *streamConn) Close() error                     { return nil }

// serverFrame builds an unmasked frame as a server sends it.
func serverFrame(fin bool, op byte, payload []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	b := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		b = append(b, byte(n))
	case n <= 0xffff:
		b = append(b, 126, byte(n>>8), byte(n))
	default:
		b = append(b, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, payload...)
}

// clientFrames decodes the masked frames the bench wrote.
func clientFrames(t *testing.T, b []byte) (ops []byte, payloads [][]byte) {
	t.Helper()
	for len(b) > 0 {
		if b[1]&0x80 == 0 {
			t.Fatal("client frame not masked")
		}
		hdr, n := 2, int(b[1]&0x7f)
		switch n {
		case 126:
			hdr, n = 4, int(binary.BigEndian.Uint16(b[2:]))
		case 127:
			hdr, n = 10, int(binary.BigEndian.Uint64(b[2:]))
		}
		key := b[hdr : hdr+4]
		p := append([]byte(nil), b[hdr+4:hdr+4+n]...)
		for i := range p {
			p[i] ^= key[i&3]
		}
		ops = append(ops, b[0]&0x0f)
		payloads = append(payloads, p)
		b = b[hdr+4+n:]
	}
	return ops, payloads
}

func TestWSConnRead(t *testing.T) {
	long := strings.Repeat("x", 70000) // 8-byte length
	mid := strings.Repeat("m", 300)    // 2-byte length
	type msg struct {
		op   byte
		text string
	}
	cases := []struct {
		name    string
		stream  [][]byte
		want    []msg
		wantErr string // substring; "" means io.EOF after the messages
		close   int    // expected close code, if the stream ends with one
	}{
		{"small frames", [][]byte{serverFrame(true, opText, []byte("a")), serverFrame(true, opText, []byte("bc"))},
			[]msg{{opText, "a"}, {opText, "bc"}}, "", 0},
		{"extended lengths", [][]byte{serverFrame(true, opText, []byte(mid)), serverFrame(true, opBinary, []byte(long))},
			[]msg{{opText, mid}, {opBinary, long}}, "", 0},
		{"fragments with a ping between", [][]byte{serverFrame(false, opText, []byte("he")), serverFrame(true, opPing, []byte("p")),
			serverFrame(false, opContinuation, []byte("ll")), serverFrame(true, opContinuation, []byte("o"))},
			[]msg{{opText, "hello"}}, "", 0},
		{"close frame", [][]byte{serverFrame(true, opText, []byte("x")), serverFrame(true, opClose, []byte{0x0f, 0xa8, 'b', 'y', 'e'})},
			[]msg{{opText, "x"}}, "4008", 4008},
		{"masked server frame", [][]byte{{0x81, 0x81, 1, 2, 3, 4, 'x'}}, nil, "protocol error", 0},
		{"reserved bits", [][]byte{{0xc1, 0x01, 'x'}}, nil, "protocol error", 0},
		{"continuation of nothing", [][]byte{serverFrame(true, opContinuation, []byte("x"))}, nil, "protocol error", 0},
		{"frame too large", [][]byte{{0x82, 127, 0, 0, 0, 0, 0x10, 0, 0, 0}}, nil, "larger than", 0},
		{"truncated frame", [][]byte{serverFrame(true, opText, []byte("hello"))[:4]}, nil, "EOF", 0},
	}
	for _, tc := range cases {
		for _, chunk := range []int{1, 7, 1 << 20} { // frames split across reads, or all at once
			sc := &streamConn{in: bytes.Join(tc.stream, nil), chunk: chunk}
			c := &wsConn{nc: sc, buf: make([]byte, 64)} // small: the buffer must grow
			var got []msg
			var err error
			for {
				var op byte
				var p []byte
				if op, p, err = c.next(); err != nil {
					break
				}
				got = append(got, msg{op, string(p)})
			}
			if len(got) != len(tc.want) {
				t.Fatalf("%s (chunk %d): got %d messages, want %d", tc.name, chunk, len(got), len(tc.want))
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("%s (chunk %d): message %d = %d %.20q…, want %d %.20q…", tc.name, chunk, i, got[i].op, got[i].text, tc.want[i].op, tc.want[i].text)
				}
			}
			switch {
			case tc.wantErr == "" && !errors.Is(err, io.EOF):
				t.Fatalf("%s (chunk %d): err %v, want EOF", tc.name, chunk, err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("%s (chunk %d): err %v, want %q", tc.name, chunk, err, tc.wantErr)
			}
			if tc.close != 0 && closeCause(err) != "close_4008" {
				t.Fatalf("%s: closeCause = %q", tc.name, closeCause(err))
			}
			ops, payloads := clientFrames(t, sc.out.Bytes())
			switch {
			case strings.Contains(tc.name, "ping"):
				if len(ops) != 1 || ops[0] != opPong || string(payloads[0]) != "p" {
					t.Fatalf("%s: wrote %v %q, want one pong echoing the ping", tc.name, ops, payloads)
				}
			case tc.close != 0:
				if len(ops) != 1 || ops[0] != opClose || !bytes.Equal(payloads[0], []byte{0x0f, 0xa8}) {
					t.Fatalf("%s: wrote %v %q, want the close code echoed", tc.name, ops, payloads)
				}
			}
		}
	}
}

// Ensure what the bench writes is what a server reads: masked text frames
// and a 1000 close, through gorilla's server side.
func TestWSConnAgainstGorilla(t *testing.T) {
	srv := newEchoServer(t)
	c, cause := dialConn(t.Context(), srv, nil, time.Second)
	if c == nil {
		t.Fatalf("dial: %s", cause)
	}
	for _, text := range []string{"hello", strings.Repeat("y", 300), strings.Repeat("z", 70000)} {
		if err := c.WriteText([]byte(text)); err != nil {
			t.Fatal(err)
		}
		op, p, err := c.next()
		if err != nil || op != opText || string(p) != text {
			t.Fatalf("echo of %d bytes: op %d, %d bytes, %v", len(text), op, len(p), err)
		}
	}
	c.Close("done")
}

// newEchoServer starts a gorilla WebSocket server that echoes messages,
// and returns its ws:// URL.
func newEchoServer(t *testing.T) string {
	t.Helper()
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		for {
			typ, p, err := ws.ReadMessage()
			if err != nil {
				return
			}
			if ws.WriteMessage(typ, p) != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"
}

// FuzzWSConn feeds arbitrary server bytes to the bench's frame reader: it
// must return messages or an error, never panic or loop.
func FuzzWSConn(f *testing.F) {
	f.Add(serverFrame(true, opText, []byte(`{"type":"message","id":1}`)), 3)
	f.Add(append(serverFrame(false, opText, []byte("a")), serverFrame(true, opContinuation, []byte("b"))...), 1)
	f.Add(serverFrame(true, opClose, []byte{3, 232}), 64)
	f.Add([]byte{0x81, 126, 0xff}, 2)
	f.Fuzz(func(t *testing.T, stream []byte, chunk int) {
		chunk = max(1, chunk%4096)
		c := &wsConn{nc: &streamConn{in: stream, chunk: chunk}, buf: make([]byte, 16)}
		for range len(stream) + 1 { // each message consumes at least one byte
			op, p, err := c.next()
			if err != nil {
				return
			}
			if op != opText && op != opBinary {
				t.Fatalf("data message with opcode %d", op)
			}
			if len(p) > len(stream) {
				t.Fatalf("payload of %d bytes from a %d-byte stream", len(p), len(stream))
			}
		}
		t.Fatal("more messages than bytes")
	})
}
