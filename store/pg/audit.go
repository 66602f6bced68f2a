package pg

import (
	"time"

	"github.com/chatctl/chatctl/store"
)

// auditQ is RecordAudit's queue (TODO(helper)).
type auditQ struct{}

func (q *auditQ) start(db *DB) {}
func (q *auditQ) stop()        {}

func (db *DB) AppendAudit(entries ...store.AuditEntry) error                { return errNotYet }
func (db *DB) RecordAudit(e store.AuditEntry)                               {}
func (db *DB) FlushAudit()                                                  {}
func (db *DB) AuditDropped() uint64                                         { return 0 }
func (db *DB) Audit(q store.AuditQuery) ([]store.AuditEntry, error)         { return nil, errNotYet }
func (db *DB) PruneAudit(maxAge time.Duration, maxEntries int) (int, error) { return 0, errNotYet }
