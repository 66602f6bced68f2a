package chat

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkFanout1000 sends b.N messages, paced at fanoutRate per second,
// to one room of 1,000 members on real sockets and reports deliveries per
// second and the p99 latency from send to receipt. The 1,000 client readers
// run in the same process and compete with the server for the CPU, so the
// numbers understate what a dedicated server core does.
func BenchmarkFanout1000(b *testing.B) {
	const members, fanoutRate = 1000, 140
	h := newHarness(b, Config{SendRate: 1e6, SendBurst: 1e6})
	var (
		mu   sync.Mutex
		lats []time.Duration
		wg   sync.WaitGroup
	)
	clients := make([]*wsClient, members)
	for i := range clients {
		clients[i], _ = h.join(fmt.Sprintf("m%d", i), "big")
	}
	sender := clients[0]
	b.ResetTimer()
	for _, c := range clients {
		wg.Go(func() {
			mine := make([]time.Duration, 0, b.N)
			for len(mine) < b.N {
				f, err := c.tryNext(waitTimeout)
				if err != nil {
					b.Errorf("member read: %v", err)
					return
				}
				if f.Type != "message" {
					continue
				}
				sent, _ := strconv.ParseInt(f.Text, 10, 64)
				mine = append(mine, time.Duration(time.Now().UnixNano()-sent))
			}
			mu.Lock()
			lats = append(lats, mine...)
			mu.Unlock()
		})
	}
	start := time.Now()
	tick := time.NewTicker(time.Second / fanoutRate)
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

// BenchmarkIdleConn opens b.N connections that each join a room and then
// sit idle, and reports the Go memory (heap plus goroutine stacks) per
// connection. The clients are raw TCP sockets without goroutines or
// buffers, so the figure is essentially the server's cost.
func BenchmarkIdleConn(b *testing.B) {
	h := newHarness(b, Config{})
	addr := strings.TrimPrefix(h.srv.URL, "http://")
	join := maskedText(`{"type":"join","room":"idle"}`)
	before := memInUse()
	conns := make([]net.Conn, 0, b.N)
	for i := range b.N {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, c)
		fmt.Fprintf(c, "GET /ws?user=u%d HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", i)
		resp, err := http.ReadResponse(bufio.NewReaderSize(c, 256), nil)
		if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
			b.Fatalf("handshake: %v %v", resp, err)
		}
		if _, err := c.Write(join); err != nil {
			b.Fatal(err)
		}
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
