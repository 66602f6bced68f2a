package store

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// entry is an audit entry of action by actor on target.
func entry(action, actor, target string) AuditEntry {
	return AuditEntry{Action: action, Actor: actor, From: "local", Target: target, Outcome: AuditOK}
}

// Ensure entries come back oldest first with increasing sequence numbers,
// even when many share one timestamp, and a store without any (an older
// file: no bucket) lists none.
func TestAuditOrder(t *testing.T) {
	c := newClock()
	db := mustOpen(t, c)
	if list, err := db.Audit(AuditQuery{}); err != nil || len(list) != 0 {
		t.Fatalf("empty store: %v, %v", list, err)
	}
	for i := range 5 {
		if err := db.AppendAudit(entry("user.add", "root", fmt.Sprint("u", i))); err != nil {
			t.Fatal(err)
		}
	}
	list, err := db.Audit(AuditQuery{})
	if err != nil || len(list) != 5 {
		t.Fatalf("Audit = %v, %v", list, err)
	}
	for i, e := range list {
		if e.Target != fmt.Sprint("u", i) || e.Seq != uint64(i+1) || !e.Time.Equal(c.t) {
			t.Errorf("entry %d = %+v", i, e)
		}
	}
	// A later entry with an earlier time (a clock step back) sorts by its time.
	early := entry("key.rotate", "root", "k")
	early.Time = c.t.Add(-time.Hour)
	if err := db.AppendAudit(early); err != nil {
		t.Fatal(err)
	}
	list, _ = db.Audit(AuditQuery{})
	if list[0].Action != "key.rotate" || list[0].Seq != 6 {
		t.Fatalf("first = %+v", list[0])
	}
}

// Ensure the query filters by time, user (actor or target, any case) and
// action (exact or group), and a limit keeps the newest entries.
func TestAuditQuery(t *testing.T) {
	c := newClock()
	db := mustOpen(t, c)
	add := func(e AuditEntry) {
		t.Helper()
		if err := db.AppendAudit(e); err != nil {
			t.Fatal(err)
		}
		c.Add(time.Minute)
	}
	add(entry("user.add", "root", "alice"))     // 12:00
	add(entry("login.ok", "alice", ""))         // 12:01
	add(entry("login.failed", "bob", ""))       // 12:02
	add(entry("user.remove", "root", "bob"))    // 12:03
	add(entry("user.userish", "root", "carol")) // 12:04: not under "user.user"
	start := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		q    AuditQuery
		want []uint64
	}{
		{"All", AuditQuery{}, []uint64{1, 2, 3, 4, 5}},
		{"Since", AuditQuery{Since: start.Add(2 * time.Minute)}, []uint64{3, 4, 5}},
		{"UserAsActorOrTarget", AuditQuery{User: "BOB"}, []uint64{3, 4}},
		{"ActionExact", AuditQuery{Action: "login.ok"}, []uint64{2}},
		{"ActionGroup", AuditQuery{Action: "login"}, []uint64{2, 3}},
		{"ActionNotAPrefixOfAName", AuditQuery{Action: "user.user"}, nil},
		{"LimitKeepsNewest", AuditQuery{Limit: 2}, []uint64{4, 5}},
		{"Combined", AuditQuery{User: "root", Action: "user", Limit: 2, Since: start}, []uint64{4, 5}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			list, err := db.Audit(tc.q)
			if err != nil {
				t.Fatal(err)
			}
			var got []uint64
			for _, e := range list {
				got = append(got, e.Seq)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("seqs = %v, want %v", got, tc.want)
			}
		})
	}
}

// Ensure PruneAudit deletes by age, then the oldest beyond the count,
// across several batches, and leaves the newest.
func TestPruneAudit(t *testing.T) {
	defer func(n int) { auditPruneBatch = n }(auditPruneBatch)
	auditPruneBatch = 300 // several batches of each kind, quickly
	c := newClock()
	db := mustOpen(t, c)
	old, fresh := 2*auditPruneBatch+7, 3*auditPruneBatch+1011
	batch := func(n int, at time.Time) {
		t.Helper()
		entries := make([]AuditEntry, n)
		for i := range entries {
			entries[i] = entry("login.failed", "x", "")
			entries[i].Time = at
		}
		if err := db.AppendAudit(entries...); err != nil {
			t.Fatal(err)
		}
	}
	batch(old, c.t.Add(-100*24*time.Hour))
	batch(fresh, c.t.Add(-time.Hour))

	n, err := db.PruneAudit(90*24*time.Hour, 0)
	if err != nil || n != old {
		t.Fatalf("by age: %d, %v; want %d", n, err, old)
	}
	n, err = db.PruneAudit(90*24*time.Hour, 1000)
	if err != nil || n != fresh-1000 {
		t.Fatalf("by count: %d, %v; want %d", n, err, fresh-1000)
	}
	list, _ := db.Audit(AuditQuery{})
	if len(list) != 1000 || list[999].Seq != uint64(old+fresh) || list[0].Seq != uint64(old+fresh-999) {
		t.Fatalf("kept %d, from seq %d to %d", len(list), list[0].Seq, list[len(list)-1].Seq)
	}
	if n, err := db.PruneAudit(0, 1000); err != nil || n != 0 {
		t.Fatalf("nothing to prune: %d, %v", n, err)
	}
	if err := db.Check(); err != nil {
		t.Fatal(err)
	}
}

// Ensure RecordAudit never blocks: with the writer stuck behind another
// write transaction, the queue fills and the rest is dropped and counted;
// once the writer runs again everything queued is committed, and Close
// commits what is still queued.
func TestRecordAuditDrops(t *testing.T) {
	c := newClock()
	path := filepath.Join(t.TempDir(), "c.db")
	db, err := Open(path, Options{Now: c.Now, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	stuck, release := make(chan struct{}), make(chan struct{})
	go db.Bolt().Update(func(*bolt.Tx) error { close(stuck); <-release; return nil })
	<-stuck
	// The first entry starts the writer, which takes it (and, until it
	// reaches the write lock, maybe up to a batch more) and then waits.
	db.RecordAudit(entry("login.ok", "first", ""))
	deadline := time.Now().Add(5 * time.Second)
	for db.audit.Queued() > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the writer did not take the first entry")
		}
		time.Sleep(time.Millisecond) // polling, not waiting for an event
	}
	// The writer holds at most one batch (the first entry's) while it
	// waits, and the queue auditQueueLen: of this many, at least extra
	// are dropped, and every one is either written or counted.
	const extra = 25
	sent := 1 + auditQueueLen + auditBatch + extra
	start := time.Now()
	for range sent - 1 {
		db.RecordAudit(entry("login.failed", "flood", ""))
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("RecordAudit blocked: %s", took)
	}
	dropped := db.AuditDropped()
	if dropped < extra || dropped > extra+auditBatch {
		t.Fatalf("dropped = %d, want %d to %d", dropped, extra, extra+auditBatch)
	}
	close(release)
	db.FlushAudit()
	list, err := db.Audit(AuditQuery{})
	if err != nil || len(list)+int(dropped) != sent || list[0].Actor != "first" {
		t.Fatalf("%d entries written and %d dropped of %d sent, %v", len(list), dropped, sent, err)
	}
	for range 3 {
		db.RecordAudit(entry("login.ok", "late", ""))
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db.RecordAudit(entry("login.ok", "closed", "")) // dropped, no panic
	if got := db.AuditDropped(); got != dropped+1 {
		t.Fatalf("dropped after close = %d", got)
	}
	db = mustOpenPath(t, path, c)
	if list, _ := db.Audit(AuditQuery{User: "late"}); len(list) != 3 {
		t.Fatalf("Close lost queued entries: %d of 3", len(list))
	}
}
