package store

import (
	"fmt"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"
)

// writeHealth remembers whether the store's latest write transaction
// committed, so that /health can report a full disk (or any failed commit)
// until a write succeeds again. It costs a few atomics per commit.
//
// Tickets order the outcomes: each write takes one inside its transaction,
// where bbolt's writer lock serialises them, so ticket order is commit
// order even though the outcomes are recorded after the lock is released.
type writeHealth struct {
	tickets atomic.Uint64                // last ticket handed out
	state   atomic.Uint64                // ticket<<1 of the latest recorded write, |1 when it failed
	failure atomic.Pointer[writeFailure] // the latest failure; read only while state says failed
}

// writeFailure is one failed write.
type writeFailure struct{ err error }

// record notes the outcome of the write holding ticket, unless a later
// write has been recorded already.
func (h *writeHealth) record(ticket uint64, err error) {
	next := ticket << 1
	if err != nil {
		next |= 1
		h.failure.Store(&writeFailure{err})
	}
	for {
		old := h.state.Load()
		if old>>1 >= ticket || h.state.CompareAndSwap(old, next) {
			return
		}
	}
}

// update runs fn in a write transaction, as bolt's Update does, and
// records whether the commit succeeded. Not recorded: an error returned by
// fn itself, a refusal (a name taken, a room missing) that says nothing
// about the disk; and the success of a transaction that changed nothing
// (a prune with nothing to prune), which rewrites only the meta page in
// place and so succeeds on a full disk too.
func (db *DB) update(fn func(tx *bolt.Tx) error) error {
	if db.readOnly {
		return fmt.Errorf("store %s: %w: this command changes it", absPath(db.path), ErrReadOnly)
	}
	var ticket uint64
	var fnErr error
	var t *bolt.Tx
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		ticket, t = db.health.tickets.Add(1), tx
		if fnErr = fn(tx); fnErr != nil {
			return fnErr
		}
		if db.writeFault != nil {
			return db.writeFault() // fails the commit, as a full disk would
		}
		return nil
	})
	switch {
	case ticket == 0 || fnErr != nil:
		return err // never began (store closed), or fn refused
	case err == nil:
		if st := t.Stats(); st.GetWrite() <= 1 {
			return nil // only the meta page was written
		}
	}
	db.health.record(ticket, err)
	return err
}

// LastWriteErr returns the error of the latest write transaction when it
// failed to commit (ENOSPC, an I/O error), or nil when it committed or
// nothing was written since Open. A later successful write clears it.
func (db *DB) LastWriteErr() error {
	if db.health.state.Load()&1 == 0 {
		return nil
	}
	if f := db.health.failure.Load(); f != nil {
		return f.err
	}
	return nil
}
