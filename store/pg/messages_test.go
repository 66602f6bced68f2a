package pg

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatctl/chatctl/internal/pgtest"
	"github.com/chatctl/chatctl/store"
)

// openVia opens a store on a fresh database through a proxy.
func openVia(t *testing.T, opts Options) (*DB, *pgtest.Proxy) {
	t.Helper()
	u, err := url.Parse(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	p := pgtest.NewProxy(t, u.Host)
	u.Host = p.Addr
	opts.Access = store.Create
	db, err := Open(context.Background(), u.String(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, p
}

// Ensure that while the database is unreachable, appends and reads fail
// with ErrUnavailable (never an id), LastWriteErr says so, and once it is
// back the store recovers by itself with the next id.
func TestMessagesUnavailable(t *testing.T) {
	db, p := openVia(t, Options{})
	ctx := context.Background()
	for i := 1; i <= 2; i++ {
		if m, err := db.AppendMessage(ctx, "r", "u", "x", time.Now()); err != nil || m.ID != uint64(i) {
			t.Fatalf("append %d: %+v, %v", i, m, err)
		}
	}
	p.Stop()
	for range 3 {
		m, err := db.AppendMessage(ctx, "r", "u", "lost", time.Now())
		if !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("append while down: %+v, %v; want ErrUnavailable", m, err)
		}
	}
	if err := db.LastWriteErr(); err == nil {
		t.Error("LastWriteErr is nil while the database is down")
	}
	if _, err := db.MessagesAfter("r", 0, 10); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("read while down: %v, want ErrUnavailable", err)
	}
	if _, err := db.Rooms(); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("rooms while down: %v, want ErrUnavailable", err)
	}
	p.Start()
	deadline := time.Now().Add(10 * time.Second)
	var m store.Message
	for {
		var err error
		if m, err = db.AppendMessage(ctx, "r", "u", "back", time.Now()); err == nil {
			break
		}
		if !errors.Is(err, store.ErrUnavailable) || time.Now().After(deadline) {
			t.Fatalf("append after the database came back: %v", err)
		}
	}
	if m.ID != 3 {
		t.Fatalf("first id after the outage: %d, want 3", m.ID)
	}
	if err := db.LastWriteErr(); err != nil {
		t.Errorf("LastWriteErr after a commit: %v", err)
	}
}

// Ensure pruning works in bounded batches (pruneRooms rooms, pruneBatch
// messages each per transaction) and still takes everything old.
func TestPruneBatches(t *testing.T) {
	defer func(r int, b int64) { pruneRooms, pruneBatch = r, b }(pruneRooms, pruneBatch)
	pruneRooms, pruneBatch = 2, 4
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var mu sync.Mutex // guards now
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	db, _ := openVia(t, Options{Now: clock})
	ctx := context.Background()
	const rooms, old, fresh = 5, 11, 2
	for r := range rooms {
		for i := range old + fresh {
			ts := now.Add(-time.Hour)
			if i >= old {
				ts = now
			}
			if _, err := db.AppendMessage(ctx, fmt.Sprint("room", r), "u", "x", ts); err != nil {
				t.Fatal(err)
			}
		}
	}
	n, err := db.PruneMessages(time.Minute)
	if err != nil || n != rooms*old {
		t.Fatalf("pruned %d, %v; want %d", n, err, rooms*old)
	}
	all, err := db.Rooms()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range all {
		ms, err := db.MessagesAfter(r.Name, 0, 100)
		if err != nil || len(ms) != fresh || ms[0].ID != old+1 || r.Messages != fresh || r.LastID != old+fresh {
			t.Fatalf("room %+v after prune holds %+v, %v", r, ms, err)
		}
	}
}

// Ensure DeleteRoom tells the change feed, in its transaction, and a
// missing room adds nothing to it.
func TestDeleteRoomChange(t *testing.T) {
	db, _ := openVia(t, Options{})
	ctx := context.Background()
	if _, err := db.AppendMessage(ctx, "gone", "u", "x", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteRoom("gone"); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteRoom("gone"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
	rows, err := db.pool.Query(ctx, `SELECT kind || ' ' || key FROM changes ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[room.delete gone]" {
		t.Fatalf("change feed %q, want one room.delete gone", got)
	}
}
