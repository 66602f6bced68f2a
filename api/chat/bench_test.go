package chat

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"net"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	fanoutRate = flag.Int("fanout.rate", 140, "messages per second sent by BenchmarkFanout1000")
	fanoutPool = flag.Bool("fanout.pool", true, "BenchmarkFanout1000 writes through the write pool (false: per-connection writers)")
)

// BenchmarkFanout1000 sends b.N messages, paced at -fanout.rate per second,
// to one room of 1,000 members and reports deliveries per second and the
// p99 latency from send to receipt. The members are raw TCP sockets that
// parse frames by hand (cheap, so that the server's work dominates), but
// they still run in the same process and share its CPUs.
func BenchmarkFanout1000(b *testing.B) { benchFanout(b, false) }

// BenchmarkFanout1000TLS is BenchmarkFanout1000 over TLS (wss://), where
// every connection writes through its own goroutine whatever
// -fanout.pool says (see poolConn). The members decrypt in the same
// process, so they take a larger share of the CPUs than in the plain run.
func BenchmarkFanout1000TLS(b *testing.B) { benchFanout(b, true) }

func benchFanout(b *testing.B, useTLS bool) {
	const members = 1000
	var opts []harnessOpt
	if useTLS {
		opts = append(opts, withTLS)
	}
	// The members never answer pings: keep them alive however long the
	// joins take (1,000 TLS handshakes and the presence storm take over a
	// minute on two loaded cores).
	h := newHarness(b, Config{SendRate: 1e6, SendBurst: 1e6, NoWritePool: !*fanoutPool,
		PingInterval: time.Hour, PongTimeout: 2 * time.Hour}, opts...)
	addr := strings.TrimPrefix(strings.TrimPrefix(h.srv.URL, "http://"), "https://")
	dial := func(user string) net.Conn { return rawJoin(b, addr, user, "big") }
	if useTLS {
		cfg := h.clientTLS()
		dial = func(user string) net.Conn {
			c, err := tls.Dial("tcp", addr, cfg)
			if err != nil {
				b.Fatal(err)
			}
			return rawHandshake(b, c, user, "big")
		}
	}
	var (
		mu    sync.Mutex
		lats  []time.Duration
		wg    sync.WaitGroup
		ready sync.WaitGroup
	)
	// Every member reads from the moment it joins: joining queues
	// ~members²/2 presence frames. Measuring starts once every member has
	// seen a first message.
	ready.Add(members)
	for i := range members {
		c := dial(fmt.Sprintf("m%d", i))
		wg.Go(func() {
			defer c.Close()
			mine := make([]time.Duration, 0, b.N)
			synced := false
			err := readFrames(c, func(p []byte) bool {
				text, ok := messageText(p)
				if !ok {
					return true
				}
				if !synced {
					synced = true
					ready.Done()
					return true
				}
				sent, _ := strconv.ParseInt(text, 10, 64)
				mine = append(mine, time.Duration(time.Now().UnixNano()-sent))
				return len(mine) < b.N
			})
			if err != nil {
				b.Errorf("member read: %v", err)
			}
			if !synced {
				ready.Done()
			}
			mu.Lock()
			lats = append(lats, mine...)
			mu.Unlock()
		})
	}
	sender, _ := h.join("sender", "big")
	go func() { // the sender's own frames must be read too
		for {
			if _, err := sender.tryNext(time.Minute); err != nil {
				return
			}
		}
	}()
	sender.send(map[string]any{"type": "send", "room": "big", "text": "sync"})
	ready.Wait()
	b.ResetTimer()
	start := time.Now()
	tick := time.NewTicker(time.Second / time.Duration(*fanoutRate))
	for range b.N {
		<-tick.C
		sender.send(map[string]any{"type": "send", "room": "big", "text": strconv.FormatInt(time.Now().UnixNano(), 10)})
	}
	tick.Stop()
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if len(lats) == 0 {
		return
	}
	slices.Sort(lats)
	b.ReportMetric(float64(len(lats))/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(float64(lats[len(lats)*99/100].Microseconds())/1000, "p99-ms")
}

// rawJoin opens a WebSocket connection by hand and joins room.
func rawJoin(tb testing.TB, addr, user, room string) net.Conn {
	tb.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	return rawHandshake(tb, c, user, room)
}

// rawHandshake upgrades c to a WebSocket by hand and joins room.
func rawHandshake(tb testing.TB, c net.Conn, user, room string) net.Conn {
	tb.Helper()
	fmt.Fprintf(c, "GET /ws?user=%s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", user)
	// Read the 101 response byte by byte so no frame is swallowed.
	var hdr []byte
	one := make([]byte, 1)
	for !bytes.HasSuffix(hdr, []byte("\r\n\r\n")) {
		if _, err := c.Read(one); err != nil {
			tb.Fatalf("handshake: %v", err)
		}
		hdr = append(hdr, one[0])
	}
	if !bytes.HasPrefix(hdr, []byte("HTTP/1.1 101")) {
		tb.Fatalf("handshake: %q", hdr)
	}
	if _, err := c.Write(maskedText(`{"type":"join","room":"` + room + `"}`)); err != nil {
		tb.Fatal(err)
	}
	return c
}

// readFrames calls fn with each text frame's payload until fn returns false.
func readFrames(c net.Conn, fn func([]byte) bool) error {
	br := bufio.NewReaderSize(c, 64<<10)
	for {
		_ = c.SetReadDeadline(time.Now().Add(time.Minute))
		var h [2]byte
		if _, err := io.ReadFull(br, h[:]); err != nil {
			return err
		}
		n := uint64(h[1] & 0x7f)
		switch n {
		case 126:
			var x [2]byte
			if _, err := io.ReadFull(br, x[:]); err != nil {
				return err
			}
			n = uint64(binary.BigEndian.Uint16(x[:]))
		case 127:
			var x [8]byte
			if _, err := io.ReadFull(br, x[:]); err != nil {
				return err
			}
			n = binary.BigEndian.Uint64(x[:])
		}
		p := make([]byte, n)
		if _, err := io.ReadFull(br, p); err != nil {
			return err
		}
		if h[0]&0x0f == 0x1 && !fn(p) {
			return nil
		}
	}
}

// messageText returns the text of a message frame.
func messageText(p []byte) (string, bool) {
	if !bytes.HasPrefix(p, []byte(`{"type":"message"`)) {
		return "", false
	}
	i := bytes.Index(p, []byte(`"text":"`))
	if i < 0 {
		return "", false
	}
	rest := p[i+8:]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return "", false
	}
	return string(rest[:j]), true
}

// BenchmarkIdleConn opens b.N connections that each join a room and then
// sit idle, and reports the Go memory (heap plus goroutine stacks) per
// connection. The clients are raw TCP sockets without goroutines or
// buffers, so the figure is essentially the server's cost.
func BenchmarkIdleConn(b *testing.B) {
	h := newHarness(b, Config{})
	addr := strings.TrimPrefix(h.srv.URL, "http://")
	before := memInUse()
	conns := make([]net.Conn, 0, b.N)
	for i := range b.N {
		conns = append(conns, rawJoin(b, addr, fmt.Sprintf("u%d", i), "idle"))
	}
	eventually(b, "every connection to join", func() bool {
		rs := h.hub.Rooms()
		return len(rs) == 1 && rs[0].Conns == b.N
	})
	eventually(b, "every queue to drain", func() bool {
		h.hub.mu.Lock()
		defer h.hub.mu.Unlock()
		for _, cs := range h.hub.users {
			for _, c := range cs {
				c.mu.Lock()
				q := c.queued
				c.mu.Unlock()
				if q > 0 {
					return false
				}
			}
		}
		return true
	})
	after := memInUse()
	b.ReportMetric(float64(after.total()-before.total())/float64(b.N), "B/conn")
	b.ReportMetric(float64(after.StackInuse-before.StackInuse)/float64(b.N), "stackB/conn")
	for _, c := range conns {
		c.Close()
	}
}

type memStats struct{ runtime.MemStats }

func (m *memStats) total() uint64 { return m.HeapInuse + m.StackInuse }

// memInUse returns memory statistics after a full collection.
func memInUse() *memStats {
	var m memStats
	// Several cycles: each may halve an idle goroutine's oversized stack,
	// as the collections of a long-running server would.
	for range 5 {
		runtime.GC()
	}
	runtime.ReadMemStats(&m.MemStats)
	return &m
}

// maskedText encodes s as a client text frame with a zero mask key (valid,
// and the payload then needs no masking).
func maskedText(s string) []byte {
	if len(s) > 125 {
		panic("maskedText: payload too long")
	}
	return append([]byte{0x81, 0x80 | byte(len(s)), 0, 0, 0, 0}, s...)
}
