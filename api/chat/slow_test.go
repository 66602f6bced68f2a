package chat

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// eachWriter runs test once with the hub's write pool and once with
// per-connection writers (ws.write_pool: false), on top of cfg.
func eachWriter(t *testing.T, cfg Config, test func(t *testing.T, cfg Config)) {
	t.Helper()
	for _, w := range []struct {
		name string
		off  bool
	}{{"Pool", false}, {"Pump", true}} {
		t.Run(w.name, func(t *testing.T) {
			c := cfg
			c.NoWritePool = w.off
			test(t, c)
		})
	}
}

// Ensure eachWriter really switches the writer.
func TestWriterSwitch(t *testing.T) {
	eachWriter(t, Config{}, func(t *testing.T, cfg Config) {
		h := newHarness(t, cfg)
		_, isPool := h.hub.writer.(*pool)
		if isPool == cfg.NoWritePool {
			t.Fatalf("NoWritePool %v: writer %T", cfg.NoWritePool, h.hub.writer)
		}
		c := h.dial("alice", time.Time{})
		c.ping()
	})
}

// Ensure a client that pipelines many requests and reads the replies
// promptly keeps its connection: the replies queue faster than a writer
// runs, far beyond Config.Queue frames, but only for a moment.
func TestPipelinedPings(t *testing.T) {
	const n = 1000
	eachWriter(t, Config{}, func(t *testing.T, cfg Config) {
		h := newHarness(t, cfg)
		c := h.dial("alice", time.Time{})
		// All n pings in one TCP write, as a client that pipelines sends
		// them: the server reads them in a burst.
		var batch []byte
		for i := range n {
			batch = maskedTextFrame(batch, fmt.Appendf(nil, `{"type":"ping","ref":"p%d"}`, i))
		}
		got := make(chan error, 1)
		go func() {
			for i := range n {
				f, err := c.tryNext(waitTimeout)
				if err == nil && (f.Type != "pong" || f.Ref != fmt.Sprint("p", i)) {
					err = fmt.Errorf("frame %d is %+v", i, f)
				}
				if err != nil {
					got <- fmt.Errorf("after %d pongs: %w", i, err)
					return
				}
			}
			got <- nil
		}()
		_ = c.conn.NetConn().SetWriteDeadline(time.Now().Add(waitTimeout))
		if _, err := c.conn.NetConn().Write(batch); err != nil {
			t.Fatalf("write: %v", err)
		}
		if err := <-got; err != nil {
			t.Fatal(err)
		}
		c.ping() // still connected
	})
}

// maskedTextFrame appends payload (shorter than 126 bytes) as a masked
// client text frame (RFC 6455 §5.2) to b, with a zero mask key.
func maskedTextFrame(b, payload []byte) []byte {
	b = append(b, 0x81, 0x80|byte(len(payload)), 0, 0, 0, 0)
	return append(b, payload...)
}

// Ensure a client that does not read is closed with 4008 by the byte
// bound, at once, while the others keep receiving promptly.
func TestSlowConsumerBytes(t *testing.T) {
	cfg := Config{QueueBytes: 64 << 10, QueueWait: time.Hour, SendRate: 1e6, SendBurst: 1e6}
	eachWriter(t, cfg, func(t *testing.T, cfg Config) {
		h := newHarness(t, cfg, withSmallSendBuffers)
		slow, _ := h.join("slow", "general") // and never reads again
		fast, _ := h.join("fast", "general")
		sender, _ := h.join("sender", "general")
		text := strings.Repeat("x", 4000)
		i := 0
		for ; closeCode(h.hub, "slow") == 0; i++ {
			if i == 200 {
				t.Fatalf("not closed after %d messages of 4 KB with a 64 KiB bound", i)
			}
			sender.send(map[string]any{"type": "send", "room": "general", "text": text})
			if m := fast.skipUntil("message"); m.ID != uint64(i+1) {
				t.Fatalf("fast got id %d, want %d", m.ID, i+1)
			}
			sender.skipUntil("ack")
		}
		if got := closeCode(h.hub, "slow"); got != CloseTooSlow {
			t.Fatalf("close code %d", got)
		}
		if i*len(text) <= int(cfg.QueueBytes) {
			t.Fatalf("closed after %d messages of 4 KB, under the 64 KiB bound", i)
		}
		t.Logf("closed after %d messages", i)
		slow.expectClose(CloseTooSlow)
	})
}
