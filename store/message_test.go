package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// Ensure ids start at 1 per room, increase by one, and pages read back.
func TestMessages(t *testing.T) {
	c := newClock()
	db := mustOpen(t, c)
	ctx := context.Background()
	for i := 1; i <= 10; i++ {
		m, err := db.AppendMessage(ctx, "general", "alice", fmt.Sprint("m", i), c.Now())
		if err != nil || m.ID != uint64(i) {
			t.Fatalf("append %d = %+v, %v", i, m, err)
		}
	}
	if m, _ := db.AppendMessage(ctx, "other", "bob", "x", c.Now()); m.ID != 1 {
		t.Fatalf("ids are per room: got %d", m.ID)
	}
	ids := func(ms []Message) (out []uint64) {
		for _, m := range ms {
			out = append(out, m.ID)
		}
		return out
	}
	tests := []struct {
		name string
		got  []Message
		want []uint64
	}{
		{"AfterSeven", must(db.MessagesAfter("general", 7, 50)), []uint64{8, 9, 10}},
		{"AfterZeroLimited", must(db.MessagesAfter("general", 0, 3)), []uint64{1, 2, 3}},
		{"AfterEnd", must(db.MessagesAfter("general", 10, 50)), nil},
		{"Newest", must(db.MessagesBefore("general", 0, 3)), []uint64{8, 9, 10}},
		{"BeforeFive", must(db.MessagesBefore("general", 5, 2)), []uint64{3, 4}},
		{"BeforeBeyondEnd", must(db.MessagesBefore("general", 100, 2)), []uint64{9, 10}},
		{"BeforeOne", must(db.MessagesBefore("general", 1, 5)), nil},
		{"UnknownRoom", must(db.MessagesAfter("nope", 0, 5)), nil},
	}
	for _, tc := range tests {
		if got := ids(tc.got); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s: ids %v, want %v", tc.name, got, tc.want)
		}
	}
	ms := must(db.MessagesAfter("general", 0, 1))
	if ms[0].From != "alice" || ms[0].Text != "m1" || ms[0].Room != "general" || !ms[0].TS.Equal(c.Now()) {
		t.Fatalf("message = %+v", ms[0])
	}
	rooms, _ := db.Rooms()
	if len(rooms) != 2 || rooms[0].Name != "general" || rooms[0].Messages != 10 || rooms[0].LastID != 10 {
		t.Fatalf("rooms = %+v", rooms)
	}
	if err := db.DeleteRoom("other"); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteRoom("other"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
}

func must(ms []Message, err error) []Message {
	if err != nil {
		panic(err)
	}
	return ms
}

// Ensure retention by count and by age, with ids never reused.
func TestRetention(t *testing.T) {
	c := newClock()
	db := mustOpen(t, c)
	db.SetRetention(Retention{MaxPerRoom: 3})
	ctx := context.Background()
	for range 5 {
		db.AppendMessage(ctx, "r", "a", "x", c.Now())
		c.Add(time.Minute)
	}
	ms := must(db.MessagesAfter("r", 0, 10))
	if len(ms) != 3 || ms[0].ID != 3 || ms[2].ID != 5 {
		t.Fatalf("kept %+v, want ids 3..5", ms)
	}
	// Now messages are 3, 2 and 1 minutes old: keep the last 90 s.
	n, err := db.PruneMessages(90 * time.Second)
	if err != nil || n != 2 {
		t.Fatalf("pruned %d, %v", n, err)
	}
	rooms, _ := db.Rooms()
	if rooms[0].Messages != 1 || rooms[0].LastID != 5 {
		t.Fatalf("room after prune: %+v", rooms[0])
	}
	if m, _ := db.AppendMessage(ctx, "r", "a", "y", c.Now()); m.ID != 6 {
		t.Fatalf("id after prune %d, want 6", m.ID)
	}
}

// Ensure concurrent appends to one room get every id exactly once.
func TestAppendConcurrent(t *testing.T) {
	db := mustOpen(t, newClock())
	var wg sync.WaitGroup
	seen := make([]int, 201)
	var mu sync.Mutex
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				m, err := db.AppendMessage(context.Background(), "r", "u", fmt.Sprint(w, i), time.Now())
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				seen[m.ID]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for id := 1; id <= 200; id++ {
		if seen[id] != 1 {
			t.Fatalf("id %d seen %d times", id, seen[id])
		}
	}
}

// Ensure group commit: a lone sender is never held back waiting for
// company (each sequential append is its own commit, with no timer between
// them), while a crowd of concurrent senders shares a few commits.
func TestAppendGroupCommit(t *testing.T) {
	db := mustOpen(t, newClock())
	ctx := context.Background()
	const n = 20
	for i := range n {
		if _, err := db.AppendMessage(ctx, "r", "u", fmt.Sprint(i), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if got := db.MessageCommits(); got != n {
		t.Errorf("%d sequential appends made %d commits, want one each", n, got)
	}

	const crowd = 600
	before := db.MessageCommits()
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range crowd {
		wg.Go(func() {
			<-start
			if _, err := db.AppendMessage(ctx, "crowd", "u", fmt.Sprint(i), time.Now()); err != nil {
				t.Error(err)
			}
		})
	}
	close(start)
	wg.Wait()
	// While one commit runs, everything that arrives queues for the next.
	if got := db.MessageCommits() - before; got > crowd/10 {
		t.Errorf("%d concurrent appends made %d commits, want far fewer", crowd, got)
	}
	if rooms, _ := db.Rooms(); len(rooms) != 2 || rooms[0].LastID != crowd {
		t.Errorf("rooms after the crowd: %+v", rooms)
	}
}

// BenchmarkAppendParallel measures durable appends (fsync on) from many
// senders across rooms: the group commit path.
func BenchmarkAppendParallel(b *testing.B) {
	dir := b.TempDir()
	db, err := Open(dir+"/c.db", Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	b.SetParallelism(256) // 512 senders on 2 cores
	var n sync.Mutex
	room := 0
	b.RunParallel(func(pb *testing.PB) {
		n.Lock()
		r := fmt.Sprint("room", room%16)
		room++
		n.Unlock()
		for pb.Next() {
			if _, err := db.AppendMessage(context.Background(), r, "alice", "hello there", time.Now()); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkAppendSequential measures one sender appending again as soon as
// its last message is durable: the latency of a lone commit (fsync on).
func BenchmarkAppendSequential(b *testing.B) {
	db, err := Open(b.TempDir()+"/c.db", Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	for b.Loop() {
		if _, err := db.AppendMessage(context.Background(), "r", "alice", "hello there", time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}

// Ensure a room has an epoch from its first message, that it stays while
// the room lives, and that a room created again
// after DeleteRoom gets a new one.
func TestRoomEpoch(t *testing.T) {
	c := newClock()
	db := mustOpen(t, c)
	ctx := context.Background()
	if e, err := db.RoomEpoch("general"); err != nil || e != "" {
		t.Fatalf("epoch of a room without history = %q, %v", e, err)
	}
	m1, err := db.AppendMessage(ctx, "general", "alice", "one", c.Now())
	if err != nil {
		t.Fatal(err)
	}
	first := m1.Epoch
	if first == "" {
		t.Fatal("no epoch on the first message")
	}
	m2, _ := db.AppendMessage(ctx, "general", "alice", "two", c.Now())
	if e, _ := db.RoomEpoch("general"); m2.Epoch != first || e != first {
		t.Fatalf("epoch changed: %q then %q, RoomEpoch %q", first, m2.Epoch, e)
	}
	if err := db.DeleteRoom("general"); err != nil {
		t.Fatal(err)
	}
	m3, _ := db.AppendMessage(ctx, "general", "bob", "again", c.Now())
	if m3.ID != 1 || m3.Epoch == "" || m3.Epoch == first {
		t.Fatalf("re-created room: id %d epoch %q (old %q)", m3.ID, m3.Epoch, first)
	}
	if e, _ := db.RoomEpoch("general"); e != m3.Epoch {
		t.Fatalf("RoomEpoch = %q, want %q", e, m3.Epoch)
	}
}
