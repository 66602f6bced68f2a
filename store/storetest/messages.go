package storetest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/chatctl/chatctl/store"
)

// messageCases: rooms and messages (gapless ids, history, epochs).
var messageCases = []Case{
	{"AppendGaplessConcurrent", func(e *Env) {
		// 2 handles (processes, where the backend has them) × 8 senders
		// × 3 rooms: each room's ids are exactly 1..n.
		const senders, each = 8, 20
		rooms := []string{"a", "b.c", "d-e"}
		var wg sync.WaitGroup
		for h := 0; h < 2; h++ {
			s := e.Handle()
			for i := 0; i < senders; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for j := 0; j < each; j++ {
						room := rooms[(i+j)%len(rooms)]
						if _, err := s.AppendMessage(context.Background(), room, "alice", fmt.Sprint(h, i, j), e.Clock.Now()); err != nil {
							e.Error(err)
							return
						}
					}
				}()
			}
		}
		wg.Wait()
		total := 0
		for _, r := range rooms {
			ms, err := e.S.MessagesAfter(r, 0, 1000)
			e.must(err)
			for i, m := range ms {
				if m.ID != uint64(i+1) || m.Room != r {
					e.Fatalf("room %s: message %d has id %d (room %q), want %d", r, i, m.ID, m.Room, i+1)
				}
			}
			total += len(ms)
		}
		if total != 2*senders*each {
			e.Fatalf("stored %d messages, want %d", total, 2*senders*each)
		}
	}},

	{"AppendGaplessManyRooms", func(e *Env) {
		// 2 handles × 16 senders, each message to a random one of 40
		// rooms: batches hold many rooms, which two processes lock in
		// one order, so none deadlocks; each room's ids are exactly 1..n,
		// and the acks name them.
		const senders, each, rooms = 16, 15, 40
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex // guards acked
			acked = map[string][]uint64{}
		)
		for h := 0; h < 2; h++ {
			s := e.Handle()
			for i := 0; i < senders; i++ {
				wg.Go(func() {
					rng := rand.New(rand.NewPCG(uint64(h), uint64(i)))
					for j := 0; j < each; j++ {
						room := fmt.Sprint("room", rng.IntN(rooms))
						m, err := s.AppendMessage(context.Background(), room, "alice", fmt.Sprint(h, i, j), e.Clock.Now())
						if err != nil {
							e.Error(err)
							return
						}
						if m.Room != room {
							e.Errorf("appended to %s, got back room %q", room, m.Room)
						}
						mu.Lock()
						acked[room] = append(acked[room], m.ID)
						mu.Unlock()
					}
				})
			}
		}
		wg.Wait()
		total := 0
		for room, ids := range acked {
			slices.Sort(ids)
			for i, id := range ids {
				if id != uint64(i+1) {
					e.Fatalf("room %s: acked ids %v, want 1..n each once", room, ids)
				}
			}
			ms, err := e.S.MessagesAfter(room, 0, 1000)
			e.must(err)
			if len(ms) != len(ids) || ms[len(ms)-1].ID != uint64(len(ids)) {
				e.Fatalf("room %s: stored %d messages (last id %v), acked %d", room, len(ms), ms[len(ms)-1].ID, len(ids))
			}
			total += len(ids)
		}
		if total != 2*senders*each {
			e.Fatalf("acked %d messages, want %d", total, 2*senders*each)
		}
	}},

	{"MessagesHistory", func(e *Env) {
		// Ids start at 1 per room and increase by one; pages read back
		// oldest first, from any handle.
		for i := 1; i <= 10; i++ {
			m := e.append(e.S, "general", "alice", fmt.Sprint("m", i))
			if m.ID != uint64(i) || m.Room != "general" || m.From != "alice" || m.Text != fmt.Sprint("m", i) {
				e.Fatalf("append %d = %+v", i, m)
			}
		}
		if m := e.append(e.S, "other", "bob", "x"); m.ID != 1 {
			e.Fatalf("ids are per room: the first message of another room got %d", m.ID)
		}
		r := e.Handle()
		tests := []struct {
			name string
			got  func() ([]store.Message, error)
			want []uint64
		}{
			{"AfterSeven", func() ([]store.Message, error) { return r.MessagesAfter("general", 7, 50) }, []uint64{8, 9, 10}},
			{"AfterZeroLimited", func() ([]store.Message, error) { return r.MessagesAfter("general", 0, 3) }, []uint64{1, 2, 3}},
			{"AfterEnd", func() ([]store.Message, error) { return r.MessagesAfter("general", 10, 50) }, nil},
			{"AfterBeyondEnd", func() ([]store.Message, error) { return r.MessagesAfter("general", 99, 50) }, nil},
			{"Newest", func() ([]store.Message, error) { return r.MessagesBefore("general", 0, 3) }, []uint64{8, 9, 10}},
			{"BeforeFive", func() ([]store.Message, error) { return r.MessagesBefore("general", 5, 2) }, []uint64{3, 4}},
			{"BeforeBeyondEnd", func() ([]store.Message, error) { return r.MessagesBefore("general", 100, 2) }, []uint64{9, 10}},
			{"BeforeOne", func() ([]store.Message, error) { return r.MessagesBefore("general", 1, 5) }, nil},
			{"AllBefore", func() ([]store.Message, error) { return r.MessagesBefore("general", 0, 50) }, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
			{"OtherRoom", func() ([]store.Message, error) { return r.MessagesAfter("other", 0, 50) }, []uint64{1}},
			{"UnknownRoomAfter", func() ([]store.Message, error) { return r.MessagesAfter("nope", 0, 5) }, nil},
			{"UnknownRoomBefore", func() ([]store.Message, error) { return r.MessagesBefore("nope", 0, 5) }, nil},
		}
		for _, tc := range tests {
			ms, err := tc.got()
			e.must(err)
			if got := ids(ms); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				e.Errorf("%s: ids %v, want %v", tc.name, got, tc.want)
			}
			for _, m := range ms {
				if m.Epoch != "" {
					e.Errorf("%s: a read message carries epoch %q; reads leave it empty", tc.name, m.Epoch)
				}
			}
		}
		ms, err := r.MessagesAfter("general", 0, 1)
		e.must(err)
		if len(ms) != 1 || ms[0].From != "alice" || ms[0].Text != "m1" || ms[0].Room != "general" || !ms[0].TS.Equal(Start) {
			e.Fatalf("first message = %+v, want m1 from alice at %v", ms, Start)
		}
	}},

	{"MessagesLimits", func(e *Env) {
		// A limit below 1 reads nothing; ids past the largest a backend
		// holds are fine (the whole history is before them, nothing
		// after).
		for range 3 {
			e.append(e.S, "r", "a", "x")
		}
		tests := []struct {
			name string
			got  func() ([]store.Message, error)
			want []uint64
		}{
			{"AfterLimitZero", func() ([]store.Message, error) { return e.S.MessagesAfter("r", 0, 0) }, nil},
			{"AfterLimitNegative", func() ([]store.Message, error) { return e.S.MessagesAfter("r", 0, -1) }, nil},
			{"BeforeLimitZero", func() ([]store.Message, error) { return e.S.MessagesBefore("r", 0, 0) }, nil},
			{"BeforeLimitNegative", func() ([]store.Message, error) { return e.S.MessagesBefore("r", 0, -5) }, nil},
			{"BeforeMax", func() ([]store.Message, error) { return e.S.MessagesBefore("r", math.MaxUint64, 2) }, []uint64{2, 3}},
			{"BeforeMaxInt64", func() ([]store.Message, error) { return e.S.MessagesBefore("r", math.MaxInt64, 5) }, []uint64{1, 2, 3}},
			{"AfterMax", func() ([]store.Message, error) { return e.S.MessagesAfter("r", math.MaxUint64, 5) }, nil},
			{"AfterMaxInt64", func() ([]store.Message, error) { return e.S.MessagesAfter("r", math.MaxInt64, 5) }, nil},
		}
		for _, tc := range tests {
			ms, err := tc.got()
			if err != nil {
				e.Errorf("%s: %v", tc.name, err)
				continue
			}
			if got := ids(ms); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				e.Errorf("%s: ids %v, want %v", tc.name, got, tc.want)
			}
		}
	}},

	{"MessagesTimestamp", func(e *Env) {
		// What AppendMessage returns (the ack, the broadcast) equals what
		// history returns later, in UTC, whatever precision the backend
		// keeps (at least the microsecond).
		at := time.Date(2026, 1, 2, 4, 5, 6, 123456789, time.FixedZone("X", 3600))
		m, err := e.S.AppendMessage(context.Background(), "r", "alice", "hi", at)
		e.must(err)
		if m.TS.Location() != time.UTC || m.TS.Sub(at).Abs() >= time.Microsecond {
			e.Fatalf("appended ts %v, want %v in UTC to the microsecond", m.TS, at)
		}
		for _, s := range []store.Store{e.S, e.Handle()} {
			ms, err := s.MessagesAfter("r", 0, 1)
			e.must(err)
			if len(ms) != 1 || !ms[0].TS.Equal(m.TS) || ms[0].TS.Location() != time.UTC {
				e.Fatalf("history %+v, want ts %v (as appended) in UTC", ms, m.TS)
			}
			before, err := s.MessagesBefore("r", 0, 1)
			e.must(err)
			if len(before) != 1 || !before[0].TS.Equal(m.TS) {
				e.Fatalf("history before %+v, want ts %v", before, m.TS)
			}
		}
	}},

	{"MessagesText", func(e *Env) {
		// Text round-trips; bytes that are not UTF-8 are stored as U+FFFD,
		// one each (as JSON does); a text the backend cannot store fails
		// alone: the messages committed with it keep their ids, gapless.
		text := "héllo 👋 \"quoted\" <b> \\ \n\t end"
		m := e.append(e.S, "r", "alice", text)
		ms, err := e.Handle().MessagesAfter("r", 0, 5)
		e.must(err)
		if len(ms) != 1 || ms[0].Text != text || m.Text != text {
			e.Fatalf("text %q came back as %+v", text, ms)
		}
		e.append(e.S, "r", "alice", "a\xffb\xfe\xfdc")
		ms, err = e.S.MessagesAfter("r", 1, 5)
		e.must(err)
		if len(ms) != 1 || ms[0].Text != "a\uFFFDb\uFFFD\uFFFDc" {
			e.Fatalf("text with bad UTF-8 stored as %+v, want U+FFFD for each bad byte", ms)
		}

		const n = 30
		var wg sync.WaitGroup
		results := make([]store.Message, n)
		errs := make([]error, n)
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				t := fmt.Sprint("ok ", i)
				if i == n/2 {
					t = "nul \x00 inside"
				}
				<-start
				results[i], errs[i] = e.S.AppendMessage(context.Background(), "burst", "alice", t, e.Clock.Now())
			})
		}
		close(start)
		wg.Wait()
		var acked []uint64
		for i := range n {
			if errs[i] != nil {
				if i != n/2 {
					e.Fatalf("message %d failed with the NUL one: %v", i, errs[i])
				}
				continue
			}
			acked = append(acked, results[i].ID)
		}
		slices.Sort(acked)
		ms, err = e.S.MessagesAfter("burst", 0, 100)
		e.must(err)
		if fmt.Sprint(acked) != fmt.Sprint(ids(ms)) || len(ms) == 0 || ms[len(ms)-1].ID != uint64(len(ms)) {
			e.Fatalf("acked ids %v, stored %v: want the same, 1..n", acked, ids(ms))
		}
		for _, m := range ms {
			want := results[slices.IndexFunc(results, func(r store.Message) bool { return r.ID == m.ID })].Text
			if m.Text != want {
				e.Fatalf("message %d holds %q, want %q", m.ID, m.Text, want)
			}
		}

		// A time no backend can store is refused and uses no id.
		last := ms[len(ms)-1].ID
		if m, err := e.S.AppendMessage(context.Background(), "burst", "alice", "far", time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)); err == nil {
			e.Fatalf("append in year 10000: %+v, want an error", m)
		}
		if m := e.append(e.S, "burst", "alice", "next"); m.ID != last+1 {
			e.Fatalf("id after a refused time: %d, want %d", m.ID, last+1)
		}
	}},

	{"MessagesRetention", func(e *Env) {
		// The count bound drops the oldest as new ones come, pruning by
		// age drops the old ones, and ids are never reused.
		e.S.SetRetention(store.Retention{MaxPerRoom: 3})
		for range 5 {
			e.append(e.S, "r", "a", "x")
			e.Clock.Add(time.Minute)
		}
		ms, err := e.S.MessagesAfter("r", 0, 10)
		e.must(err)
		if fmt.Sprint(ids(ms)) != "[3 4 5]" {
			e.Fatalf("kept %v, want ids 3..5", ids(ms))
		}
		// Now messages are 3, 2 and 1 minutes old: keep the last 90 s.
		n, err := e.S.PruneMessages(90 * time.Second)
		if err != nil || n != 2 {
			e.Fatalf("pruned %d, %v; want 2", n, err)
		}
		rooms, err := e.S.Rooms()
		e.must(err)
		if len(rooms) != 1 || rooms[0].Messages != 1 || rooms[0].LastID != 5 {
			e.Fatalf("room after prune: %+v, want 1 message, last id 5", rooms)
		}
		if m := e.append(e.S, "r", "a", "y"); m.ID != 6 {
			e.Fatalf("id after prune %d, want 6", m.ID)
		}

		// A burst into a new room commits together (on one handle): the
		// bound holds all the same, keeping the newest.
		const burst = 12
		var wg sync.WaitGroup
		for i := range burst {
			wg.Go(func() {
				if _, err := e.S.AppendMessage(context.Background(), "burst", "a", fmt.Sprint(i), e.Clock.Now()); err != nil {
					e.Error(err)
				}
			})
		}
		wg.Wait()
		ms, err = e.S.MessagesAfter("burst", 0, 50)
		e.must(err)
		if fmt.Sprint(ids(ms)) != fmt.Sprint([]uint64{burst - 2, burst - 1, burst}) {
			e.Fatalf("burst kept %v, want the newest 3 of 1..%d", ids(ms), burst)
		}
		rooms, err = e.S.Rooms()
		e.must(err)
		if len(rooms) != 2 || rooms[0].Name != "burst" || rooms[0].Messages != 3 || rooms[0].LastID != burst {
			e.Fatalf("rooms after the burst: %+v", rooms)
		}

		// No bound: everything is kept again.
		e.S.SetRetention(store.Retention{})
		for range 4 {
			e.append(e.S, "burst", "a", "z")
		}
		if ms, _ := e.S.MessagesAfter("burst", 0, 50); len(ms) != 7 {
			e.Fatalf("without a bound kept %d messages, want 7", len(ms))
		}
	}},

	{"MessagesPruneByAge", func(e *Env) {
		// Each room loses its messages older than the cutoff; a room
		// pruned empty stays listed with its last id, and its next
		// message continues from there.
		for i := range 6 {
			e.append(e.S, "a", "u", fmt.Sprint("a", i))
			if i < 2 {
				e.append(e.S, "b", "u", fmt.Sprint("b", i))
			}
			e.Clock.Add(time.Minute)
		}
		e.append(e.S, "c", "u", "fresh")
		// Now: a has 6..1 min old, b 6 and 5, c 0.
		if n, err := e.S.PruneMessages(time.Hour); err != nil || n != 0 {
			e.Fatalf("prune with nothing old: %d, %v", n, err)
		}
		n, err := e.Handle().PruneMessages(3*time.Minute + 30*time.Second)
		if err != nil || n != 3+2 {
			e.Fatalf("pruned %d, %v; want 5", n, err)
		}
		rooms, err := e.S.Rooms()
		e.must(err)
		got := fmt.Sprint(roomsSummary(rooms))
		if want := "[a:3/6 b:0/2 c:1/1]"; got != want {
			e.Fatalf("rooms after prune %s, want %s (name:messages/last id)", got, want)
		}
		ms, err := e.S.MessagesAfter("a", 0, 10)
		e.must(err)
		if fmt.Sprint(ids(ms)) != "[4 5 6]" {
			e.Fatalf("room a kept %v, want 4..6", ids(ms))
		}
		if m := e.append(e.S, "b", "u", "again"); m.ID != 3 {
			e.Fatalf("next id of a room pruned empty: %d, want 3", m.ID)
		}
		if n, err := e.S.PruneMessages(24 * time.Hour); err != nil || n != 0 {
			e.Fatalf("prune again: %d, %v", n, err)
		}
		// A cutoff of now takes everything older than now: a's three;
		// b's and c's messages are from now.
		if n, err := e.S.PruneMessages(0); err != nil || n != 3 {
			e.Fatalf("prune with no age: %d, %v; want 3", n, err)
		}
	}},

	{"MessagesGroupCommit", func(e *Env) {
		// A lone sender is never held back waiting for company (each
		// sequential append is its own commit), while a crowd of
		// concurrent senders shares a few commits.
		ctx := context.Background()
		const n = 20
		before := e.S.MessageCommits()
		for i := range n {
			if _, err := e.S.AppendMessage(ctx, "r", "u", fmt.Sprint(i), e.Clock.Now()); err != nil {
				e.Fatal(err)
			}
		}
		if got := e.S.MessageCommits() - before; got != n {
			e.Errorf("%d sequential appends made %d commits, want one each", n, got)
		}
		const crowd = 600
		before = e.S.MessageCommits()
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range crowd {
			wg.Go(func() {
				<-start
				if _, err := e.S.AppendMessage(ctx, "crowd", "u", fmt.Sprint(i), e.Clock.Now()); err != nil {
					e.Error(err)
				}
			})
		}
		close(start)
		wg.Wait()
		if got := e.S.MessageCommits() - before; got > crowd/10 {
			e.Errorf("%d concurrent appends made %d commits, want far fewer", crowd, got)
		}
		rooms, err := e.S.Rooms()
		e.must(err)
		if len(rooms) != 2 || rooms[0].Name != "crowd" || rooms[0].LastID != crowd || rooms[0].Messages != crowd {
			e.Errorf("rooms after the crowd: %+v", rooms)
		}
	}},

	{"RoomEpoch", func(e *Env) {
		// A room has an epoch from its first message, kept while it
		// lives and seen by every handle; created again after DeleteRoom
		// it has a new one and its ids restart at 1.
		other := e.Handle()
		if ep, err := e.S.RoomEpoch("general"); err != nil || ep != "" {
			e.Fatalf("epoch of a room without history = %q, %v", ep, err)
		}
		m1 := e.append(e.S, "general", "alice", "one")
		first := m1.Epoch
		if first == "" {
			e.Fatal("no epoch on the first message")
		}
		m2 := e.append(other, "general", "alice", "two")
		if ep, _ := other.RoomEpoch("general"); m2.ID != 2 || m2.Epoch != first || ep != first {
			e.Fatalf("epoch changed: %q then %q (id %d), RoomEpoch %q", first, m2.Epoch, m2.ID, ep)
		}
		if m := e.append(e.S, "side", "alice", "x"); m.Epoch == "" || m.Epoch == first {
			e.Fatalf("another room's epoch %q (general's %q): want its own", m.Epoch, first)
		}
		e.must(e.S.DeleteRoom("general"))
		if ep, err := other.RoomEpoch("general"); err != nil || ep != "" {
			e.Fatalf("epoch of a deleted room = %q, %v; want empty", ep, err)
		}
		m3 := e.append(other, "general", "bob", "again")
		if m3.ID != 1 || m3.Epoch == "" || m3.Epoch == first {
			e.Fatalf("re-created room: id %d epoch %q (old %q)", m3.ID, m3.Epoch, first)
		}
		for _, s := range []store.Store{e.S, other} {
			if ep, _ := s.RoomEpoch("general"); ep != m3.Epoch {
				e.Fatalf("RoomEpoch = %q, want %q", ep, m3.Epoch)
			}
		}
		ms, err := e.S.MessagesAfter("general", 0, 10)
		e.must(err)
		if len(ms) != 1 || ms[0].Text != "again" || ms[0].ID != 1 {
			e.Fatalf("history of the re-created room: %+v, want only its own message", ms)
		}
	}},

	{"RoomsListing", func(e *Env) {
		// Rooms lists every room with history, names in byte order, with
		// its count, last id and creation time (its first message's).
		if rooms, err := e.S.Rooms(); err != nil || len(rooms) != 0 {
			e.Fatalf("rooms of an empty store: %+v, %v", rooms, err)
		}
		names := []string{"zz", "a_b", "a.b", "a-b", "a", "9", "b"}
		for i, name := range names {
			for range i + 1 {
				e.append(e.S, name, "u", "x")
			}
			e.Clock.Add(time.Second)
		}
		rooms, err := e.Handle().Rooms()
		e.must(err)
		got := fmt.Sprint(roomsSummary(rooms))
		if want := "[9:6/6 a:5/5 a-b:4/4 a.b:3/3 a_b:2/2 b:7/7 zz:1/1]"; got != want {
			e.Fatalf("rooms %s, want %s (name:messages/last id)", got, want)
		}
		for _, r := range rooms {
			i := slices.Index(names, r.Name)
			if want := Start.Add(time.Duration(i) * time.Second); !r.CreatedAt.Equal(want) {
				e.Errorf("room %s created at %v, want %v", r.Name, r.CreatedAt, want)
			}
		}
	}},

	{"Heads", func(e *Env) {
		// Heads gives each named room's last id and epoch, on every
		// handle; rooms without history are left out; a deleted and
		// re-created room has a new epoch and restarts its ids; retention
		// does not move a head back.
		if hs, err := e.S.Heads(nil); err != nil || len(hs) != 0 {
			e.Fatalf("heads of no rooms: %v, %v", hs, err)
		}
		for range 3 {
			e.append(e.S, "a", "u", "x")
		}
		m := e.append(e.S, "b.c", "u", "y")
		other := e.Handle()
		e.append(other, "a", "u", "z")
		for _, s := range []store.Store{e.S, other} {
			hs, err := s.Heads([]string{"a", "b.c", "none"})
			e.must(err)
			if len(hs) != 2 || hs["a"].LastID != 4 || hs["b.c"].LastID != 1 || hs["b.c"].Epoch != m.Epoch || hs["a"].Epoch == "" {
				e.Fatalf("heads: %+v", hs)
			}
		}
		e.S.SetRetention(store.Retention{MaxPerRoom: 1})
		e.append(e.S, "a", "u", "w")
		e.S.SetRetention(store.Retention{})
		old, err := e.S.Heads([]string{"a"})
		e.must(err)
		if old["a"].LastID != 5 {
			e.Fatalf("head after retention: %+v", old)
		}
		e.must(e.S.DeleteRoom("a"))
		if hs, err := other.Heads([]string{"a"}); err != nil || len(hs) != 0 {
			e.Fatalf("heads of a deleted room: %v, %v", hs, err)
		}
		n := e.append(other, "a", "u", "again")
		hs, err := e.S.Heads([]string{"a"})
		e.must(err)
		if hs["a"].LastID != 1 || hs["a"].Epoch != n.Epoch || n.Epoch == old["a"].Epoch {
			e.Fatalf("heads of a re-created room: %+v (old %+v, new epoch %s)", hs, old, n.Epoch)
		}
	}},

	{"DeleteRoom", func(e *Env) {
		// DeleteRoom removes the room and its history, on every handle;
		// a missing room is ErrNotFound.
		if err := e.S.DeleteRoom("nope"); !errors.Is(err, store.ErrNotFound) {
			e.Fatalf("delete a missing room: %v, want ErrNotFound", err)
		}
		for range 3 {
			e.append(e.S, "gone", "u", "x")
		}
		e.append(e.S, "kept", "u", "y")
		other := e.Handle()
		e.must(other.DeleteRoom("gone"))
		if err := e.S.DeleteRoom("gone"); !errors.Is(err, store.ErrNotFound) {
			e.Fatalf("delete twice: %v, want ErrNotFound", err)
		}
		rooms, err := e.S.Rooms()
		e.must(err)
		if got := fmt.Sprint(roomsSummary(rooms)); got != "[kept:1/1]" {
			e.Fatalf("rooms after delete: %s", got)
		}
		for _, s := range []store.Store{e.S, other} {
			if ms, err := s.MessagesBefore("gone", 0, 10); err != nil || len(ms) != 0 {
				e.Fatalf("history of a deleted room: %+v, %v", ms, err)
			}
		}
		if m := e.append(e.S, "gone", "u", "new"); m.ID != 1 {
			e.Fatalf("first id of the room created again: %d, want 1", m.ID)
		}
	}},

	{"AppendFailedCommitUsesNoID", func(e *Env) {
		// A commit that fails fails every append in it and uses no id:
		// the next one that commits gets the next id, and a room created
		// by the failed commit does not exist.
		s := e.Handle()
		e.append(s, "r", "u", "1")
		e.append(s, "r", "u", "2")
		fault := errors.New("disk full (test)")
		e.Fault(s, fault)
		const n = 10
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				room := "r"
				if i%2 == 1 {
					room = "new"
				}
				m, err := s.AppendMessage(context.Background(), room, "u", "lost", e.Clock.Now())
				if !errors.Is(err, fault) {
					e.Errorf("append during the fault: %+v, %v; want an error wrapping the fault", m, err)
				}
			})
		}
		wg.Wait()
		if err := s.LastWriteErr(); !errors.Is(err, fault) {
			e.Errorf("LastWriteErr after the failed commit: %v, want the fault", err)
		}
		e.Fault(s, nil)
		if m := e.append(s, "r", "u", "3"); m.ID != 3 {
			e.Fatalf("id after a failed commit: %d, want 3", m.ID)
		}
		if err := s.LastWriteErr(); err != nil {
			e.Errorf("LastWriteErr after a commit: %v, want nil", err)
		}
		ms, err := e.S.MessagesAfter("r", 0, 50)
		e.must(err)
		if fmt.Sprint(ids(ms)) != "[1 2 3]" || ms[2].Text != "3" {
			e.Fatalf("stored %+v, want 1, 2, 3 and no lost message", ms)
		}
		if ep, err := e.S.RoomEpoch("new"); err != nil || ep != "" {
			e.Fatalf("room created by the failed commit has epoch %q, %v", ep, err)
		}
		rooms, err := e.S.Rooms()
		e.must(err)
		if got := fmt.Sprint(roomsSummary(rooms)); got != "[r:3/3]" {
			e.Fatalf("rooms after the failed commit: %s, want [r:3/3]", got)
		}
		if m := e.append(s, "new", "u", "first"); m.ID != 1 {
			e.Fatalf("first id of the room the failed commit began: %d, want 1", m.ID)
		}
	}},

	{"AppendClose", func(e *Env) {
		// Close commits what is queued: every append answered before or
		// during Close is committed, with ids 1..n; after Close appends
		// fail.
		s := e.Handle()
		const senders = 16
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex // guards acked
			acked []uint64
		)
		started := make(chan struct{}, senders)
		for i := range senders {
			wg.Go(func() {
				for j := 0; ; j++ {
					m, err := s.AppendMessage(context.Background(), "r", "u", fmt.Sprint(i, j), e.Clock.Now())
					if j == 0 {
						started <- struct{}{}
					}
					if err != nil {
						return
					}
					mu.Lock()
					acked = append(acked, m.ID)
					mu.Unlock()
				}
			})
		}
		for range senders {
			<-started
		}
		e.must(s.Close())
		wg.Wait()
		if _, err := s.AppendMessage(context.Background(), "r", "u", "late", e.Clock.Now()); err == nil {
			e.Fatal("append after Close succeeded")
		}
		slices.Sort(acked)
		for i, id := range acked {
			if id != uint64(i+1) {
				e.Fatalf("acked ids %v: want 1..n, each once", acked)
			}
		}
		if e.Shared() {
			ms, err := e.S.MessagesAfter("r", 0, len(acked)+100)
			e.must(err)
			if fmt.Sprint(ids(ms)) != fmt.Sprint(acked) {
				e.Fatalf("stored ids %v, acked %v: want the same", ids(ms), acked)
			}
		}
	}},
}

// append appends text to room on s as from at the clock's time, failing
// the case on an error.
func (e *Env) append(s store.Store, room, from, text string) store.Message {
	e.Helper()
	m, err := s.AppendMessage(context.Background(), room, from, text, e.Clock.Now())
	if err != nil {
		e.Fatalf("append to %s: %v", room, err)
	}
	return m
}

// ids returns the ids of ms.
func ids(ms []store.Message) []uint64 {
	var out []uint64
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}

// roomsSummary describes rooms as name:messages/last id.
func roomsSummary(rooms []store.Room) []string {
	var out []string
	for _, r := range rooms {
		out = append(out, fmt.Sprintf("%s:%d/%d", r.Name, r.Messages, r.LastID))
	}
	return out
}
