package cluster

import (
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatctl/chatctl/internal/natstest"
)

// counter is a Handler that counts delivered messages and typing
// indicators.
type counter struct {
	n    atomic.Int64
	mu   sync.Mutex // with cond: wakes the publisher when the window opens
	cond *sync.Cond
}

func newCounter() *counter {
	c := &counter{}
	c.cond = sync.NewCond(&c.mu)
	return c
}

func (c *counter) Messages(room, epoch string, msgs []Message) { c.add(len(msgs)) }
func (c *counter) Typing(string, string)                       { c.add(1) }

func (c *counter) add(n int) {
	c.n.Add(int64(n))
	c.mu.Lock()
	c.cond.Broadcast()
	c.mu.Unlock()
}
func (c *counter) Presence([]Change)           {}
func (c *counter) Read(string, string, uint64) {}
func (c *counter) Kick(Kick)                   {}
func (c *counter) Changed(uint64)              {}
func (c *counter) Reconnected()                {}

// waitAtLeast blocks until n messages were delivered.
func (c *counter) waitAtLeast(n int64) {
	c.mu.Lock()
	for c.n.Load() < n {
		c.cond.Wait()
	}
	c.mu.Unlock()
}

// BenchmarkNATSDelivery publishes batches of one message from one broker
// to one other subscribed broker through an in-process NATS server and
// waits for each to be delivered to the receiving Handler (at most
// `window` in flight, so nothing is dropped). ns/op and allocs/op are per
// cross-node message; deliveries/s is the rate; cpu-µs/msg is the CPU of
// the whole process per message: publisher, NATS server and receiver.
//
//	go test -run XXX -bench NATSDelivery -benchmem -count 5 ./cluster/
func BenchmarkNATSDelivery(b *testing.B) {
	batch := []Message{{ID: 1, From: "alice", Text: "hello, this is a chat message of a typical length", TS: time.Now()}}
	benchNATS(b, func(pub *NATS, room string, i int) error {
		batch[0].ID = uint64(i + 1)
		return pub.PublishMessages(room, "e1", batch)
	})
}

// BenchmarkNATSTyping is BenchmarkNATSDelivery for typing indicators:
// ns/op, allocs/op and cpu-µs/msg are per indicator relayed to another
// node's Handler.
//
//	go test -run XXX -bench NATSTyping -benchmem -count 5 ./cluster/
func BenchmarkNATSTyping(b *testing.B) {
	benchNATS(b, func(pub *NATS, room string, _ int) error { return pub.PublishTyping(room, "alice") })
}

// benchNATS runs b.N publications from one broker to another subscribed to
// the room, each counted once delivered.
func benchNATS(b *testing.B, publish func(pub *NATS, room string, i int) error) {
	const window = 1024
	s := natstest.Start(b, 0)
	opts := testOptions(natstest.URL(s), "pub")
	opts.Heartbeat, opts.PresenceTTL = time.Minute, 3*time.Minute
	pub, err := NewNATS(opts)
	if err != nil {
		b.Fatal(err)
	}
	if err := pub.Start(newCounter()); err != nil {
		b.Fatal(err)
	}
	defer pub.Close()
	opts.Node = "sub"
	sub, err := NewNATS(opts)
	if err != nil {
		b.Fatal(err)
	}
	recv := newCounter()
	if err := sub.Start(recv); err != nil {
		b.Fatal(err)
	}
	defer sub.Close()
	const room = "general"
	if err := sub.Subscribe(room); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0, t0 := cpuTime(), time.Now()
	for i := 0; i < b.N; i++ {
		if i >= window {
			recv.waitAtLeast(int64(i - window + 1))
		}
		if err := publish(pub, room, i); err != nil {
			b.Fatal(err)
		}
	}
	recv.waitAtLeast(int64(b.N))
	elapsed, cpu := time.Since(t0), cpuTime()-cpu0
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/msg")
	if st := sub.Stats(); st.Dropped != 0 {
		b.Fatalf("%d dropped", st.Dropped)
	}
}

// BenchmarkCodec encodes and decodes one message's payload.
func BenchmarkCodec(b *testing.B) {
	batch := []Message{{ID: 12345, From: "alice", Text: "hello, this is a chat message of a typical length", TS: time.Now()}}
	b.ReportAllocs()
	var size int
	for i := 0; i < b.N; i++ {
		data := appendMessages(nil, "node-1", "e1", batch)
		size = len(data)
		if _, _, m, err := decodeMessages(data); err != nil || len(m) != 1 {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(size), "bytes/msg")
}

// BenchmarkLocalPublish is what a lone node pays per commit for the broker:
// nothing to speak of.
func BenchmarkLocalPublish(b *testing.B) {
	l := NewLocal("n")
	l.Start(newCounter())
	batch := []Message{{ID: 1, From: "alice", Text: "hi", TS: time.Now()}}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		l.PublishMessages("general", "e1", batch)
	}
}

// BenchmarkNATSSubscribe is the cost of a room's first join on a node: a
// subscription confirmed by a round trip to the server (then its
// Unsubscribe).
func BenchmarkNATSSubscribe(b *testing.B) {
	s := natstest.Start(b, 0)
	n, _ := startBroker(b, testOptions(natstest.URL(s), "n"))
	rooms := make([]string, 1024)
	for i := range rooms {
		rooms[i] = "room-" + strconv.Itoa(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := rooms[i%len(rooms)]
		if err := n.Subscribe(r); err != nil {
			b.Fatal(err)
		}
		if err := n.Unsubscribe(r); err != nil {
			b.Fatal(err)
		}
	}
}
