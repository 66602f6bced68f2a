package pg

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chatctl/chatctl/internal/pgtest"
	"github.com/chatctl/chatctl/store"
)

func auditEntry(action, actor string) store.AuditEntry {
	return store.AuditEntry{Action: action, Actor: actor, From: "local", Outcome: store.AuditOK}
}

// Ensure RecordAudit never blocks: with the writer stuck behind a lock on
// the audit table, the queue fills and the rest is dropped and counted;
// once the lock goes everything queued is committed, and Close commits
// what is still queued.
func TestRecordAuditDrops(t *testing.T) {
	c := &clock{t: start}
	url := pgtest.URL(t)
	db, err := Open(context.Background(), url, Options{Access: store.Create, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			db.Close()
		}
	})
	ctx := context.Background()
	lock, err := db.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback(ctx)
	if _, err := lock.Exec(ctx, `LOCK TABLE audit IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	// The first entry goes to the writer, which takes it (and maybe up
	// to a batch more) and then waits for the lock.
	db.RecordAudit(auditEntry("login.ok", "first"))
	deadline := time.Now().Add(5 * time.Second)
	for db.audit.Queued() > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the writer did not take the first entry")
		}
		time.Sleep(time.Millisecond) // polling, not waiting for an event
	}
	const extra = 25
	sent := 1 + store.AuditQueueLen + store.AuditBatch + extra
	began := time.Now()
	for range sent - 1 {
		db.RecordAudit(auditEntry("login.failed", "flood"))
	}
	if took := time.Since(began); took > 2*time.Second {
		t.Errorf("RecordAudit blocked: %s", took)
	}
	dropped := db.AuditDropped()
	if dropped < extra || dropped > extra+store.AuditBatch {
		t.Fatalf("dropped = %d, want %d to %d", dropped, extra, extra+store.AuditBatch)
	}
	if err := lock.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	db.FlushAudit()
	list, err := db.Audit(store.AuditQuery{})
	if err != nil || len(list)+int(dropped) != sent || list[0].Actor != "first" {
		t.Fatalf("%d entries written and %d dropped of %d sent, %v", len(list), dropped, sent, err)
	}
	for i := range 3 {
		db.RecordAudit(auditEntry("login.ok", fmt.Sprint("late", i)))
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	closed = true
	db.RecordAudit(auditEntry("login.ok", "closed")) // dropped, no panic
	db.FlushAudit()                                  // returns at once
	if got := db.AuditDropped(); got != dropped+1 {
		t.Fatalf("dropped after close = %d, want %d", got, dropped+1)
	}
	other := openURL(t, url, c.Now)
	if list, _ := other.Audit(store.AuditQuery{Action: "login.ok"}); len(list) != 4 {
		t.Fatalf("Close lost queued entries: %d of 3 (+ first)", len(list)-1)
	}
}

// Ensure PruneAudit works through several batches of each kind.
func TestPruneAuditBatches(t *testing.T) {
	defer func(n int) { auditPruneBatch = n }(auditPruneBatch)
	auditPruneBatch = 300
	c := &clock{t: start}
	db := openURL(t, pgtest.URL(t), c.Now)
	old, fresh := 2*auditPruneBatch+7, 3*auditPruneBatch+1011
	batch := func(n int, at time.Time) {
		t.Helper()
		entries := make([]store.AuditEntry, n)
		for i := range entries {
			entries[i] = auditEntry("login.failed", "x")
			entries[i].Time = at
		}
		if err := db.AppendAudit(entries...); err != nil {
			t.Fatal(err)
		}
	}
	batch(old, c.Now().Add(-100*24*time.Hour))
	batch(fresh, c.Now().Add(-time.Hour))
	if n, err := db.PruneAudit(90*24*time.Hour, 0); err != nil || n != old {
		t.Fatalf("by age: %d, %v; want %d", n, err, old)
	}
	if n, err := db.PruneAudit(90*24*time.Hour, 1000); err != nil || n != fresh-1000 {
		t.Fatalf("by count: %d, %v; want %d", n, err, fresh-1000)
	}
	list, _ := db.Audit(store.AuditQuery{})
	if len(list) != 1000 || list[999].Seq != uint64(old+fresh) || list[0].Seq != uint64(old+fresh-999) {
		t.Fatalf("kept %d, from seq %d to %d", len(list), list[0].Seq, list[len(list)-1].Seq)
	}
}
