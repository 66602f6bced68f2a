package pg

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/chatctl/chatctl/store"
)

// feedKeep is how long change-feed rows are kept; a watcher that falls
// further behind (a node cut off from the database for longer) is told to
// reset its caches.
const feedKeep = time.Hour

// feedBatch bounds the changes one poll reads.
const feedBatch = 1000

// Watch implements store.Watcher.
func (db *DB) Watch(ctx context.Context, every time.Duration, fn func(kind, key string)) error {
	cursor, err := db.feedHead(ctx)
	if err != nil {
		return err
	}
	db.setWatching(true)
	defer db.setWatching(false)
	t := time.NewTicker(every)
	defer t.Stop()
	lastPrune := time.Time{}
	failing := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		next, err := db.poll(ctx, cursor, fn)
		switch {
		case err != nil && ctx.Err() != nil:
			return nil
		case err != nil:
			if !failing {
				db.opts.Log.Warn("change feed: cannot read; retrying", "err", err)
				failing = true
			}
			continue
		case failing:
			db.opts.Log.Info("change feed: reading again")
			failing = false
		}
		cursor = next
		if time.Since(lastPrune) > time.Minute {
			lastPrune = time.Now()
			if err := db.pruneFeed(ctx); err != nil && ctx.Err() == nil {
				db.opts.Log.Warn("change feed: prune", "err", err)
			}
		}
	}
}

// feedHead returns the newest committed change's number.
func (db *DB) feedHead(ctx context.Context) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	var seq int64
	err := db.pool.QueryRow(ctx, `SELECT seq FROM change_seq`).Scan(&seq)
	return uint64(seq), db.fail("read change feed", err)
}

// poll applies and reports the changes after cursor and returns the new
// cursor.
func (db *DB) poll(ctx context.Context, cursor uint64, fn func(kind, key string)) (uint64, error) {
	for {
		qctx, cancel := context.WithTimeout(ctx, opTimeout)
		rows, err := db.pool.Query(qctx, `SELECT seq, kind, key FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2`, int64(cursor), feedBatch)
		if err != nil {
			cancel()
			return cursor, db.fail("read change feed", err)
		}
		type row struct {
			seq       int64
			kind, key string
		}
		var got []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.seq, &r.kind, &r.key); err != nil {
				rows.Close()
				cancel()
				return cursor, db.fail("read change feed", err)
			}
			got = append(got, r)
		}
		err = rows.Err()
		cancel()
		if err != nil {
			return cursor, db.fail("read change feed", err)
		}
		if len(got) == 0 {
			return cursor, nil
		}
		if uint64(got[0].seq) != cursor+1 {
			// Rows we never saw were pruned: caches may be stale.
			db.applyChange(store.ChangeReset, "")
			fn(store.ChangeReset, "")
		}
		for _, r := range got {
			db.applyChange(r.kind, r.key)
			fn(r.kind, r.key)
			cursor = uint64(r.seq)
		}
		if len(got) < feedBatch {
			return cursor, nil
		}
	}
}

// pruneFeed deletes change rows older than feedKeep.
func (db *DB) pruneFeed(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	_, err := db.pool.Exec(ctx, `DELETE FROM changes WHERE at < now() - $1::interval`, fmt.Sprintf("%d seconds", int(feedKeep.Seconds())))
	return db.fail("prune change feed", err)
}

// nodeLockWait is how long LockNode and LockNodeShared wait for a lock
// held by another session before they give up.
const nodeLockWait = 2 * time.Second

// nodeLockID is the advisory lock a serving node holds ("chatnode").
const nodeLockID = 0x63686174_6e6f6465

// ErrNodeLocked is returned by LockNode when another process holds the
// node lock.
var ErrNodeLocked = errors.New("another chatctl serve is using this PostgreSQL store")

// LockNode takes the node lock: a session advisory lock on a connection
// of its own, held until Close. PostgreSQL releases it when that
// connection ends, so a node killed with SIGKILL leaves no mark behind and
// a restarted node starts at once. A second node on the same store gets
// ErrNodeLocked, once it has waited nodeLockWait for the lock.
func (db *DB) LockNode(ctx context.Context) error { return db.lockNode(ctx, false) }

// ErrNodeAlone is LockNodeShared's error while a node without a broker
// holds the store.
var ErrNodeAlone = errors.New("a chatctl serve without a broker is using this PostgreSQL store")

// LockNodeShared takes the node lock shared, as every node of a cluster
// (with a broker) does: any number of them may hold it together, but not
// while a node without a broker holds it exclusively (LockNode), and that
// node cannot start while they do. Held until Close, like LockNode.
func (db *DB) LockNodeShared(ctx context.Context) error { return db.lockNode(ctx, true) }

// lockSQL is the statement that tries the node lock (keepNode's, every
// few seconds, so it does not wait).
func lockSQL(shared bool) string {
	if shared {
		return `SELECT pg_try_advisory_lock_shared($1)`
	}
	return `SELECT pg_try_advisory_lock($1)`
}

func (db *DB) lockNode(ctx context.Context, shared bool) error {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, db.pool.Config().ConnConfig.Copy())
	if err != nil {
		return db.fail("store "+db.url+": node lock", err)
	}
	// Wait a moment for the lock rather than trying it once: a node that
	// just stopped (or was killed) releases it when PostgreSQL has ended
	// its session, a little after its connection closed.
	take := `SELECT pg_advisory_lock($1)`
	if shared {
		take = `SELECT pg_advisory_lock_shared($1)`
	}
	_, err = conn.Exec(ctx, fmt.Sprintf(`SET lock_timeout = %d`, nodeLockWait.Milliseconds()))
	if err == nil {
		_, err = conn.Exec(ctx, take, int64(nodeLockID))
	}
	var pe *pgconn.PgError
	held := errors.As(err, &pe) && pe.Code == "55P03" // lock_not_available: lock_timeout ran out
	if err != nil && !held {
		conn.Close(context.Background())
		return db.fail("store "+db.url+": node lock", err)
	}
	if held {
		conn.Close(context.Background())
		if shared {
			return fmt.Errorf("store %s: %w", db.url, ErrNodeAlone)
		}
		return fmt.Errorf("store %s: %w", db.url, ErrNodeLocked)
	}
	keep, stop := context.WithCancel(context.Background())
	nl := &nodeLock{stop: stop, done: make(chan struct{})}
	db.nodeMu.Lock()
	db.node = nl
	db.nodeMu.Unlock()
	go db.keepNode(keep, conn, shared, nl.done)
	return nil
}

// nodeLock is a held node lock: its keeper goroutine owns the connection
// that holds it.
type nodeLock struct {
	stop context.CancelFunc // tells the keeper to close the connection and end
	done chan struct{}      // closed when it has
}

// keepNode owns conn, the connection holding the node lock, until ctx is
// cancelled (unlockNode): then it closes it and closes done. Meanwhile it
// takes the lock again on a new connection when conn ended (the database
// restarted), so a second node cannot start meanwhile unnoticed.
func (db *DB) keepNode(ctx context.Context, conn *pgx.Conn, shared bool, done chan struct{}) {
	defer close(done)
	defer func() { closeConn(conn) }()
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	lost := "" // why the lock is not held: "", "down" or "taken"
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, opTimeout)
		err := conn.Ping(pctx)
		cancel()
		if err == nil || ctx.Err() != nil {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, connectTimeout)
		next, err := pgx.ConnectConfig(cctx, db.pool.Config().ConnConfig.Copy())
		ok := false
		if err == nil {
			err = next.QueryRow(cctx, lockSQL(shared), int64(nodeLockID)).Scan(&ok)
		}
		cancel()
		if err != nil || !ok {
			if next != nil {
				closeConn(next)
			}
			if ctx.Err() != nil {
				continue // stopping
			}
			// Say it once per cause: the database away, or the lock taken.
			switch {
			case err == nil && lost != "taken":
				db.opts.Log.Error("node lock taken by another process meanwhile; is a node without a broker running beside nodes with one?", "store", db.url)
				lost = "taken"
			case err != nil && lost != "down":
				db.opts.Log.Warn("node lock lost with its connection; retrying", "store", db.url, "err", err)
				lost = "down"
			}
			continue
		}
		lost = ""
		closeConn(conn)
		conn = next
		db.opts.Log.Info("node lock taken again", "store", db.url)
	}
}

// closeConn closes c, waiting a moment at most for a clean goodbye.
func closeConn(c *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	c.Close(ctx)
}

// unlockNode releases the node lock, if held, and returns once the
// connection holding it is closed.
func (db *DB) unlockNode() {
	db.nodeMu.Lock()
	nl := db.node
	db.node = nil
	db.nodeMu.Unlock()
	if nl != nil {
		nl.stop()
		<-nl.done
	}
}
