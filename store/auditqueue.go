package store

import (
	"sync"
	"sync/atomic"
)

// AuditQueue is the asynchronous way into an audit log, the same for every
// backend: Record queues an entry and never waits; one writer goroutine,
// started on first use, commits what is queued in batches of at most
// AuditBatch through the backend's AppendAudit; a full queue (AuditQueueLen)
// or a stopped one drops the entry and counts it. The zero value is ready
// once Init has named the writer.
type AuditQueue struct {
	write   func(entries ...AuditEntry) error // set by Init, then read only
	once    sync.Once
	mu      sync.RWMutex // guards closed against sends on ch
	closed  bool
	ch      chan auditItem // set once by start, then read only
	done    chan struct{}  // closed when the writer has committed its last batch
	dropped atomic.Uint64  // entries not recorded: queue full, closed, or a failed write
}

// auditItem is what the queue carries: an entry, or (flushed set) a
// request to commit everything queued before it and then close flushed.
type auditItem struct {
	e       AuditEntry
	flushed chan struct{}
}

// Init names the function that commits a batch (the backend's
// AppendAudit, which counts a failed batch with Drop).
func (q *AuditQueue) Init(write func(entries ...AuditEntry) error) { q.write = write }

// Record queues e (which must have its time) and returns at once.
func (q *AuditQueue) Record(e AuditEntry) {
	q.once.Do(q.start)
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		q.dropped.Add(1)
		return
	}
	select {
	case q.ch <- auditItem{e: e}:
	default:
		q.dropped.Add(1)
	}
}

// Flush returns once every entry queued before the call is committed (or
// dropped).
func (q *AuditQueue) Flush() {
	q.once.Do(q.start)
	q.mu.RLock()
	if q.closed {
		q.mu.RUnlock()
		return // Stop flushed
	}
	done := make(chan struct{})
	q.ch <- auditItem{flushed: done} // the writer drains, so this never blocks for long
	q.mu.RUnlock()
	<-done
}

// Drop counts n entries as not recorded.
func (q *AuditQueue) Drop(n int) { q.dropped.Add(uint64(n)) }

// Dropped returns how many entries were not recorded.
func (q *AuditQueue) Dropped() uint64 { return q.dropped.Load() }

// Queued returns how many entries wait for the writer (for tests).
func (q *AuditQueue) Queued() int { return len(q.ch) }

// start starts the goroutine that commits queued entries.
func (q *AuditQueue) start() {
	q.ch = make(chan auditItem, auditQueueLen)
	q.done = make(chan struct{})
	go func() {
		defer close(q.done)
		batch := make([]AuditEntry, 0, auditBatch)
		var flushed []chan struct{}
		for it := range q.ch {
			batch, flushed = batch[:0], flushed[:0]
			// Take what else is queued, up to a batch, without waiting.
			for ok := true; ok; {
				if it.flushed != nil {
					flushed = append(flushed, it.flushed)
				} else {
					batch = append(batch, it.e)
				}
				if len(batch) >= auditBatch {
					break
				}
				select {
				case it, ok = <-q.ch:
				default:
					ok = false
				}
			}
			q.write(batch...) // a failure is counted as dropped
			for _, f := range flushed {
				close(f)
			}
		}
	}()
}

// Stop commits what is queued and stops the writer; later Record calls
// are dropped. Calling it again does nothing.
func (q *AuditQueue) Stop() {
	q.once.Do(func() {}) // no writer may start from now on
	q.mu.Lock()
	already := q.closed
	q.closed = true
	q.mu.Unlock()
	if already || q.ch == nil {
		return
	}
	close(q.ch)
	<-q.done
}
