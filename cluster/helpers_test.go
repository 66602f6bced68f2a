package cluster

import (
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"
)

// waitTimeout bounds every wait on a condition; generous, because the
// machine may be loaded. Tests never sleep: they wait for a condition.
const waitTimeout = 20 * time.Second

// recorder is a Handler that keeps what it gets and wakes waiters.
type recorder struct {
	mu          sync.Mutex // guards the fields below
	msgs        map[string][]Message
	epochs      map[string]string
	presence    []Change
	kicks       []Kick
	typing      []typed    // in arrival order, with messages in msgs
	reads       []readEcho // in arrival order
	changed     []uint64
	reconnected int
	notify      chan struct{} // one pending wake-up for wait
}

func newRecorder() *recorder {
	return &recorder{msgs: map[string][]Message{}, epochs: map[string]string{}, notify: make(chan struct{}, 1)}
}

func (r *recorder) wake() {
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

func (r *recorder) Messages(room, epoch string, msgs []Message) {
	r.mu.Lock()
	r.msgs[room] = append(r.msgs[room], msgs...)
	r.epochs[room] = epoch
	r.mu.Unlock()
	r.wake()
}

func (r *recorder) Presence(cs []Change) {
	r.mu.Lock()
	r.presence = append(r.presence, cs...)
	r.mu.Unlock()
	r.wake()
}

// typed is one typing indicator a recorder got: who typed in which room,
// and how many of the room's messages had arrived before it.
type typed struct {
	Room, User string
	After      int
}

// readEcho is one read echo a recorder got.
type readEcho struct {
	User, Room string
	ID         uint64
}

func (r *recorder) Typing(room, user string) {
	r.mu.Lock()
	r.typing = append(r.typing, typed{Room: room, User: user, After: len(r.msgs[room])})
	r.mu.Unlock()
	r.wake()
}

func (r *recorder) Read(user, room string, id uint64) {
	r.mu.Lock()
	r.reads = append(r.reads, readEcho{User: user, Room: room, ID: id})
	r.mu.Unlock()
	r.wake()
}

func (r *recorder) Kick(k Kick) {
	r.mu.Lock()
	r.kicks = append(r.kicks, k)
	r.mu.Unlock()
	r.wake()
}

func (r *recorder) Changed(seq uint64) {
	r.mu.Lock()
	r.changed = append(r.changed, seq)
	r.mu.Unlock()
	r.wake()
}

func (r *recorder) Reconnected() {
	r.mu.Lock()
	r.reconnected++
	r.mu.Unlock()
	r.wake()
}

// wait returns once cond (called with r.mu held) is true, failing the
// test after waitTimeout. Conditions that depend on something other than
// the recorder (Up, the view) are re-checked every few milliseconds too.
func (r *recorder) wait(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	poll := time.NewTicker(5 * time.Millisecond)
	defer poll.Stop()
	for {
		r.mu.Lock()
		ok := cond()
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-r.notify:
		case <-poll.C:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// ids returns the ids received for room (r.mu held).
func (r *recorder) ids(room string) []uint64 {
	var out []uint64
	for _, m := range r.msgs[room] {
		out = append(out, m.ID)
	}
	return out
}

// testOptions are fast timings for tests.
func testOptions(url, node string) Options {
	return Options{
		URL: url, Node: node, Name: "test",
		Heartbeat: 50 * time.Millisecond, PresenceTTL: 400 * time.Millisecond,
		RosterWait: 50 * time.Millisecond, ReconnectWait: 20 * time.Millisecond,
	}
}

// startBroker starts a NATS broker with a recorder; it is closed when the
// test ends.
func startBroker(t testing.TB, opts Options) (*NATS, *recorder) {
	t.Helper()
	b, err := NewNATS(opts)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	if err := b.Start(rec); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b, rec
}

// crash stops b the way a killed process stops: no goodbye, no more
// heartbeats.
func crash(b *NATS) {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	close(b.done)
	b.wg.Wait()
	b.nc.Close()
}

// sameShard returns a room name other than room that b delivers on the
// same goroutine as room, so that its arrival proves room's would have
// arrived first.
func sameShard(b *NATS, room string) string {
	for i := 0; ; i++ {
		other := room + "-marker-" + strconv.Itoa(i)
		if b.shard(other) == b.shard(room) {
			return other
		}
	}
}

func msgs(from uint64, n int, text string) []Message {
	out := make([]Message, n)
	for i := range out {
		id := from + uint64(i)
		out[i] = Message{ID: id, From: "alice", Text: fmt.Sprintf("%s %d", text, id), TS: t0.Add(time.Duration(id) * time.Millisecond)}
	}
	return out
}
