package pg_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatctl/chatctl/internal/pgtest"
	"github.com/chatctl/chatctl/store"
	"github.com/chatctl/chatctl/store/storetest"
)

// Ensure a bbolt store copied into PostgreSQL and from there into a new
// file keeps every record (times to the microsecond, which is what
// PostgreSQL keeps), and that the final copy refreshes the refresh tokens
// and verifies the access tokens issued before, and goes on at each
// room's last id + 1.
func TestCopyRoundTrip(t *testing.T) {
	pgtest.ServerURL(t)
	ctx := context.Background()
	dir := t.TempDir()
	src := storetest.OpenFile(t, filepath.Join(dir, "src.db"))
	f := storetest.Fill(t, src)

	mid := open(t, pgtest.URL(t), nil)
	rep, err := store.Copy(ctx, src, mid, store.CopyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Source != rep.Target || rep.Target.Messages != 60 || rep.RoomsChecked != 6 || rep.Target.Members != 3 || rep.Target.ReadMarkers != 6 {
		t.Errorf("bbolt → PostgreSQL: %+v", rep)
	}
	want := storetest.Dump(t, src, true)
	if d := storetest.Diff(want, storetest.Dump(t, mid, true)); d != "" {
		t.Fatalf("PostgreSQL differs from the file (- file, + PostgreSQL):\n%s", d)
	}

	back := storetest.OpenFile(t, filepath.Join(dir, "back.db"))
	if rep, err = store.Copy(ctx, mid, back, store.CopyOptions{}); err != nil {
		t.Fatal(err)
	}
	if rep.Source != rep.Target || rep.RoomsChecked != 6 {
		t.Errorf("PostgreSQL → bbolt: %+v", rep)
	}
	storetest.CheckCopy(t, src, back, f, true)

	// PostgreSQL → PostgreSQL too.
	other := open(t, pgtest.URL(t), nil)
	if _, err := store.Copy(ctx, mid, other, store.CopyOptions{}); err != nil {
		t.Fatal(err)
	}
	if d := storetest.Diff(want, storetest.Dump(t, other, true)); d != "" {
		t.Fatalf("the second database differs (- file, + PostgreSQL):\n%s", d)
	}
	// And a PostgreSQL copy serves it: tokens refresh, rooms go on.
	storetest.CheckCopy(t, src, other, f, true)
}

// Ensure a copy into a database that holds anything is refused, and one
// that does not match is rolled back, naming the difference.
func TestCopyIntoPostgresRefused(t *testing.T) {
	pgtest.ServerURL(t)
	ctx := context.Background()
	src := storetest.OpenFile(t, filepath.Join(t.TempDir(), "src.db"))
	storetest.Fill(t, src)
	dst := open(t, pgtest.URL(t), nil)
	if _, err := dst.Pool().Exec(ctx, `INSERT INTO rooms (name, epoch, created_at) VALUES ('r', 'e', now())`); err != nil {
		t.Fatal(err)
	}
	_, err := store.Copy(ctx, src, dst, store.CopyOptions{})
	if !errors.Is(err, store.ErrNotEmpty) || !strings.Contains(err.Error(), "is not empty (1 rooms)") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("copy into a database with a room: %v", err)
	}
	if _, err := dst.Pool().Exec(ctx, `DELETE FROM rooms`); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ table, insert, want string }{
		{"access_rules", `INSERT INTO access_rules VALUES ('*', 'x', 'deny')`, "1 access rules"},
		{"private_rooms", `INSERT INTO private_rooms VALUES ('p')`, "1 private rooms"},
		{"read_markers", `INSERT INTO read_markers VALUES ('bob', 'r', 3)`, "1 read markers"},
		{"declared", `INSERT INTO declared VALUES ('auth.users', '{}')`, "1 declared lists"},
	} {
		if _, err := dst.Pool().Exec(ctx, c.insert); err != nil {
			t.Fatal(err)
		}
		_, err := store.Copy(ctx, src, dst, store.CopyOptions{})
		if !errors.Is(err, store.ErrNotEmpty) || !strings.Contains(err.Error(), "is not empty ("+c.want+")") {
			t.Fatalf("copy into a database with a row in %s: %v", c.table, err)
		}
		if _, err := dst.Pool().Exec(ctx, `DELETE FROM `+c.table); err != nil {
			t.Fatal(err)
		}
	}

	drop := func(r store.Record) bool { m, ok := r.(store.Message); return ok && m.Room == "capped" && m.ID == 20 }
	_, err = store.Copy(ctx, src, dropping{dst, drop}, store.CopyOptions{})
	if !errors.Is(err, store.ErrMismatch) || !strings.Contains(err.Error(), `room "capped": 10 messages in the source, 9 in the target`) {
		t.Fatalf("mismatch: %v", err)
	}
	if c, err := dst.Count(ctx); err != nil || !c.Empty() {
		t.Errorf("database after a mismatch: %v, %v; want empty (rolled back)", c, err)
	}
}

// Ensure text PostgreSQL cannot store (a NUL character, which JSON
// allows in a chat message) fails the copy with an error naming the
// message, not its text, and the database stays empty.
func TestCopyUnstorableText(t *testing.T) {
	pgtest.ServerURL(t)
	ctx := context.Background()
	src := storetest.OpenFile(t, filepath.Join(t.TempDir(), "src.db"))
	for _, text := range []string{"fine", "secret\x00text"} {
		if _, err := src.AppendMessage(ctx, "general", "alice", text, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	dst := open(t, pgtest.URL(t), nil)
	_, err := store.Copy(ctx, src, dst, store.CopyOptions{})
	if err == nil || !strings.Contains(err.Error(), `copy into messages: message 2 of room "general": body holds a NUL character`) || strings.Contains(err.Error(), "secret") {
		t.Fatalf("copy of a NUL: %v", err)
	}
	if c, err := dst.Count(ctx); err != nil || !c.Empty() {
		t.Errorf("database after a failed copy: %v, %v; want empty", c, err)
	}
}

// Ensure a copy does not wait long for a database that another process
// is writing to (a server started on it), and names the cause.
func TestCopyIntoBusyDatabase(t *testing.T) {
	pgtest.ServerURL(t)
	ctx := context.Background()
	src := storetest.OpenFile(t, filepath.Join(t.TempDir(), "src.db"))
	storetest.Fill(t, src)
	dst := open(t, pgtest.URL(t), nil)
	tx, err := dst.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `INSERT INTO denied (id, expires_at) VALUES ('x', now())`); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = store.Copy(ctx, src, dst, store.CopyOptions{})
	if err == nil || !strings.Contains(err.Error(), "another process is writing to it (stop chatctl serve on it first)") {
		t.Fatalf("copy into a busy database: %v", err)
	}
	if took := time.Since(start); took > 15*time.Second {
		t.Errorf("gave up after %v", took)
	}
}

// dropping is an Importer that loses the records drop selects.
type dropping struct {
	store.Importer
	drop func(store.Record) bool
}

func (d dropping) Load(ctx context.Context) (store.Loader, error) {
	l, err := d.Importer.Load(ctx)
	return droppingLoader{l, d.drop}, err
}

type droppingLoader struct {
	store.Loader
	drop func(store.Record) bool
}

func (l droppingLoader) Put(ctx context.Context, r store.Record) error {
	if l.drop(r) {
		return nil
	}
	return l.Loader.Put(ctx, r)
}

// bigStore makes a bbolt store of rooms rooms holding n messages in all,
// each text bytes long, through the loader (AppendMessage would take
// minutes).
func bigStore(t testing.TB, path string, rooms, n, text int) *store.DB {
	db := storetest.OpenFile(t, path)
	ctx := context.Background()
	l, err := db.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	body := strings.Repeat("x", text)
	now := time.Now()
	per := n / rooms
	for r := range rooms {
		name := fmt.Sprintf("room-%03d", r)
		if err := l.Put(ctx, store.RoomRecord{Name: name, Epoch: "e", LastID: uint64(per + 5), Count: int64(per), CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	for r := range rooms {
		name := fmt.Sprintf("room-%03d", r)
		for id := 6; id <= per+5; id++ {
			if err := l.Put(ctx, store.Message{Room: name, ID: uint64(id), From: "alice", Text: body, TS: now}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := l.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	return db
}

// heapPeak samples the live heap (as of the latest garbage collection,
// so garbage not yet collected does not count) until stop is called, and
// returns the highest value seen above the live heap at the start.
func heapPeak() (stop func() uint64) {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	live := func() uint64 {
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	base := live()
	var mu sync.Mutex // guards peak
	peak := base
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			v := live()
			mu.Lock()
			peak = max(peak, v)
			mu.Unlock()
		}
	}()
	return func() uint64 {
		close(done)
		<-finished
		mu.Lock()
		defer mu.Unlock()
		return max(peak, live()) - base
	}
}

// Ensure a large store streams both ways: the live heap stays far below
// the size of the messages (200,000 of 200 bytes: 40 MB of text alone)
// and progress is reported on the way.
func TestCopyStreams(t *testing.T) {
	pgtest.ServerURL(t)
	if testing.Short() {
		t.Skip("copies 200,000 messages")
	}
	const n, text = 200000, 200
	const bound = 24 << 20 // a whole side in memory would take well over 40 MB
	ctx := context.Background()
	dir := t.TempDir()
	src := bigStore(t, filepath.Join(dir, "big.db"), 20, n, text)
	mid := open(t, pgtest.URL(t), nil)
	back := storetest.OpenFile(t, filepath.Join(dir, "back.db"))

	for _, c := range []struct {
		name     string
		from     store.Exporter
		to       store.Importer
		progress []string
	}{
		{name: "bbolt → PostgreSQL", from: src, to: mid},
		{name: "PostgreSQL → bbolt", from: mid, to: back},
	} {
		stop := heapPeak()
		start := time.Now()
		rep, err := store.Copy(ctx, c.from, c.to, store.CopyOptions{Progress: func(done, total int64) {
			c.progress = append(c.progress, fmt.Sprintf("%d/%d", done, total))
		}})
		took := time.Since(start)
		peak := stop()
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		t.Logf("%s: %d messages in %v (%.0f/s), heap peak +%.1f MiB", c.name, rep.Target.Messages, took.Round(time.Millisecond), float64(n)/took.Seconds(), float64(peak)/(1<<20))
		if rep.Target.Messages != n || rep.RoomsChecked != 20 {
			t.Errorf("%s: %+v", c.name, rep)
		}
		if peak > bound {
			t.Errorf("%s: the heap grew by %d bytes, more than %d: the copy does not stream", c.name, peak, bound)
		}
		if len(c.progress) != n/10000 || c.progress[len(c.progress)-1] != fmt.Sprintf("%d/%d", n, n) {
			t.Errorf("%s: progress %v", c.name, c.progress)
		}
	}
	last, err := back.MessagesBefore("room-007", 0, 1)
	if err != nil || len(last) != 1 || last[0].ID != n/20+5 {
		t.Errorf("last message of room-007 after the round trip: %+v, %v", last, err)
	}
}
