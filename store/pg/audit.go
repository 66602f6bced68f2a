package pg

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatctl/chatctl/store"
)

// The audit log, as in the bbolt store (store/audit.go): AppendAudit
// writes at once; RecordAudit queues, and one writer commits what is
// queued in batches, dropping (and counting) what a full queue cannot
// take. Entries are rows of audit: seq from the audit_seq sequence, ts
// the entry's time, entry the rest as JSON. They read back ordered by
// (ts, seq), as bbolt's keys sort.

// auditPruneBatch is the most entries PruneAudit deletes in one
// transaction; a variable so that tests can make batches small.
var auditPruneBatch = 5000

// AppendAudit implements store.Store: entries are written at once, in one
// transaction, each given its sequence number; an entry without a time
// gets the store's clock. A failed write counts them as dropped.
func (db *DB) AppendAudit(entries ...store.AuditEntry) error {
	if len(entries) == 0 {
		return nil
	}
	var now time.Time
	times := make([]time.Time, len(entries))
	docs := make([]string, len(entries))
	for i, e := range entries {
		if e.Time.IsZero() {
			if now.IsZero() {
				now = db.now()
			}
			e.Time = now
		}
		e.Time, e.Seq = stamp(e.Time), 0 // seq is the column's
		data, err := json.Marshal(e)
		if err != nil {
			db.audit.Drop(len(entries))
			return fmt.Errorf("audit log: %w", err)
		}
		times[i], docs[i] = e.Time, string(data)
	}
	err := db.inTx("audit log", func(ctx context.Context, tx pgx.Tx) error {
		// Sequence numbers in the entries' order: nextval is called row
		// by row, in the order of the ordinality.
		_, err := tx.Exec(ctx, `INSERT INTO audit (seq, ts, entry)
			SELECT nextval('audit_seq'), t.ts, t.entry::jsonb
			FROM unnest($1::timestamptz[], $2::text[]) WITH ORDINALITY AS t(ts, entry, n)
			ORDER BY t.n`, times, docs)
		return err
	})
	if err != nil {
		db.audit.Drop(len(entries))
		return err
	}
	return nil
}

// RecordAudit implements store.Store: e is queued for the writer (with
// its time now); when the queue is full or the store closing, it is
// dropped and counted. It never waits.
func (db *DB) RecordAudit(e store.AuditEntry) {
	if e.Time.IsZero() {
		e.Time = db.now().UTC()
	}
	db.audit.Record(e)
}

// FlushAudit implements store.Store: it returns once every entry queued
// before the call is committed (or dropped).
func (db *DB) FlushAudit() { db.audit.Flush() }

// AuditDropped implements store.Store: entries not recorded since Open.
func (db *DB) AuditDropped() uint64 { return db.audit.Dropped() }

// Audit implements store.Store: the entries q selects, oldest first; with
// a Limit, the newest Limit of them.
func (db *DB) Audit(q store.AuditQuery) ([]store.AuditEntry, error) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if !q.Since.IsZero() {
		where = append(where, "ts >= "+arg(ceil(q.Since)))
	}
	if q.User != "" {
		u := arg(strings.ToLower(q.User))
		where = append(where, fmt.Sprintf("(lower(entry->>'actor') = %s OR lower(entry->>'target') = %s)", u, u))
	}
	if q.Action != "" {
		a := arg(q.Action)
		where = append(where, fmt.Sprintf("(entry->>'action' = %s OR starts_with(entry->>'action', %s || '.'))", a, a))
	}
	sql := `SELECT seq, entry FROM audit`
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	sql += " ORDER BY ts DESC, seq DESC"
	if q.Limit > 0 {
		sql += " LIMIT " + arg(q.Limit)
	}
	var out []store.AuditEntry
	err := db.query("read the audit log", func(ctx context.Context) error {
		rows, err := db.pool.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		var seq int64
		var data []byte
		_, err = pgx.ForEachRow(rows, []any{&seq, &data}, func() error {
			var e store.AuditEntry
			if err := json.Unmarshal(data, &e); err != nil {
				return fmt.Errorf("%w: audit entry %d: %v", store.ErrCorrupt, seq, err)
			}
			e.Seq, e.Time = uint64(seq), e.Time.UTC()
			if q.Matches(e) { // the SQL filters already; lower() and EqualFold agree on names
				out = append(out, e)
			}
			return nil
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	slices.Reverse(out)
	return out, nil
}

// PruneAudit implements store.Store: entries older than maxAge (0: none
// for age), then the oldest beyond maxEntries (0: no bound), in batches
// of auditPruneBatch per transaction; it returns how many went.
func (db *DB) PruneAudit(maxAge time.Duration, maxEntries int) (int, error) {
	total := 0
	if maxAge > 0 {
		cutoff := ceil(db.now().Add(-maxAge))
		for {
			n, err := db.pruneAuditBatch(`WHERE ts < $2`, auditPruneBatch, cutoff)
			total += n
			if err != nil {
				return total, err
			}
			if n < auditPruneBatch {
				break
			}
		}
	}
	if maxEntries > 0 {
		var count int64
		if err := db.query("count audit entries", func(ctx context.Context) error {
			return db.pool.QueryRow(ctx, `SELECT count(*) FROM audit`).Scan(&count)
		}); err != nil {
			return total, err
		}
		for excess := int(count) - maxEntries; excess > 0; {
			n, err := db.pruneAuditBatch(``, min(excess, auditPruneBatch))
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

// pruneAuditBatch deletes, in one transaction, up to limit of the oldest
// entries that where (a WHERE clause on $2…, or "") selects.
func (db *DB) pruneAuditBatch(where string, limit int, args ...any) (int, error) {
	n := 0
	err := db.inTx("prune the audit log", func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM audit WHERE seq IN
			(SELECT seq FROM audit `+where+` ORDER BY ts, seq LIMIT $1)`, append([]any{limit}, args...)...)
		n = int(tag.RowsAffected())
		return err
	})
	return n, err
}
