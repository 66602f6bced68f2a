package chat

import (
	"bytes"
	"io"
	"net"
	"runtime"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	if s == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

// readN reads exactly n bytes from c, within waitTimeout.
func readN(t *testing.T, c net.Conn, n int) []byte {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(waitTimeout))
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	return b
}

func TestRawWriter(t *testing.T) {
	big := bytes.Repeat([]byte{'b'}, maxWrite+10)
	third := bytes.Repeat([]byte{'t'}, maxWrite/3)
	cases := []struct {
		name   string
		bufs   [][]byte
		wantN  int      // bytes one write takes: the frames that fit
		wanted [][]byte // what the reader gets (nil: all of bufs)
	}{
		{"one frame", [][]byte{[]byte("hello")}, 5, nil},
		{"frames joined in order", [][]byte{[]byte("ab"), []byte("cde"), []byte("f")}, 6, nil},
		{"a first frame above the bound still goes whole", [][]byte{big, []byte("next")}, len(big), [][]byte{big}},
		{"frames beyond the bound wait", [][]byte{third, third, third, third}, 3 * len(third), [][]byte{third, third, third}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			client, server := tcpPair(t)
			rc, err := server.SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			want := bytes.Join(tc.bufs, nil)
			if tc.wanted != nil {
				want = bytes.Join(tc.wanted, nil)
			}
			done := make(chan []byte, 1)
			go func() { done <- readN(t, client, len(want)) }()
			var w rawWriter
			n, err := w.write(rc, tc.bufs)
			if err != nil {
				t.Fatal(err)
			}
			if len(w.buf) != tc.wantN {
				t.Fatalf("one write took %d bytes of the batch, want %d", len(w.buf), tc.wantN)
			}
			// The socket may take less than that at once; the pool would
			// hand the rest to the slow path. Write the rest here.
			deadline := time.Now().Add(waitTimeout)
			for written := n; written < len(want); written += n {
				if time.Now().After(deadline) {
					t.Fatalf("socket still full after %v", waitTimeout)
				}
				runtime.Gosched() // the reader drains the socket
				if n, err = w.write(rc, skipBytes(tc.bufs, written)); err != nil {
					t.Fatal(err)
				}
			}
			if got := <-done; !bytes.Equal(got, want) {
				t.Fatalf("received %d bytes, not the frames in order", len(got))
			}
		})
	}
}

// skipBytes drops the first n bytes of bufs.
func skipBytes(bufs [][]byte, n int) [][]byte {
	for len(bufs) > 0 && n >= len(bufs[0]) {
		n -= len(bufs[0])
		bufs = bufs[1:]
	}
	if len(bufs) > 0 && n > 0 {
		bufs = append([][]byte{bufs[0][n:]}, bufs[1:]...)
	}
	return bufs
}

// A full socket is not an error: the write is short and nothing blocks.
func TestRawWriterFullSocket(t *testing.T) {
	_, server := tcpPair(t)
	_ = server.SetWriteBuffer(4096)
	rc, err := server.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var w rawWriter
	chunk := bytes.Repeat([]byte{'x'}, 64<<10)
	total := 0
	for range 1000 { // far more than loopback buffers hold
		n, err := w.write(rc, [][]byte{chunk})
		if err != nil {
			t.Fatal(err)
		}
		if n < len(chunk) {
			return // short: the socket is full, and write returned at once
		}
		total += n
	}
	t.Fatalf("wrote %d bytes to a socket nobody reads without a short write", total)
}
