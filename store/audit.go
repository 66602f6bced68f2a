package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The audit log records administrative actions and authentication events
// (who, what, on whom, from where, when, outcome) in one bucket:
//
//	audit   big-endian unix nanoseconds "|" big-endian sequence -> AuditEntry (JSON)
//
// Keys sort by time, then by the bucket's sequence, so entries recorded in
// the same nanosecond keep their order and never overwrite each other.
// The bucket is created by the first write: stores made by older binaries
// simply have no entries yet, and no schema change is needed.
//
// There are two ways in. AppendAudit writes at once, in a transaction of
// its own; admin actions use it, because an operator waits for them anyway
// and a flood of logins must not be able to push them out of a queue.
// RecordAudit queues an entry and returns at once; a single writer commits
// what is queued in batches, so logins never wait for an fsync of the log.
// When the queue is full the entry is dropped and counted (AuditDropped),
// which bounds the memory a login flood can take. PruneAudit bounds the
// disk: by age and by number of entries.

var bucketAudit = []byte("audit")

// Bounds of the audit machinery.
const (
	// auditQueueLen is how many entries RecordAudit holds before dropping.
	auditQueueLen = 4096
	// auditBatch is the most entries the writer commits in one transaction.
	auditBatch = 512
)

// auditPruneBatch is the most entries PruneAudit deletes in one
// transaction, so that message commits never wait long behind it. A
// variable only so that tests can make batches small.
var auditPruneBatch = 5000

// Outcomes of an AuditEntry.
const (
	AuditOK     = "ok"
	AuditFailed = "failed"
)

// AuditEntry is one record of the audit log. It never holds a password, a
// hash, a token or a secret: callers put names, ids and outcomes in it.
type AuditEntry struct {
	Time time.Time `json:"time"`
	// Seq is the entry's sequence number, assigned when it is written.
	Seq uint64 `json:"seq"`
	// Action is what happened: "user.add", "login.failed", ….
	Action string `json:"action"`
	// Actor is who did it: an operating-system user for the CLI, the
	// admin's username for the HTTP API, the username for a login.
	Actor string `json:"actor"`
	// From is where from: a client address, "socket" or "local".
	From string `json:"from"`
	// Target is on whom or what: a user, a key id, a room, a session.
	Target string `json:"target,omitempty"`
	// Outcome is AuditOK or AuditFailed.
	Outcome string `json:"outcome"`
	// Detail says more: the error of a failed action, a new role, ….
	Detail string `json:"detail,omitempty"`
}

// AuditQuery selects entries for Audit. The zero value selects the whole
// log.
type AuditQuery struct {
	// Since keeps entries at or after this time (zero: all).
	Since time.Time
	// User keeps entries whose actor or target is this name
	// (case-insensitive).
	User string
	// Action keeps entries of this action, or of every action under it:
	// "user" matches "user.add", "user.remove", ….
	Action string
	// Limit keeps the newest Limit matching entries (0: all).
	Limit int
}

// matches reports whether e passes q's filters other than Since and Limit.
func (q AuditQuery) matches(e AuditEntry) bool {
	if q.User != "" && !strings.EqualFold(e.Actor, q.User) && !strings.EqualFold(e.Target, q.User) {
		return false
	}
	if q.Action != "" && e.Action != q.Action && !strings.HasPrefix(e.Action, q.Action+".") {
		return false
	}
	return true
}

// auditKey is the key of an entry written at t with sequence seq.
func auditKey(t time.Time, seq uint64) []byte {
	k := make([]byte, 16)
	ns := t.UnixNano()
	if ns < 0 {
		ns = 0
	}
	binary.BigEndian.PutUint64(k, uint64(ns))
	binary.BigEndian.PutUint64(k[8:], seq)
	return k
}

// auditKeyTime is the time part of an audit key.
func auditKeyTime(k []byte) time.Time {
	if len(k) < 8 {
		return time.Time{}
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(k)))
}

// AppendAudit writes entries at once, in one transaction, and gives each
// its sequence number. An entry without a time gets the store's clock. A
// failed write counts the entries as dropped (see AuditDropped).
func (db *DB) AppendAudit(entries ...AuditEntry) error {
	if len(entries) == 0 {
		return nil
	}
	var now time.Time // read only when needed: RecordAudit's entries have a time
	err := db.update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketAudit)
		if err != nil {
			return err
		}
		// Keys grow with time: pack pages full instead of splitting them
		// in half, as for any append-mostly bucket.
		b.FillPercent = 0.9
		for _, e := range entries {
			if e.Time.IsZero() {
				if now.IsZero() {
					now = db.now()
				}
				e.Time = now
			}
			e.Time = e.Time.UTC()
			if e.Seq, err = b.NextSequence(); err != nil {
				return err
			}
			if err := putJSON(b, auditKey(e.Time, e.Seq), e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.audit.Drop(len(entries))
		return fmt.Errorf("audit log: %w", err)
	}
	return nil
}

// RecordAudit queues e for the audit writer and returns at once; e gets
// its time now. When the queue is full, or the store is closing, e is
// dropped and counted (AuditDropped): recording never slows the caller.
func (db *DB) RecordAudit(e AuditEntry) {
	if e.Time.IsZero() {
		e.Time = db.now().UTC()
	}
	db.audit.Record(e)
}

// FlushAudit returns once every entry RecordAudit queued before the call
// is committed (or dropped).
func (db *DB) FlushAudit() { db.audit.Flush() }

// AuditDropped returns how many entries were not recorded since Open: the
// queue was full, or their write failed.
func (db *DB) AuditDropped() uint64 { return db.audit.Dropped() }

// Audit returns the entries q selects, oldest first. With a Limit it
// returns the newest Limit of them (still oldest first, as a log reads).
func (db *DB) Audit(q AuditQuery) ([]AuditEntry, error) {
	var out []AuditEntry
	var user []byte // q.User as it would appear in the JSON, lower-cased
	if q.User != "" {
		if enc, err := json.Marshal(strings.ToLower(q.User)); err == nil {
			user = enc
		}
	}
	var exact, group []byte // `"action":"A"` and `"action":"A.` as stored
	if q.Action != "" {
		if enc, err := json.Marshal(q.Action); err == nil {
			exact = append([]byte(`"action":`), enc...)
			group = append(exact[:len(exact)-1:len(exact)-1], '.')
		}
	}
	err := db.bolt.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAudit)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			if !q.Since.IsZero() && auditKeyTime(k).Before(q.Since) {
				break
			}
			// Skip decoding what cannot match (most entries, for a rare
			// user or action): a cheap byte search on the stored JSON.
			if user != nil && !bytes.Contains(bytes.ToLower(v), user) {
				continue
			}
			if exact != nil && !bytes.Contains(v, exact) && !bytes.Contains(v, group) {
				continue
			}
			var e AuditEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("%w: audit entry %x: %v", ErrCorrupt, k, err)
			}
			if !q.matches(e) {
				continue
			}
			out = append(out, e)
			if q.Limit > 0 && len(out) >= q.Limit {
				break
			}
		}
		return nil
	})
	slices.Reverse(out)
	return out, err
}

// PruneAudit deletes entries older than maxAge (0: none for age), then the
// oldest entries beyond maxEntries (0: no bound), and returns how many
// went. It deletes in batches of a few thousand entries per transaction,
// so that other writers wait for it only briefly.
func (db *DB) PruneAudit(maxAge time.Duration, maxEntries int) (int, error) {
	total := 0
	if maxAge > 0 {
		cutoff := auditKey(db.now().Add(-maxAge), 0)
		for {
			n, err := db.pruneAuditBatch(func(k []byte, _ int) bool { return bytes.Compare(k, cutoff) < 0 })
			total += n
			if err != nil || n < auditPruneBatch {
				if err != nil {
					return total, err
				}
				break
			}
		}
	}
	if maxEntries > 0 {
		var count int
		if err := db.bolt.View(func(tx *bolt.Tx) error {
			if b := tx.Bucket(bucketAudit); b != nil {
				count = b.Stats().KeyN
			}
			return nil
		}); err != nil {
			return total, err
		}
		for excess := count - maxEntries; excess > 0; {
			left := excess
			n, err := db.pruneAuditBatch(func(_ []byte, i int) bool { return i < left })
			total += n
			excess -= n
			if err != nil {
				return total, err
			}
			if n == 0 {
				break
			}
		}
	}
	return total, nil
}

// pruneAuditBatch deletes, in one transaction, up to auditPruneBatch of
// the oldest entries for which del (given the key and how many went
// before it in this batch) is true, stopping at the first it refuses.
func (db *DB) pruneAuditBatch(del func(k []byte, i int) bool) (int, error) {
	n := 0
	err := db.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAudit)
		if b == nil {
			return nil
		}
		// Collect first, then delete: a cursor re-seeking the first key
		// after each delete would walk the emptied leaves again and again.
		var keys [][]byte
		c := b.Cursor()
		for k, _ := c.First(); k != nil && len(keys) < auditPruneBatch && del(k, len(keys)); k, _ = c.Next() {
			keys = append(keys, bytes.Clone(k))
		}
		for _, k := range keys {
			if err := b.Delete(k); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}
