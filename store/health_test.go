package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// faultyDisk is a WriteFault whose error the test sets and clears.
type faultyDisk struct{ err atomic.Pointer[error] }

func (f *faultyDisk) fail(err error) { f.err.Store(&err) }
func (f *faultyDisk) heal()          { f.err.Store(nil) }
func (f *faultyDisk) fault() error {
	if p := f.err.Load(); p != nil {
		return *p
	}
	return nil
}

// Ensure a failed commit (ENOSPC, injected) is reported by LastWriteErr,
// through group-committed messages and every other kind of write, that
// it writes nothing, that neither a refusal (a taken name) nor a
// transaction that changes nothing sets or clears it, and that the next
// successful write clears it.
func TestLastWriteErr(t *testing.T) {
	disk := &faultyDisk{}
	c := newClock()
	db, err := Open(filepath.Join(t.TempDir(), "c.db"), Options{Now: c.Now, NoSync: true, WriteFault: disk.fault})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Check(); err != nil {
			t.Errorf("consistency check: %v", err)
		}
		db.Close()
	})
	ctx := context.Background()
	if err := db.LastWriteErr(); err != nil {
		t.Fatalf("fresh store: LastWriteErr = %v", err)
	}
	if _, err := db.CreateUser(User{Name: "alice", Role: "user"}); err != nil {
		t.Fatal(err)
	}
	// A refusal is not a write failure.
	if _, err := db.CreateUser(User{Name: "alice", Role: "user"}); !errors.Is(err, ErrUserExists) {
		t.Fatalf("second CreateUser = %v, want ErrUserExists", err)
	}
	if err := db.LastWriteErr(); err != nil {
		t.Fatalf("after a refusal: LastWriteErr = %v", err)
	}

	enospc := &os.PathError{Op: "write", Path: db.Path(), Err: syscall.ENOSPC}
	disk.fail(enospc)
	if _, err := db.AppendMessage(ctx, "general", "alice", "lost", c.Now()); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("AppendMessage on a full disk = %v, want ENOSPC", err)
	}
	if err := db.LastWriteErr(); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("after a failed group commit: LastWriteErr = %v, want ENOSPC", err)
	}
	if _, _, err := db.CreateSession("alice", "127.0.0.1", time.Hour); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("CreateSession on a full disk = %v, want ENOSPC", err)
	}
	// A refusal while the disk is full does not clear the failure.
	if _, err := db.CreateUser(User{Name: "alice", Role: "user"}); !errors.Is(err, ErrUserExists) {
		t.Fatalf("CreateUser of a taken name = %v, want ErrUserExists", err)
	}
	if err := db.LastWriteErr(); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("after a refusal on a full disk: LastWriteErr = %v, want ENOSPC", err)
	}
	if msgs, err := db.MessagesAfter("general", 0, 10); err != nil || len(msgs) != 0 {
		t.Fatalf("messages after failed commits = %v, %v; want none", msgs, err)
	}

	disk.heal()
	if err := db.LastWriteErr(); err == nil {
		t.Fatal("LastWriteErr cleared before any write succeeded")
	}
	// A transaction that changes nothing commits even on a full disk (it
	// rewrites the meta page in place): it proves nothing, clears nothing.
	if n, err := db.PruneSessions(); err != nil || n != 0 {
		t.Fatalf("PruneSessions with nothing to prune = %d, %v", n, err)
	}
	if err := db.LastWriteErr(); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("after an empty transaction: LastWriteErr = %v, want ENOSPC still", err)
	}
	m, err := db.AppendMessage(ctx, "general", "alice", "kept", c.Now())
	if err != nil {
		t.Fatal(err)
	}
	if m.ID != 1 {
		t.Errorf("first committed message id = %d, want 1", m.ID)
	}
	if err := db.LastWriteErr(); err != nil {
		t.Fatalf("after a successful write: LastWriteErr = %v", err)
	}
}

// Ensure outcomes recorded out of order keep the latest write's: a
// failure that finished recording after a later success does not make
// the store unhealthy, and the reverse does not make it healthy.
func TestWriteHealthOrder(t *testing.T) {
	db := &DB{}
	boom := errors.New("boom")
	db.health.record(2, nil)
	db.health.record(1, boom) // older: ignored
	if err := db.LastWriteErr(); err != nil {
		t.Errorf("older failure after newer success: LastWriteErr = %v", err)
	}
	db.health.record(4, boom)
	db.health.record(3, nil) // older: ignored
	if err := db.LastWriteErr(); !errors.Is(err, boom) {
		t.Errorf("older success after newer failure: LastWriteErr = %v, want boom", err)
	}
	db.health.record(5, nil)
	if err := db.LastWriteErr(); err != nil {
		t.Errorf("newest success: LastWriteErr = %v", err)
	}
}
