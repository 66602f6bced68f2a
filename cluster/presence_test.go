package cluster

import (
	"encoding/binary"
	"hash/fnv"
	"reflect"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

// at returns t0 plus d: the fake clock of the presence tests.
func at(d time.Duration) time.Time { return t0.Add(d) }

func join(room, user string) Change  { return Change{Room: room, User: user, Present: true} }
func leave(room, user string) Change { return Change{Room: room, User: user} }

// Ensure the view counts a user once across tabs on different nodes: the
// cluster-wide count crosses 0↔1 only with the first and the last
// connection, wherever they are, and members is the union.
func TestPresenceUnion(t *testing.T) {
	type step struct {
		name    string
		local   *Entry  // SetLocal on node "a"
		remote  *Roster // Apply from another node
		now     time.Duration
		expire  bool // Expire at now
		want    []Change
		members []string // of room "r" after the step
	}
	e := func(room, user string, n int) *Entry { return &Entry{Room: room, User: user, Conns: n} }
	steps := []step{
		{name: "local first tab", local: e("r", "alice", 1), want: []Change{join("r", "alice")}, members: []string{"alice"}},
		{name: "local second tab", local: e("r", "alice", 2), members: []string{"alice"}},
		{name: "remote tab of alice", now: time.Second,
			remote:  &Roster{Node: "b", Inc: 1, Seq: 1, Full: true, Entries: []Entry{{Room: "r", User: "alice", Conns: 1}}},
			members: []string{"alice"}},
		{name: "local tabs close", local: e("r", "alice", 0), members: []string{"alice"}},
		{name: "remote bob joins (delta)", now: 2 * time.Second,
			remote:  &Roster{Node: "b", Inc: 1, Seq: 2, Entries: []Entry{{Room: "r", User: "bob", Conns: 1}}},
			want:    []Change{join("r", "bob")},
			members: []string{"alice", "bob"}},
		{name: "repeated delta is ignored", now: 2 * time.Second,
			remote:  &Roster{Node: "b", Inc: 1, Seq: 2, Entries: []Entry{{Room: "r", User: "bob", Conns: 0}}},
			members: []string{"alice", "bob"}},
		{name: "third node has bob too", now: 3 * time.Second,
			remote:  &Roster{Node: "c", Inc: 7, Seq: 1, Full: true, Entries: []Entry{{Room: "r", User: "bob", Conns: 3}, {Room: "s", User: "carol", Conns: 1}}},
			want:    []Change{join("s", "carol")},
			members: []string{"alice", "bob"}},
		{name: "full roster of b drops alice", now: 4 * time.Second,
			remote:  &Roster{Node: "b", Inc: 1, Seq: 3, Full: true, Entries: []Entry{{Room: "r", User: "bob", Conns: 1}}},
			want:    []Change{leave("r", "alice")},
			members: []string{"bob"}},
		{name: "b goes silent, c keeps heartbeating", now: 9 * time.Second,
			remote:  &Roster{Node: "c", Inc: 7, Seq: 2, Full: true, Entries: []Entry{{Room: "r", User: "bob", Conns: 3}, {Room: "s", User: "carol", Conns: 1}}},
			members: []string{"bob"}},
		{name: "not yet expired at exactly the TTL", now: 14 * time.Second, expire: true, members: []string{"bob"}},
		{name: "b expires: bob stays through c", now: 15 * time.Second, expire: true, members: []string{"bob"}},
		{name: "c says goodbye", now: 16 * time.Second,
			remote:  &Roster{Node: "c", Inc: 7, Seq: 3, Bye: true},
			want:    []Change{leave("r", "bob"), leave("s", "carol")},
			members: []string{}},
		{name: "c restarted (new incarnation) replaces its old state", now: 17 * time.Second,
			remote:  &Roster{Node: "c", Inc: 8, Seq: 1, Full: true, Entries: []Entry{{Room: "r", User: "dave", Conns: 1}}},
			want:    []Change{join("r", "dave")},
			members: []string{"dave"}},
		{name: "a late message of the old incarnation changes nothing", now: 17 * time.Second,
			remote:  &Roster{Node: "c", Inc: 7, Seq: 99, Full: true},
			members: []string{"dave"}},
		{name: "own roster echoed back changes nothing", now: 17 * time.Second,
			remote:  &Roster{Node: "a", Inc: 1, Seq: 1, Full: true},
			members: []string{"dave"}},
		{name: "c silent past the TTL", now: 40 * time.Second, expire: true,
			want: []Change{leave("r", "dave")}, members: []string{}},
	}
	p := NewPresence("a", 10*time.Second)
	for _, s := range steps {
		var got []Change
		switch {
		case s.local != nil:
			if c, ok := p.SetLocal(s.local.Room, s.local.User, s.local.Conns, 0); ok {
				got = []Change{c}
			}
		case s.remote != nil:
			got = p.Apply(s.remote, at(s.now))
		case s.expire:
			got = p.Expire(at(s.now))
		}
		if len(got) == 0 {
			got = nil
		}
		if !reflect.DeepEqual(got, s.want) {
			t.Fatalf("%s: changes %+v, want %+v", s.name, got, s.want)
		}
		if m := p.Members("r"); !reflect.DeepEqual(m, s.members) {
			t.Fatalf("%s: members %v, want %v", s.name, m, s.members)
		}
		for _, u := range []string{"alice", "bob", "dave"} {
			if p.Present("r", u) != contains(s.members, u) {
				t.Fatalf("%s: Present(r, %s) = %v", s.name, u, p.Present("r", u))
			}
		}
	}
	if n := p.Nodes(); !reflect.DeepEqual(n, []string{"a"}) {
		t.Errorf("nodes at the end = %v, want only a", n)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Ensure rosters freeze while the broker is disconnected: the caller does
// not expire, and Thaw on reconnect gives every node a fresh TTL.
func TestPresenceThaw(t *testing.T) {
	p := NewPresence("a", 10*time.Second)
	p.Apply(&Roster{Node: "b", Inc: 1, Seq: 1, Full: true, Entries: []Entry{{Room: "r", User: "bob", Conns: 1}}}, at(0))
	// Disconnected from 5s to 60s: no Expire calls. Reconnected at 60s.
	p.Thaw(at(60 * time.Second))
	if cs := p.Expire(at(65 * time.Second)); len(cs) != 0 || !p.Present("r", "bob") {
		t.Fatalf("expired right after the thaw: %v", cs)
	}
	if cs := p.Expire(at(71 * time.Second)); !reflect.DeepEqual(cs, []Change{leave("r", "bob")}) {
		t.Fatalf("not expired a TTL after the thaw: %v", cs)
	}
}

// Ensure a full roster in parts replaces only the keys within each part's
// bounds, and that a part's entries outside its bounds are ignored.
func TestPresenceParts(t *testing.T) {
	p := NewPresence("a", time.Minute)
	p.Apply(&Roster{Node: "b", Inc: 1, Seq: 1, Full: true, Entries: []Entry{
		{Room: "a", User: "u1", Conns: 1}, {Room: "m", User: "u2", Conns: 1}, {Room: "z", User: "u3", Conns: 1},
	}}, at(0))
	// Part 1 of 2: [start, m/u2): a/u1 gone, x/u9 out of bounds.
	cs := p.Apply(&Roster{Node: "b", Inc: 1, Seq: 2, Full: true, To: &Key{"m", "u2"}, Entries: []Entry{
		{Room: "b", User: "u4", Conns: 2}, {Room: "x", User: "u9", Conns: 1},
	}}, at(time.Second))
	if want := []Change{leave("a", "u1"), join("b", "u4")}; !reflect.DeepEqual(cs, want) {
		t.Fatalf("part 1: %v, want %v", cs, want)
	}
	// Part 2 of 2: [m/u2, end): z/u3 gone, m/u2 stays.
	cs = p.Apply(&Roster{Node: "b", Inc: 1, Seq: 3, Full: true, From: &Key{"m", "u2"}, Entries: []Entry{
		{Room: "m", User: "u2", Conns: 1},
	}}, at(time.Second))
	if want := []Change{leave("z", "u3")}; !reflect.DeepEqual(cs, want) {
		t.Fatalf("part 2: %v, want %v", cs, want)
	}
	for room, want := range map[string][]string{"a": {}, "b": {"u4"}, "m": {"u2"}, "x": {}, "z": {}} {
		if got := p.Members(room); !reflect.DeepEqual(got, want) {
			t.Errorf("members of %s = %v, want %v", room, got, want)
		}
	}
}

// Ensure user totals (room "") add up over nodes, report every change,
// and tell which node opened the newest connection (the per-user cap).
func TestPresenceConns(t *testing.T) {
	p := NewPresence("a", time.Minute)
	if c, ok := p.SetLocal("", "alice", 2, 100); !ok || c != (Change{User: "alice", Conns: 2}) {
		t.Fatalf("SetLocal = %+v %v", c, ok)
	}
	cs := p.Apply(&Roster{Node: "b", Inc: 1, Seq: 1, Entries: []Entry{{User: "alice", Conns: 15, Newest: 300}}}, at(0))
	if !reflect.DeepEqual(cs, []Change{{User: "alice", Conns: 17}}) {
		t.Fatalf("remote conns: %v", cs)
	}
	cs = p.Apply(&Roster{Node: "c", Inc: 1, Seq: 1, Entries: []Entry{{User: "alice", Conns: 1, Newest: 200}}}, at(90*time.Second))
	if !reflect.DeepEqual(cs, []Change{{User: "alice", Conns: 18}}) {
		t.Fatalf("remote conns: %v", cs)
	}
	if total, newest := p.Conns("alice"); total != 18 || newest != 300 {
		t.Fatalf("Conns = %d, %d; want 18, 300", total, newest)
	}
	if got := p.Members(""); len(got) != 1 {
		t.Fatalf("user totals are not a room: %v", got)
	}
	if e := p.LocalEntry("", "alice"); e.Conns != 2 || e.Newest != 100 {
		t.Fatalf("LocalEntry = %+v", e)
	}
	if cs := p.Expire(at(2 * time.Minute)); !reflect.DeepEqual(cs, []Change{{User: "alice", Conns: 3}}) {
		t.Fatalf("expiry of b: %v", cs)
	}
	if total, newest := p.Conns("alice"); total != 3 || newest != 200 {
		t.Fatalf("Conns after b expired = %d, %d; want 3, 200", total, newest)
	}
	if cs := p.Expire(at(3 * time.Minute)); !reflect.DeepEqual(cs, []Change{{User: "alice", Conns: 2}}) {
		t.Fatalf("expiry of c: %v", cs)
	}
	if total, newest := p.Conns("alice"); total != 2 || newest != 0 {
		t.Fatalf("Conns after expiry = %d, %d", total, newest)
	}
	if local := p.Local(); !reflect.DeepEqual(local, []Entry{{User: "alice", Conns: 2, Newest: 100}}) {
		t.Fatalf("Local = %+v", local)
	}
}

// Ensure a view agrees with a node's digest exactly when it holds the same
// entries for it: the sum is kept entry by entry through deltas, full
// parts and removals, and a lost delta, an extra entry, a changed count
// or another incarnation all disagree.
func TestPresenceAgrees(t *testing.T) {
	digest := func(inc uint64, es ...Entry) *Roster {
		r := &Roster{Node: "b", Inc: inc, Digest: true, Count: len(es)}
		for _, e := range es {
			r.Sum += entryHash(e)
		}
		return r
	}
	x := Entry{Room: "r", User: "x", Conns: 1}
	y := Entry{Room: "r", User: "y", Conns: 2}
	u := Entry{User: "x", Conns: 1, Newest: 7}
	now := time.Unix(0, 0)
	p := NewPresence("a", time.Minute)
	if p.Agrees(digest(1)) {
		t.Fatal("agrees with a node it never heard of")
	}
	p.Apply(&Roster{Node: "b", Inc: 1, Seq: 1, Entries: []Entry{x, y, u}}, now)
	p.Apply(&Roster{Node: "b", Inc: 1, Seq: 2, Entries: []Entry{{Room: "r", User: "y"}}}, now) // y leaves
	for _, tc := range []struct {
		name string
		r    *Roster
		want bool
	}{
		{"same entries", digest(1, x, u), true},
		{"a delta lost (y still there)", digest(1, x, y, u), false},
		{"an entry missing", digest(1, x), false},
		{"another count", digest(1, x, Entry{User: "x", Conns: 2, Newest: 7}), false},
		{"another newest", digest(1, x, Entry{User: "x", Conns: 1, Newest: 8}), false},
		{"another incarnation", digest(2, x, u), false},
	} {
		if got := p.Agrees(tc.r); got != tc.want {
			t.Errorf("%s: Agrees = %v, want %v", tc.name, got, tc.want)
		}
	}
	// A full part replaces the entries, and the sum with them.
	p.Apply(&Roster{Node: "b", Inc: 1, Seq: 3, Full: true, Entries: []Entry{y}}, now)
	if !p.Agrees(digest(1, y)) || p.Agrees(digest(1, x, u)) {
		t.Fatal("after a full roster of y alone, the view does not agree with it")
	}
}

// Ensure entryHash is FNV-1a over the fields as documented (the same in
// every process and version: nodes compare sums), and allocates nothing.
func TestEntryHash(t *testing.T) {
	e := Entry{Room: "r", User: "alice", Conns: 2, Newest: 7}
	h := fnv.New64a()
	h.Write([]byte("r\x00alice\x00"))
	var n [16]byte
	binary.LittleEndian.PutUint64(n[:8], 2)
	binary.LittleEndian.PutUint64(n[8:], 7)
	h.Write(n[:])
	if got, want := entryHash(e), h.Sum64(); got != want {
		t.Fatalf("entryHash = %#x, want FNV-1a %#x", got, want)
	}
	if a := testing.AllocsPerRun(100, func() { entryHash(e) }); a != 0 {
		t.Fatalf("entryHash allocates %v times", a)
	}
}
