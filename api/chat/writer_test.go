package chat

import (
	"bytes"
	"errors"
	"net"
	"testing"
)

// countingConn is a net.Conn that records each Write. Like the server's
// connection limiter's wrapper, it hides the socket's writev.
type countingConn struct {
	net.Conn
	writes [][]byte
	fail   int // the Write with this index (from 1) fails; 0: none
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes = append(c.writes, bytes.Clone(p))
	if len(c.writes) == c.fail {
		return 0, errors.New("broken pipe")
	}
	return len(p), nil
}

// Ensure the per-connection writer sends a batch of frames with one Write
// per pumpChunk bytes, frames whole and in order, and a frame of pumpChunk
// or more on its own: a Write per frame was a syscall per frame per member
// (net.Buffers cannot reach writev through a wrapped conn).
func TestWriteFrames(t *testing.T) {
	small := func(n int, b byte) []frame {
		var fs []frame
		for range n {
			fs = append(fs, bytes.Repeat([]byte{b}, 100))
		}
		return fs
	}
	big := bytes.Repeat([]byte{'B'}, pumpChunk+1)
	tests := []struct {
		name   string
		batch  []frame
		writes int
	}{
		{"One", small(1, 'a'), 1},
		{"ManySmall", small(200, 'a'), 1},
		{"OverOneChunk", small(pumpChunk/100+1, 'a'), 2},
		{"BigAlone", append(append(small(3, 'a'), big), small(3, 'c')...), 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &countingConn{}
			if err := writeFrames(c, tt.batch); err != nil {
				t.Fatal(err)
			}
			if len(c.writes) != tt.writes {
				t.Fatalf("%d writes, want %d", len(c.writes), tt.writes)
			}
			if got, want := bytes.Join(c.writes, nil), bytes.Join(tt.batch, nil); !bytes.Equal(got, want) {
				t.Fatalf("wrote %d bytes, not the batch's %d in order", len(got), len(want))
			}
			for _, w := range c.writes {
				if len(w) > pumpChunk && !bytes.Equal(w, big) {
					t.Fatalf("a write of %d bytes exceeds pumpChunk", len(w))
				}
			}
		})
	}
	c := &countingConn{fail: 1}
	if err := writeFrames(c, small(pumpChunk/100+1, 'a')); err == nil || len(c.writes) != 1 {
		t.Fatalf("err %v after %d writes: a failed Write must end the batch", err, len(c.writes))
	}
}
