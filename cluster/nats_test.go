package cluster

import (
	"encoding/json"
	"errors"
	"log/slog"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/chatctl/chatctl/internal/natstest"
)

// Ensure messages published by one broker reach another subscribed to the
// room, whole and in order, and never come back to their publisher; and
// that after Unsubscribe they stop.
func TestNATSDelivery(t *testing.T) {
	s := natstest.Start(t, 0)
	a, ra := startBroker(t, testOptions(natstest.URL(s), "a"))
	b, rb := startBroker(t, testOptions(natstest.URL(s), "b"))
	const room = "general"
	for _, x := range []*NATS{a, b} {
		if err := x.Subscribe(room); err != nil {
			t.Fatal(err)
		}
	}
	// Subscribe returned: the interest is at the server, so the first
	// publication already arrives.
	sent := msgs(1, 3, "hi")
	if err := a.PublishMessages(room, "ep1", sent[:1]); err != nil {
		t.Fatal(err)
	}
	if err := a.PublishMessages(room, "ep1", sent[1:]); err != nil {
		t.Fatal(err)
	}
	rb.wait(t, "three messages at b", func() bool { return len(rb.msgs[room]) == 3 })
	rb.mu.Lock()
	got, epoch := rb.msgs[room], rb.epochs[room]
	rb.mu.Unlock()
	if !reflect.DeepEqual(got, sent) || epoch != "ep1" {
		t.Fatalf("b got %+v (epoch %q), want %+v (ep1)", got, epoch, sent)
	}
	// b publishes too; a gets b's message and never its own.
	if err := b.PublishMessages(room, "ep1", msgs(4, 1, "from b")); err != nil {
		t.Fatal(err)
	}
	ra.wait(t, "b's message at a", func() bool { return len(ra.msgs[room]) > 0 })
	ra.mu.Lock()
	if ids := ra.ids(room); !slices.Equal(ids, []uint64{4}) {
		t.Errorf("a got ids %v, want only b's [4]", ids)
	}
	ra.mu.Unlock()
	if st := a.Stats(); st.Published != 3 || st.Received != 1 {
		t.Errorf("a's stats %+v, want 3 published and 1 received", st)
	}

	// Counted subscriptions: two Subscribe need two Unsubscribe.
	if err := b.Subscribe(room); err != nil {
		t.Fatal(err)
	}
	marker := sameShard(b, room)
	if err := b.Subscribe(marker); err != nil {
		t.Fatal(err)
	}
	b.Unsubscribe(room)
	a.PublishMessages(room, "ep1", msgs(5, 1, "still subscribed once"))
	a.PublishMessages(marker, "ep1", msgs(1, 1, "marker"))
	rb.wait(t, "marker 1", func() bool { return len(rb.msgs[marker]) == 1 })
	b.Unsubscribe(room)
	a.PublishMessages(room, "ep1", msgs(6, 1, "after unsubscribe"))
	a.PublishMessages(marker, "ep1", msgs(2, 1, "marker"))
	rb.wait(t, "marker 2", func() bool { return len(rb.msgs[marker]) == 2 })
	rb.mu.Lock()
	defer rb.mu.Unlock()
	if ids := rb.ids(room); !slices.Equal(ids, []uint64{1, 2, 3, 5}) {
		t.Errorf("b got ids %v, want 1, 2, 3 and 5 (not its own 4, nothing after its last Unsubscribe)", ids)
	}
}

// Ensure rooms whose names are not NATS tokens ('.', '*', '>', '@', '+',
// spaces, UTF-8) each get exactly their own messages over the wire.
func TestNATSRoomNames(t *testing.T) {
	s := natstest.Start(t, 0)
	a, _ := startBroker(t, testOptions(natstest.URL(s), "a"))
	b, rb := startBroker(t, testOptions(natstest.URL(s), "b"))
	rooms := []string{"a", "a.b", "a.b.c", "*", ">", "a.*", "a.>", "dm:alice+bob", "bob@example.com", "x y", "été", "room.with.many.dots"}
	for _, r := range rooms {
		if err := b.Subscribe(r); err != nil {
			t.Fatalf("Subscribe(%q): %v", r, err)
		}
	}
	for i, r := range rooms {
		if err := a.PublishMessages(r, "e", msgs(uint64(i+1), 1, r)); err != nil {
			t.Fatalf("PublishMessages(%q): %v", r, err)
		}
	}
	rb.wait(t, "every room's message", func() bool {
		n := 0
		for _, list := range rb.msgs {
			n += len(list)
		}
		return n >= len(rooms)
	})
	rb.mu.Lock()
	defer rb.mu.Unlock()
	for i, r := range rooms {
		got := rb.msgs[r]
		if len(got) != 1 || got[0].ID != uint64(i+1) || got[0].Text != r+" "+strconv.Itoa(i+1) {
			t.Errorf("room %q got %+v", r, got)
		}
	}
	if len(rb.msgs) != len(rooms) {
		t.Errorf("messages for %d rooms, want %d", len(rb.msgs), len(rooms))
	}
	if err := a.PublishMessages("", "e", msgs(1, 1, "x")); !errors.Is(err, ErrRoomName) {
		t.Errorf("empty room: %v", err)
	}
	if err := b.Subscribe(""); !errors.Is(err, ErrRoomName) {
		t.Errorf("Subscribe empty room: %v", err)
	}
}

// Ensure presence spreads: deltas reach the other nodes at once, a node
// that starts later learns the rosters from its roster request, a node
// that closes leaves at once, and one that stops heartbeating (killed)
// expires after the TTL.
func TestNATSRoster(t *testing.T) {
	s := natstest.Start(t, 0)
	opts := testOptions(natstest.URL(s), "a")
	opts.PresenceTTL = 10 * time.Second // expiry must not explain what this part sees
	a, ra := startBroker(t, opts)
	opts.Node = "b"
	b, rb := startBroker(t, opts)

	if c, ok := a.SetPresence("r", "alice", 1); !ok || c != join("r", "alice") {
		t.Fatalf("a's own join: %+v %v", c, ok)
	}
	rb.wait(t, "alice's join at b", func() bool { return slices.Contains(rb.presence, join("r", "alice")) })
	if m := b.View().Members("r"); !slices.Equal(m, []string{"alice"}) {
		t.Fatalf("b's members %v", m)
	}
	// A second tab on b: no cluster-wide change, on either node.
	if _, ok := b.SetPresence("r", "alice", 1); ok {
		t.Fatal("alice's tab on b changed cluster presence")
	}
	a.SetConns("alice", 1, time.Now())
	if total := b.SetConns("alice", 1, time.Now()); total < 1 {
		t.Fatalf("b's total for alice = %d", total)
	}
	ra.wait(t, "alice's 2 connections at a", func() bool {
		total, _ := a.View().Conns("alice")
		return total == 2
	})
	if _, ok := a.SetPresence("r", "alice", 0); ok {
		t.Fatal("closing a's tab made alice leave although b has one")
	}

	// c starts late: its Start asks for the rosters.
	opts.Node = "c"
	c, rc := startBroker(t, opts)
	rc.wait(t, "c learns alice from b's roster", func() bool { return c.View().Present("r", "alice") })
	rc.wait(t, "c sees three nodes", func() bool { return len(c.View().Nodes()) == 3 })
	c.SetPresence("s", "carol", 2)
	ra.wait(t, "carol at a", func() bool { return a.View().Present("s", "carol") })

	// c closes: its goodbye removes carol at once (the TTL is 10s).
	start := time.Now()
	c.Close()
	ra.wait(t, "carol leaves a", func() bool { return slices.Contains(ra.presence, leave("s", "carol")) })
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("goodbye took %v", d)
	}

	// A node that dies without a word expires after the TTL.
	s2 := natstest.Start(t, 0)
	opts = testOptions(natstest.URL(s2), "d")
	d, rd := startBroker(t, opts)
	opts.Node = "e"
	e, _ := startBroker(t, opts)
	e.SetPresence("r", "erin", 1)
	rd.wait(t, "erin at d", func() bool { return d.View().Present("r", "erin") })
	killed := time.Now()
	crash(e)
	rd.wait(t, "erin leaves d", func() bool { return slices.Contains(rd.presence, leave("r", "erin")) })
	if gone := time.Since(killed); gone < opts.PresenceTTL-opts.Heartbeat {
		t.Errorf("erin left %v after the crash, before the TTL %v", gone, opts.PresenceTTL)
	}
	if n := d.View().Nodes(); !slices.Equal(n, []string{"d"}) {
		t.Errorf("d's nodes after the expiry: %v", n)
	}
}

// Ensure a kick and a change hint reach every node, the sender's own
// handler included (before Kick returns).
func TestNATSKick(t *testing.T) {
	s := natstest.Start(t, 0)
	a, ra := startBroker(t, testOptions(natstest.URL(s), "a"))
	_, rb := startBroker(t, testOptions(natstest.URL(s), "b"))
	_, rc := startBroker(t, testOptions(natstest.URL(s), "c"))
	kicks := []Kick{{User: "alice"}, {JTI: "j1"}, {Session: "s1"}, {Kid: "k1"}}
	for _, k := range kicks {
		if err := a.Kick(k); err != nil {
			t.Fatal(err)
		}
	}
	ra.mu.Lock()
	if !reflect.DeepEqual(ra.kicks, kicks) {
		t.Errorf("a's own kicks %+v when Kick returned, want %+v", ra.kicks, kicks)
	}
	ra.mu.Unlock()
	if err := a.Changed(42); err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]*recorder{"b": rb, "c": rc} {
		r.wait(t, "kicks and change at "+name, func() bool { return len(r.kicks) == len(kicks) && len(r.changed) == 1 })
		r.mu.Lock()
		if !reflect.DeepEqual(r.kicks, kicks) || r.changed[0] != 42 {
			t.Errorf("%s got kicks %+v, changed %v", name, r.kicks, r.changed)
		}
		r.mu.Unlock()
	}
	ra.mu.Lock()
	defer ra.mu.Unlock()
	if len(ra.kicks) != len(kicks) || !slices.Equal(ra.changed, []uint64{42}) {
		t.Errorf("a got its own publications twice: %+v %v", ra.kicks, ra.changed)
	}
}

// Ensure a NATS restart is survived: Up turns false, publications fail
// fast, rosters freeze instead of expiring, and once the server is back on
// the same port Up turns true, Reconnected is called, and the
// subscriptions work again without being renewed.
func TestNATSReconnect(t *testing.T) {
	s := natstest.Start(t, 0)
	port := natstest.Port(s)
	a, ra := startBroker(t, testOptions(natstest.URL(s), "a"))
	b, rb := startBroker(t, testOptions(natstest.URL(s), "b"))
	const room = "a.b"
	if err := b.Subscribe(room); err != nil {
		t.Fatal(err)
	}
	a.SetPresence(room, "alice", 1)
	rb.wait(t, "alice at b", func() bool { return b.View().Present(room, "alice") })
	if !a.Up() || !b.Up() {
		t.Fatal("not up")
	}

	s.Shutdown()
	rb.wait(t, "both down", func() bool { return !a.Up() && !b.Up() })
	if err := a.PublishMessages(room, "e", msgs(1, 1, "lost")); !errors.Is(err, ErrDown) {
		t.Errorf("publish while down: %v, want ErrDown", err)
	}
	if err := a.Kick(Kick{User: "bob"}); !errors.Is(err, ErrDown) {
		t.Errorf("kick while down: %v, want ErrDown", err)
	}
	ra.mu.Lock()
	if len(ra.kicks) != 1 {
		t.Errorf("the local kick was not delivered while down: %+v", ra.kicks)
	}
	ra.mu.Unlock()
	// Outlast the TTL while down: b's expiry ticks pass, alice stays.
	ticks := b.frozenTicks.Load()
	rb.wait(t, "expiry ticks past the TTL", func() bool { return b.frozenTicks.Load() >= ticks+6 })
	if !b.View().Present(room, "alice") {
		t.Fatal("alice expired while NATS was down: rosters must freeze")
	}
	if err := b.Subscribe("joined-while-down"); err != nil {
		t.Errorf("Subscribe while down: %v", err)
	}

	s2 := natstest.Start(t, port)
	_ = s2
	rb.wait(t, "b reconnected", func() bool { return b.Up() && rb.reconnected == 1 })
	ra.wait(t, "a reconnected", func() bool { return a.Up() && ra.reconnected == 1 })
	if err := a.PublishMessages(room, "e", msgs(2, 1, "after")); err != nil {
		t.Fatal(err)
	}
	if err := a.PublishMessages("joined-while-down", "e", msgs(1, 1, "after")); err != nil {
		t.Fatal(err)
	}
	rb.wait(t, "messages after the restart", func() bool {
		return len(rb.msgs[room]) == 1 && len(rb.msgs["joined-while-down"]) == 1
	})
	rb.mu.Lock()
	if ids := rb.ids(room); !slices.Equal(ids, []uint64{2}) {
		t.Errorf("b got %v, want [2]", ids)
	}
	rb.mu.Unlock()
	if !b.View().Present(room, "alice") {
		t.Error("alice gone after the reconnection")
	}
	if st := b.Stats(); st.Reconnects != 1 || st.Nodes != 2 {
		t.Errorf("b's stats %+v", st)
	}
	// Presence still flows.
	a.SetPresence(room, "alice", 0)
	rb.wait(t, "alice leaves b", func() bool { return !b.View().Present(room, "alice") })
}

// Ensure a node that starts while NATS is down starts anyway (serving its
// own members), and joins when the server comes up.
func TestNATSStartWhileDown(t *testing.T) {
	port := natstest.FreePort(t)
	url := "nats://127.0.0.1:" + strconv.Itoa(port)
	a, ra := startBroker(t, testOptions(url, "a"))
	if a.Up() {
		t.Fatal("up without a server")
	}
	if err := a.Subscribe("r"); err != nil {
		t.Fatalf("Subscribe while down: %v", err)
	}
	s := natstest.Start(t, port)
	ra.wait(t, "a connected", func() bool { return a.Up() && ra.reconnected == 1 })
	b, _ := startBroker(t, testOptions(natstest.URL(s), "b"))
	if err := b.PublishMessages("r", "e", msgs(1, 1, "x")); err != nil {
		t.Fatal(err)
	}
	ra.wait(t, "message at a", func() bool { return len(ra.msgs["r"]) == 1 })
}

// Ensure bad options are refused and Close is final.
func TestNATSOptions(t *testing.T) {
	for _, o := range []Options{
		{},
		{URL: "nats://127.0.0.1:1", Name: "a.b"},
		{URL: "nats://127.0.0.1:1", Node: "x y"},
	} {
		if _, err := NewNATS(o); err == nil {
			t.Errorf("NewNATS(%+v) accepted", o)
		}
	}
	s := natstest.Start(t, 0)
	a, _ := startBroker(t, testOptions(natstest.URL(s), ""))
	if !ValidNodeID(a.Node()) {
		t.Errorf("random node id %q", a.Node())
	}
	a.Close()
	a.Close()
	if a.Up() {
		t.Error("up after Close")
	}
	for name, err := range map[string]error{
		"PublishMessages": a.PublishMessages("r", "", msgs(1, 1, "x")),
		"Subscribe":       a.Subscribe("r"),
		"Unsubscribe":     a.Unsubscribe("r"),
		"Kick":            a.Kick(Kick{User: "x"}),
		"Changed":         a.Changed(1),
	} {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
	if got := redactURLs("nats://u:secret@h1:4222,nats://h2:4222"); got != "nats://xxxxx@h1:4222,nats://h2:4222" {
		t.Errorf("redactURLs = %q", got)
	}
}

// Ensure a roster too big for one NATS message travels in parts, deltas
// and heartbeats alike, and that a heartbeat repairs what lost deltas left
// wrong.
func TestNATSLargeRoster(t *testing.T) {
	s := natstest.Start(t, 0)
	opts := testOptions(natstest.URL(s), "a")
	opts.Heartbeat, opts.PresenceTTL = 300*time.Millisecond, time.Minute // big heartbeats are work
	a, _ := startBroker(t, opts)
	opts.Node = "b"
	b, rb := startBroker(t, opts)
	const n = 8000 // about 700 kB of entries: several parts
	user := func(i int) string { return "user-with-a-longish-name-" + strconv.Itoa(i) }
	room := func(i int) string { return "room-" + strconv.Itoa(i%7) + ".with.a.long.name" }
	for i := 0; i < n; i++ {
		a.SetPresence(room(i), user(i), 1)
	}
	if parts := splitEntries(a.View().Local()); len(parts) < 3 {
		t.Fatalf("%d parts: the test needs a roster of several", len(parts))
	}
	total := func() int {
		sum := 0
		for r := 0; r < 7; r++ {
			sum += len(b.View().Members(room(r)))
		}
		return sum
	}
	rb.wait(t, "every entry at b", func() bool { return total() == n })

	// Heartbeats are digests: a few dozen bytes however large the roster.
	nc, err := nats.Connect(natstest.URL(s))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	beats := make(chan *nats.Msg, 16)
	sub, err := nc.ChanSubscribe(a.subj.roster, beats)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	for range 2 {
		select {
		case m := <-beats:
			var r Roster
			if err := json.Unmarshal(m.Data, &r); err != nil || !r.Digest || len(r.Entries) > 0 || len(m.Data) > 200 {
				t.Fatalf("a heartbeat of %d bytes: %+v, %v; want a digest", len(m.Data), r, err)
			}
		case <-time.After(waitTimeout):
			t.Fatal("no heartbeat")
		}
	}

	// b loses deltas, as a slow consumer would: half of a's entries go
	// from b's view, and a ghost appears. a's next digest disagrees, b
	// asks a for its full roster, and its parts repair b.
	asks := b.fullAsks.Load()
	b.view.mu.Lock()
	st := b.view.nodes["a"]
	for i := 0; i < n; i += 2 {
		b.view.set(st, Key{room(i), user(i)}, Entry{}, nil)
	}
	b.view.set(st, Key{room(0), "ghost"}, Entry{Room: room(0), User: "ghost", Conns: 1}, nil)
	b.view.mu.Unlock()
	rb.wait(t, "every entry at b again, and no ghost", func() bool {
		return total() == n && !b.View().Present(room(0), "ghost")
	})
	if b.fullAsks.Load() == asks {
		t.Fatal("b was repaired without asking for a's roster")
	}
}

// blockingHandler holds every delivery until release is closed.
type blockingHandler struct {
	*recorder
	release chan struct{}
}

func (h *blockingHandler) Messages(room, epoch string, msgs []Message) {
	<-h.release
	h.recorder.Messages(room, epoch, msgs)
}

// Ensure a receiver that cannot keep up loses messages (counted), never
// blocks NATS or the publisher, and gets the newer ones afterwards.
func TestNATSSlowReceiver(t *testing.T) {
	s := natstest.Start(t, 0)
	a, _ := startBroker(t, testOptions(natstest.URL(s), "a"))
	opts := testOptions(natstest.URL(s), "b")
	b, err := NewNATS(opts)
	if err != nil {
		t.Fatal(err)
	}
	h := &blockingHandler{recorder: newRecorder(), release: make(chan struct{})}
	if err := b.Start(h); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	var once sync.Once
	release := func() { once.Do(func() { close(h.release) }) }
	t.Cleanup(release) // runs before Close, which waits for the handler
	if err := b.Subscribe("r"); err != nil {
		t.Fatal(err)
	}
	batch := msgs(1, 1, "x")
	for i := 0; i < 3*shardQueue; i++ {
		batch[0].ID = uint64(i + 1)
		if err := a.PublishMessages("r", "e", batch); err != nil {
			t.Fatal(err)
		}
	}
	h.wait(t, "drops counted", func() bool { return b.Stats().Dropped > 0 })
	release()
	h.wait(t, "the queue drained", func() bool { return len(b.shard("r")) == 0 })
	if err := a.PublishMessages("r", "e", msgs(1000000, 1, "late")); err != nil {
		t.Fatal(err)
	}
	h.wait(t, "the late message", func() bool {
		list := h.msgs["r"]
		return len(list) > 0 && list[len(list)-1].ID == 1000000
	})
}

// Ensure the "no responders" reply a lone node gets to its roster request
// is not taken for a bad roster (it used to log a warning at every start of
// the first node), while a truly bad roster still is.
func TestNATSRosterNoResponders(t *testing.T) {
	var logged strings.Builder
	opts := testOptions("nats://127.0.0.1:1", "a")
	opts.Log = slog.New(slog.NewTextHandler(&logged, nil))
	b, err := NewNATS(opts)
	if err != nil {
		t.Fatal(err)
	}
	noResponders := &nats.Msg{Subject: "_INBOX.x", Header: nats.Header{"Status": []string{"503"}}}
	b.onRoster(noResponders)
	if logged.Len() != 0 {
		t.Fatalf("no responders logged: %s", logged.String())
	}
	b.onRoster(&nats.Msg{Subject: "_INBOX.x", Data: []byte("{")})
	if !strings.Contains(logged.String(), "bad roster") {
		t.Fatalf("a bad roster was not logged: %q", logged.String())
	}
}

// Ensure a typing indicator reaches the other nodes subscribed to its room
// on the room's subject, in order with the room's messages, never its
// publisher and never a node not subscribed to the room; it is counted
// as no message, and bad arguments are refused.
func TestNATSTyping(t *testing.T) {
	s := natstest.Start(t, 0)
	a, ra := startBroker(t, testOptions(natstest.URL(s), "a"))
	b, rb := startBroker(t, testOptions(natstest.URL(s), "b"))
	const room = "a.b"                 // not a NATS token: the room's token carries it
	unsubscribed := sameShard(b, room) // b never subscribes to it
	for _, x := range []*NATS{a, b} {
		if err := x.Subscribe(room); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.PublishTyping(unsubscribed, "alice"); err != nil {
		t.Fatal(err)
	}
	if err := a.PublishMessages(room, "e", msgs(1, 2, "hi")); err != nil {
		t.Fatal(err)
	}
	if err := a.PublishTyping(room, "alice"); err != nil {
		t.Fatal(err)
	}
	rb.wait(t, "alice typing at b", func() bool { return len(rb.typing) > 0 })
	rb.mu.Lock()
	got := slices.Clone(rb.typing)
	rb.mu.Unlock()
	if want := []typed{{Room: room, User: "alice", After: 2}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("b got typing %+v, want %+v: after both messages, nothing of a room it is not in", got, want)
	}
	// b's typist reaches a, not b itself.
	if err := b.PublishTyping(room, "bob"); err != nil {
		t.Fatal(err)
	}
	ra.wait(t, "bob typing at a", func() bool { return len(ra.typing) > 0 })
	if err := b.PublishMessages(room, "e", msgs(3, 1, "marker")); err != nil {
		t.Fatal(err)
	}
	ra.wait(t, "b's marker message at a", func() bool { return len(ra.msgs[room]) == 1 })
	ra.mu.Lock()
	gotA := slices.Clone(ra.typing)
	ra.mu.Unlock()
	if want := []typed{{Room: room, User: "bob", After: 0}}; !reflect.DeepEqual(gotA, want) {
		t.Fatalf("a got typing %+v, want %+v (never its own alice)", gotA, want)
	}
	rb.mu.Lock()
	n := len(rb.typing)
	rb.mu.Unlock()
	if n != 1 {
		t.Fatalf("b got its own typing back (%d indicators)", n)
	}
	if st := a.Stats(); st.Published != 2 || st.Received != 1 {
		t.Errorf("a's stats %+v: typing counted as messages", st)
	}
	if err := a.PublishTyping("", "alice"); !errors.Is(err, ErrRoomName) {
		t.Errorf("empty room: %v", err)
	}
	if err := a.PublishTyping(room, ""); err == nil {
		t.Error("empty user accepted")
	}
	a.Close()
	if err := a.PublishTyping(room, "alice"); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
}

// Ensure a read echo reaches every other node (one subject for all), not
// its publisher, and is published only while the presence view counts
// connections of the user on another node; bad arguments are refused.
func TestNATSRead(t *testing.T) {
	s := natstest.Start(t, 0)
	a, ra := startBroker(t, testOptions(natstest.URL(s), "a"))
	b, rb := startBroker(t, testOptions(natstest.URL(s), "b"))
	c, rc := startBroker(t, testOptions(natstest.URL(s), "c"))
	a.SetConns("alice", 1, time.Now())
	a.SetConns("carol", 1, time.Now())
	b.SetConns("alice", 1, time.Now())
	for name, x := range map[string]*NATS{"a": a, "b": b} {
		ra.wait(t, name+" to count alice's tab on the other", func() bool {
			total, elsewhere := x.View().Conns("alice")
			return total == 2 && elsewhere > 0
		})
	}
	// carol has no connection elsewhere: nothing goes out.
	if err := a.PublishRead("carol", "r", 4); err != nil {
		t.Fatal(err)
	}
	if err := a.PublishRead("alice", "@alice+bob", 5); err != nil {
		t.Fatal(err)
	}
	want := []readEcho{{User: "alice", Room: "@alice+bob", ID: 5}}
	for name, r := range map[string]*recorder{"b": rb, "c": rc} {
		r.wait(t, "alice's read at "+name, func() bool { return len(r.reads) > 0 })
		r.mu.Lock()
		got := slices.Clone(r.reads)
		r.mu.Unlock()
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s got %+v, want %+v (carol's never published)", name, got, want)
		}
	}
	// b's echo reaches a, and b never hears its own.
	if err := b.PublishRead("alice", "r", 9); err != nil {
		t.Fatal(err)
	}
	ra.wait(t, "alice's read at a", func() bool { return len(ra.reads) > 0 })
	rc.wait(t, "b's echo at c", func() bool { return len(rc.reads) == 2 })
	ra.mu.Lock()
	gotA := slices.Clone(ra.reads)
	ra.mu.Unlock()
	if w := []readEcho{{User: "alice", Room: "r", ID: 9}}; !reflect.DeepEqual(gotA, w) {
		t.Fatalf("a got %+v, want %+v", gotA, w)
	}
	rb.mu.Lock()
	n := len(rb.reads)
	rb.mu.Unlock()
	if n != 1 {
		t.Fatalf("b got its own echo back (%d echoes)", n)
	}
	for _, bad := range []struct {
		user, room string
		id         uint64
	}{{"", "r", 1}, {"alice", "", 1}, {"alice", "r", 0}, {"alice", strings.Repeat("r", MaxRoomName+1), 1}} {
		if err := a.PublishRead(bad.user, bad.room, bad.id); err == nil {
			t.Errorf("PublishRead(%q, %d-byte room, %d) accepted", bad.user, len(bad.room), bad.id)
		}
	}
	c.Close()
	if err := c.PublishRead("alice", "r", 1); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
}
