package chat

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/chatctl/chatctl/access"
	"github.com/chatctl/chatctl/cluster"
)

// Heads implements HeadStore for the cluster tests.
func (s *memStore) Heads(rooms []string) (map[string]Head, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]Head{}
	for _, r := range rooms {
		if ms := s.rooms[r]; len(ms) > 0 {
			out[r] = Head{LastID: ms[len(ms)-1].ID, Epoch: s.epochs[r]}
		}
	}
	return out, nil
}

// peerBroker is a broker that joins other nodes as far as the hub can
// tell (it is not a *cluster.Local), whose "other nodes" are the test: it
// keeps the Handler to deliver their messages, and records what the hub
// publishes.
type peerBroker struct {
	*cluster.Local
	mu        sync.Mutex // guards h, published, typing, reads
	h         cluster.Handler
	published []cluster.Message
	typing    []string // room/user of each PublishTyping
	reads     []string // user/room/id of each PublishRead
}

func (b *peerBroker) PublishTyping(room, user string) error {
	b.mu.Lock()
	b.typing = append(b.typing, room+"/"+user)
	b.mu.Unlock()
	return nil
}

func (b *peerBroker) PublishRead(user, room string, id uint64) error {
	b.mu.Lock()
	b.reads = append(b.reads, fmt.Sprintf("%s/%s/%d", user, room, id))
	b.mu.Unlock()
	return nil
}

// publications returns copies of what the hub published of typing and
// read echoes.
func (b *peerBroker) publications() (typing, reads []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.typing), slices.Clone(b.reads)
}

func (b *peerBroker) Start(h cluster.Handler) error {
	b.mu.Lock()
	b.h = h
	b.mu.Unlock()
	return b.Local.Start(h)
}

func (b *peerBroker) PublishMessages(room, epoch string, msgs []cluster.Message) error {
	b.mu.Lock()
	b.published = append(b.published, msgs...)
	b.mu.Unlock()
	return nil
}

func (b *peerBroker) handler() cluster.Handler {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.h
}

// newPeerHarness is newHarness with a peerBroker in place before the hub
// runs.
func newPeerHarness(t *testing.T) (*harness, *peerBroker) {
	t.Helper()
	h := &harness{t: t, store: newMemStore(), auth: &fakeAuth{tokens: map[string]Identity{}}}
	h.hub = NewHub(h.store, h.auth, Config{}, nil)
	b := &peerBroker{Local: cluster.NewLocal("test")}
	if err := h.hub.UseBroker(b); err != nil {
		t.Fatal(err)
	}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := testUpgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		h.hub.Serve(conn, Identity{User: r.URL.Query().Get("user")})
	}))
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { h.hub.Run(ctx); close(ran) }()
	t.Cleanup(func() {
		cancel()
		<-ran
		h.srv.Close()
	})
	return h, b
}

// remote returns what another node would publish of room's stored
// messages with the given ids.
func (s *memStore) remote(room string, ids ...uint64) []cluster.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []cluster.Message
	for _, id := range ids {
		m := s.rooms[room][id-1]
		out = append(out, cluster.Message{ID: m.ID, From: m.From, Text: m.Text, TS: m.TS})
	}
	return out
}

// Ensure a hub joined to other nodes delivers their messages in id order
// without gaps or duplicates: a hole is read from the store (not skipped
// as on one node), a duplicate is dropped, a lost tail is caught by the
// head check, and a message of a new epoch closes the room.
func TestClusterReorder(t *testing.T) {
	h, b := newPeerHarness(t)
	alice, _ := h.join("alice", "r")
	for range 3 {
		h.store.AppendMessage(context.Background(), "r", "bob", "elsewhere", time.Now()) // committed on another node
	}
	ep, _ := h.store.Epoch("r")

	// Only 3 arrives: 1 and 2 are read from the store.
	b.handler().Messages("r", ep, h.store.remote("r", 3))
	for want := uint64(1); want <= 3; want++ {
		if f := alice.expect(TypeMessage); f.ID != want {
			t.Fatalf("message id %d, want %d: a hole was skipped or reordered", f.ID, want)
		}
	}
	// Everything again: duplicates, dropped silently.
	b.handler().Messages("r", ep, h.store.remote("r", 1, 2, 3))
	alice.ping()

	// Her own send is published for the other nodes, after its commit.
	alice.send(map[string]any{"type": "send", "room": "r", "text": "mine", "ref": "a"})
	if f := alice.expect(TypeMessage); f.ID != 4 {
		t.Fatalf("own message id %d, want 4", f.ID)
	}
	alice.expect(TypeAck)
	b.mu.Lock()
	pub := b.published
	b.mu.Unlock()
	if len(pub) != 1 || pub[0].ID != 4 || pub[0].Text != "mine" {
		t.Fatalf("published %+v, want message 4", pub)
	}

	// A lost tail (never published): the head check reads it.
	h.store.AppendMessage(context.Background(), "r", "bob", "lost", time.Now())
	if f := alice.expect(TypeMessage); f.ID != 5 || f.Text != "lost" {
		t.Fatalf("after a lost publication: %+v, want message 5", f)
	}
	if st := h.hub.ClusterStats(); st.HolesFilled < 3 || !st.Multi { // 4 too, if a head check caught her own send first
		t.Fatalf("stats %+v, want at least 3 holes filled", st)
	}

	// Deleted and created again elsewhere: a message of the new epoch
	// closes the room here.
	h.store.drop("r")
	h.store.AppendMessage(context.Background(), "r", "bob", "new life", time.Now())
	ep2, _ := h.store.Epoch("r")
	b.handler().Messages("r", ep2, h.store.remote("r", 1))
	if f := alice.expect(TypeError); f.Code != CodeNotFound || f.Room != "r" {
		t.Fatalf("after an epoch change: %+v, want not_found for r", f)
	}
}

// Ensure presence in a hub joined to other nodes follows the cluster-wide
// view: a user another node reports is announced once, joined.members is
// the union, and a user with tabs here and elsewhere leaves only when the
// last tab anywhere goes.
func TestClusterPresenceView(t *testing.T) {
	h, b := newPeerHarness(t)
	alice, j := h.join("alice", "p")
	if len(j.Members) != 1 {
		t.Fatalf("members %v", j.Members)
	}
	// bob is in p on another node.
	v := b.View()
	other := func(conns int) {
		cs := v.Apply(&cluster.Roster{Node: "n2", Inc: 1, Seq: uint64(time.Now().UnixNano()), Entries: []cluster.Entry{{Room: "p", User: "bob", Conns: conns}}}, time.Now())
		b.handler().Presence(cs)
	}
	other(1)
	if f := alice.expect(TypePresence); f.User != "bob" || f.Event != "join" {
		t.Fatalf("presence %+v, want bob join", f)
	}
	carol, j2 := h.join("carol", "p")
	if len(j2.Members) != 3 {
		t.Fatalf("joined.members %v, want alice, bob and carol", j2.Members)
	}
	if f := alice.expect(TypePresence); f.User != "carol" || f.Event != "join" {
		t.Fatalf("presence %+v, want carol join", f)
	}
	// bob opens a tab here too: nobody is told again.
	bob, _ := h.join("bob", "p")
	// bob's remote tab goes: he is still here.
	other(0)
	alice.ping()
	carol.ping()
	bob.send(map[string]any{"type": "leave", "room": "p"})
	bob.expect(TypeAck)
	if f := alice.expect(TypePresence); f.User != "bob" || f.Event != "leave" {
		t.Fatalf("presence %+v, want bob leave once his last tab went", f)
	}
}

// Ensure typing in a hub joined to other nodes: a relayed indicator is
// also published, once per typingInterval (the limit applies at the
// origin, once); one another node relayed reaches this node's members
// except the typist's own connections, and not a member whose read access
// went (checked here, even before the eviction).
func TestClusterTyping(t *testing.T) {
	h, b := newPeerHarness(t)
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h.hub.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	alice, _ := h.join("alice", "t")
	bob, _ := h.join("bob", "t")
	alice.expect(TypePresence)

	alice.send(map[string]any{"type": "typing", "room": "t"})
	if f := bob.expect(TypeTyping); f.User != "alice" {
		t.Fatalf("bob got %+v", f)
	}
	alice.send(map[string]any{"type": "typing", "room": "t"}) // within the second: dropped, not published
	alice.quiet()
	if typing, _ := b.publications(); !slices.Equal(typing, []string{"t/alice"}) {
		t.Fatalf("published typing %v, want [t/alice] once", typing)
	}

	// From another node: alice's other tab types there. Bob hears it,
	// alice's connections here do not; a remote bob reaches alice only.
	b.handler().Typing("t", "alice")
	if f := bob.expect(TypeTyping); f.User != "alice" || f.Room != "t" {
		t.Fatalf("bob got %+v", f)
	}
	alice.quiet()
	b.handler().Typing("t", "carol")
	alice.expect(TypeTyping)
	bob.expect(TypeTyping)
	b.handler().Typing("nowhere", "carol") // no members here: nothing
	alice.quiet()

	// bob loses read access; another node's typing no longer reaches him,
	// even before this node evicted him (the table is swapped without
	// enforcing it here, as a change feed is about to).
	h.hub.acc.Store(access.New(access.ReadWrite, []access.Rule{{User: "bob", Pattern: "t", Perm: access.Deny}}, nil))
	b.handler().Typing("t", "carol")
	if f := alice.expect(TypeTyping); f.User != "carol" {
		t.Fatalf("alice got %+v", f)
	}
	bob.quiet()
}

// Ensure a read in a hub joined to other nodes is published with the
// stored marker when it moved (not when it did not), and that an echo
// from another node reaches this node's connections of that user (a tab
// that joined nothing too) that may read the room, and nobody else's.
func TestClusterReadEcho(t *testing.T) {
	h, b := newPeerHarness(t)
	h.store.fill("r", 5)
	a1, _ := h.join("alice", "r")
	a2 := h.dial("alice", time.Time{})
	bob, _ := h.join("bob", "r")
	a1.expect(TypePresence)
	a2.ping()

	a1.send(map[string]any{"type": "read", "room": "r", "id": 3, "ref": "r1"})
	a1.expect(TypeAck)
	a2.expect(TypeRead)
	a1.send(map[string]any{"type": "read", "room": "r", "id": 2, "ref": "r2"}) // does not move: not published
	a1.expect(TypeAck)
	if _, reads := b.publications(); !slices.Equal(reads, []string{"alice/r/3"}) {
		t.Fatalf("published reads %v, want [alice/r/3]", reads)
	}

	b.handler().Read("alice", "r", 5)
	for _, c := range []*wsClient{a1, a2} {
		if f := c.expect(TypeRead); f.Room != "r" || f.ID != 5 {
			t.Fatalf("alice's tab got %+v, want read r 5", f)
		}
	}
	bob.quiet()
	b.handler().Read("nobody", "r", 5)
	a1.quiet()

	h.hub.acc.Store(access.New(access.ReadWrite, []access.Rule{{User: "alice", Pattern: "r", Perm: access.Deny}}, nil))
	b.handler().Read("alice", "r", 5)
	a2.quiet()
}
