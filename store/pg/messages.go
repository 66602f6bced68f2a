package pg

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/chatctl/chatctl/auth"
	"github.com/chatctl/chatctl/store"
)

// Messages, as in the bbolt store: ids start at 1 in each room, increase
// by one with no gap, and an append returns only once its message is
// committed (synchronous_commit, so fsynced).
//
// Group commit. Options.Committers goroutines each own a share of the
// rooms (a room always hashes to the same one, so one process never runs
// two transactions on one room at once) and commit everything queued for
// them, up to maxBatch messages, as one transaction of one round trip:
//
//	1. upsertAppend: one statement that upserts the batch's rooms (a new
//	   room gets a new random epoch), adding to last_id and count, and
//	   inserts the messages with the ids that makes. The upsert takes the
//	   rooms' row locks in byte order of their names (the arrays are
//	   sorted), as every other statement that locks several rooms does, so
//	   writers in several processes serialise on a room without deadlock;
//	   the lock is held until COMMIT, so a room's committed ids are always
//	   a prefix 1..last_id.
//	2. trimRooms (with Retention.MaxPerRoom only): deletes the oldest
//	   messages beyond the bound.
//
// Both go in one pgx batch, which PostgreSQL runs as one implicit
// transaction committed at the batch's Sync (in every pgx query mode: one
// Sync, or one multi-statement simple query): a failure anywhere rolls
// everything back, so the ids it drew are drawn again by the next commit.
// The ids are filled in and the senders answered only after that commit.
//
// Choices, measured with BenchmarkAppendTuning (bench_test.go) on the
// project's 2-core machine:
//   - The upsert's ON CONFLICT DO UPDATE locks each existing room row as
//     SELECT … FOR UPDATE would, so locking, numbering and inserting take
//     one statement and the commit one round trip. Inserting the messages
//     with COPY instead needs an explicit transaction and four round
//     trips: slower over many rooms (median 16k vs 24k msgs/s), alike
//     for one hot room's big batches (60–63k vs 50–67k).
//   - maxBatch 1024: with 512 senders in one room, a bound of 256 gave
//     34–46k msgs/s, 1024 gave 58–71k with a lower p99; over many rooms
//     batches stay far below either bound.
//   - Options.Committers 2: over 1,000 rooms, 2 committers commit ~78
//     messages at a time for ~18–22 µs of server CPU each, 4 commit ~42
//     for ~25 µs, 8 commit ~23 for ~28–34 µs. One committer (~147 at a
//     time, ~16 µs) did as well or better here, but then a room whose row
//     another process holds stalls every room of this process; with 2,
//     half of them.

// maxBatch bounds one group commit (a variable for benchmarks, read by
// start).
var maxBatch = 1024

// altCommit, when set (by benchmarks, before Open), replaces
// commitUnnest.
var altCommit func(m *messages) func(ctx context.Context, batch []*appendReq) error

// queueLen is the capacity of each committer's queue.
const queueLen = 1024

// errClosed is returned by AppendMessage after Close.
var errClosed = errors.New("store is closed")

// messages is the group committer of one DB.
type messages struct {
	db        *DB
	seed      maphash.Seed                    // room → committer; set by start, then read only
	retention atomic.Pointer[store.Retention] // SetRetention's bound

	mu     sync.RWMutex // guards closed against sends on queues
	closed bool
	queues []chan *appendReq // one per committer; closed by stop
	done   sync.WaitGroup    // the committers

	// commit writes one batch: commitUnnest unless altCommit (set by
	// start, then read only).
	commit func(ctx context.Context, batch []*appendReq) error
	batch  int // maxBatch when start ran
}

// appendReq is one queued append; the committer fills msg.ID and
// msg.Epoch before answering on done.
type appendReq struct {
	msg  store.Message
	done chan error
}

func (m *messages) start(db *DB) {
	m.db = db
	m.seed = maphash.MakeSeed()
	m.batch = maxBatch
	m.commit = m.commitUnnest
	if altCommit != nil {
		m.commit = altCommit(m)
	}
	m.queues = make([]chan *appendReq, db.opts.Committers)
	for i := range m.queues {
		q := make(chan *appendReq, queueLen)
		m.queues[i] = q
		m.done.Add(1)
		go m.loop(q)
	}
}

// stop commits what is queued and stops the committers; later appends
// fail. It may be called more than once.
func (m *messages) stop() {
	m.mu.Lock()
	closed := m.closed
	m.closed = true
	m.mu.Unlock()
	if closed {
		return
	}
	for _, q := range m.queues {
		close(q)
	}
	m.done.Wait()
}

// SetRetention implements store.Store: the per-room bound AppendMessage
// applies.
func (db *DB) SetRetention(r store.Retention) { db.msgs.retention.Store(&r) }

// AppendMessage implements store.Store: it commits a message to room
// (creating the room) with the next id and returns it once committed. The
// timestamp is stored to the microsecond (PostgreSQL's precision), and the
// message returned carries the stored value, so what a sender is told
// equals what history returns later. A text or sender that is not UTF-8
// is stored with U+FFFD for each bad byte, as the bbolt store's JSON
// does; PostgreSQL cannot store a NUL character, so a message holding one
// is refused (alone: the others of its batch commit).
//
// Once queued, the append commits or fails whatever ctx does, so a caller
// never reports failure for a committed message.
func (db *DB) AppendMessage(ctx context.Context, room, from, text string, ts time.Time) (store.Message, error) {
	if err := checkText("room name", room); err != nil {
		return store.Message{}, err
	}
	if !utf8.ValidString(room) {
		return store.Message{}, fmt.Errorf("append message: room name %q is not UTF-8", room)
	}
	from, text = validUTF8(from), validUTF8(text)
	if err := checkText("sender", from); err != nil {
		return store.Message{}, err
	}
	if err := checkText("text", text); err != nil {
		return store.Message{}, err
	}
	ts = ts.UTC().Truncate(time.Microsecond)
	if y := ts.Year(); y < 0 || y > 9999 {
		// As the bbolt store, whose JSON cannot hold other years; and a
		// value PostgreSQL refused would fail the whole batch.
		return store.Message{}, fmt.Errorf("append message: time %v is outside years 0 to 9999", ts)
	}
	req := &appendReq{
		msg:  store.Message{Room: room, From: from, Text: text, TS: ts},
		done: make(chan error, 1),
	}
	m := &db.msgs
	q := m.queues[maphash.String(m.seed, room)%uint64(len(m.queues))]
	m.mu.RLock()
	if m.closed {
		m.mu.RUnlock()
		return store.Message{}, fmt.Errorf("append message: %w", errClosed)
	}
	select {
	case q <- req:
		m.mu.RUnlock()
	case <-ctx.Done():
		m.mu.RUnlock()
		return store.Message{}, ctx.Err()
	}
	if err := <-req.done; err != nil {
		return store.Message{}, err
	}
	return req.msg, nil
}

// checkText refuses a string PostgreSQL cannot store in a text column.
func checkText(what, s string) error {
	if strings.IndexByte(s, 0) >= 0 {
		return fmt.Errorf("append message: the %s holds a NUL character, which PostgreSQL cannot store", what)
	}
	return nil
}

// validUTF8 replaces each byte of s that is not part of a UTF-8 sequence
// with U+FFFD, as encoding/json does.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		b.WriteRune(r) // utf8.RuneError for a bad byte
		i += size
	}
	return b.String()
}

// loop commits what q holds, a batch at a time, until stop closes q.
func (m *messages) loop(q chan *appendReq) {
	defer m.done.Done()
	batch := make([]*appendReq, 0, m.batch)
	for first := range q {
		batch = append(batch[:0], first)
		runtime.Gosched() // let the senders already runnable queue theirs
	fill:
		for len(batch) < m.batch {
			select {
			case r, ok := <-q:
				if !ok {
					break fill
				}
				batch = append(batch, r)
			default:
				break fill
			}
		}
		err := m.commitBatch(batch)
		for _, r := range batch {
			r.done <- err
		}
	}
}

// commitBatch commits batch and records the outcome; on success every
// request holds its id and epoch.
func (m *messages) commitBatch(batch []*appendReq) error {
	db := m.db
	ctx, cancel := db.ctx()
	defer cancel()
	err := m.commit(ctx, batch)
	var fault *commitFault
	switch {
	case errors.As(err, &fault):
		err = fmt.Errorf("append message: %w", fault.err)
		db.lastWriteErr.Store(&err) // as a failed commit would be
	case err != nil:
		db.wrote(err)
		err = db.fail("append message", err)
	default:
		db.wrote(nil)
		db.commits.Add(1)
	}
	return err
}

// commitFault is the error of a commit that Options.CommitFault failed.
type commitFault struct{ err error }

func (f *commitFault) Error() string { return f.err.Error() }

// batchRooms is a batch seen room by room, in byte order of the names.
type batchRooms struct {
	names   []string    // distinct, sorted
	epochs  []string    // a fresh epoch for each, used if the room is new
	counts  []int64     // messages of the batch in each
	created []time.Time // creation time, if new: its first message's
	index   map[string]int
	// Per message, in batch order: its room's index and how many of the
	// batch's later messages go to the same room (its id is the room's
	// new last_id minus that).
	room []int
	back []int64
}

func groupRooms(batch []*appendReq) *batchRooms {
	g := &batchRooms{index: make(map[string]int)}
	for _, r := range batch {
		if _, ok := g.index[r.msg.Room]; !ok {
			g.index[r.msg.Room] = 0
			g.names = append(g.names, r.msg.Room)
		}
	}
	slices.Sort(g.names)
	g.epochs = make([]string, len(g.names))
	g.counts = make([]int64, len(g.names))
	g.created = make([]time.Time, len(g.names))
	for i, name := range g.names {
		g.index[name] = i
		g.epochs[i] = auth.RandomID(9)
	}
	g.room = make([]int, len(batch))
	g.back = make([]int64, len(batch))
	for i, r := range batch {
		ri := g.index[r.msg.Room]
		if g.counts[ri] == 0 {
			g.created[ri] = r.msg.TS
		}
		g.counts[ri]++
		g.room[i] = ri
	}
	seen := make([]int64, len(g.names))
	for i := len(batch) - 1; i >= 0; i-- {
		g.back[i] = seen[g.room[i]]
		seen[g.room[i]]++
	}
	return g
}

// upsertAppend adds a batch to its rooms (creating the missing ones) and
// inserts its messages, in one statement; it returns each room's epoch
// and new last_id.
const upsertAppend = `
WITH up AS (
	INSERT INTO rooms AS r (name, epoch, last_id, count, created_at)
	SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $3::bigint[], $4::timestamptz[])
	ON CONFLICT (name) DO UPDATE
		SET last_id = r.last_id + excluded.last_id, count = r.count + excluded.count
	RETURNING name, epoch, last_id
), ins AS (
	INSERT INTO messages (room, id, sender, body, ts)
	SELECT m.room, up.last_id - m.back, m.sender, m.body, m.ts
	FROM unnest($5::text[], $6::bigint[], $7::text[], $8::text[], $9::timestamptz[]) AS m (room, back, sender, body, ts)
	JOIN up ON up.name = m.room
)
SELECT name, epoch, last_id FROM up`

// trimRooms deletes, in the rooms $1, the oldest messages beyond $2 per
// room, and counts them off.
const trimRooms = `
WITH x AS (
	SELECT name, count - $2 AS excess FROM rooms WHERE name = ANY($1::text[]) AND count > $2
), d AS (
	DELETE FROM messages m
	USING (SELECT x.name, o.id FROM x CROSS JOIN LATERAL
		(SELECT id FROM messages WHERE room = x.name ORDER BY id LIMIT x.excess) o) z
	WHERE m.room = z.name AND m.id = z.id
	RETURNING m.room
)
UPDATE rooms r SET count = r.count - c.n
FROM (SELECT room, count(*) AS n FROM d GROUP BY room) c
WHERE r.name = c.room AND r.name = ANY($1::text[])`

// failCommit is a statement that fails, aborting the batch's transaction
// (Options.CommitFault).
const failCommit = `DO $$BEGIN RAISE EXCEPTION 'chatctl: commit fault (test)'; END$$`

// commitUnnest writes batch as one pgx batch (one implicit transaction,
// one round trip): upsertAppend, then trimRooms when a retention bound is
// set.
func (m *messages) commitUnnest(ctx context.Context, batch []*appendReq) error {
	g := groupRooms(batch)
	n := len(batch)
	rooms, backs := make([]string, n), g.back
	senders, bodies, stamps := make([]string, n), make([]string, n), make([]time.Time, n)
	for i, r := range batch {
		rooms[i], senders[i], bodies[i], stamps[i] = r.msg.Room, r.msg.From, r.msg.Text, r.msg.TS
	}
	b := &pgx.Batch{}
	b.Queue(upsertAppend, g.names, g.epochs, g.counts, g.created, rooms, backs, senders, bodies, stamps)
	if ret := m.retention.Load(); ret != nil && ret.MaxPerRoom > 0 {
		b.Queue(trimRooms, g.names, int64(ret.MaxPerRoom))
	}
	var fault error
	if f := m.db.opts.CommitFault; f != nil {
		if fault = f(); fault != nil {
			b.Queue(failCommit)
		}
	}
	lastIDs := make([]int64, len(g.names))
	epochs := make([]string, len(g.names))
	br := m.db.pool.SendBatch(ctx, b)
	rows, err := br.Query()
	if err == nil {
		var name, epoch string
		var last int64
		_, err = pgx.ForEachRow(rows, []any{&name, &epoch, &last}, func() error {
			i, ok := g.index[name]
			if !ok {
				return fmt.Errorf("append message: the database returned room %q, not in the batch", name)
			}
			lastIDs[i], epochs[i] = last, epoch
			return nil
		})
	}
	// Close reads to the batch's end: the commit's outcome.
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if fault != nil {
		return &commitFault{fault}
	}
	if err != nil {
		return err
	}
	for i, r := range batch {
		ri := g.room[i]
		r.msg.ID = uint64(lastIDs[ri] - g.back[i])
		r.msg.Epoch = epochs[ri]
	}
	return nil
}

// maxID is the largest id PostgreSQL's bigint holds.
const maxID = math.MaxInt64

// MessagesAfter implements store.Store: up to limit messages of room with
// id > after, oldest first.
func (db *DB) MessagesAfter(room string, after uint64, limit int) ([]store.Message, error) {
	if limit <= 0 || after >= maxID {
		return nil, nil
	}
	return db.readMessages(room, false, `SELECT id, sender, body, ts FROM messages
		WHERE room = $1 AND id > $2 ORDER BY id LIMIT $3`, room, int64(after), limit)
}

// MessagesBefore implements store.Store: the limit newest messages of room
// with id < before (before 0: the newest), oldest first.
func (db *DB) MessagesBefore(room string, before uint64, limit int) ([]store.Message, error) {
	if limit <= 0 {
		return nil, nil
	}
	if before == 0 || before > maxID {
		before = maxID // every id is below
	}
	return db.readMessages(room, true, `SELECT id, sender, body, ts FROM messages
		WHERE room = $1 AND id < $2 ORDER BY id DESC LIMIT $3`, room, int64(before), limit)
}

// readMessages runs a query for messages of room, newest first when
// reverse (and then returns them oldest first). No message is nil.
func (db *DB) readMessages(room string, reverse bool, sql string, args ...any) ([]store.Message, error) {
	ctx, cancel := db.ctx()
	defer cancel()
	rows, err := db.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, db.fail("read messages", err)
	}
	var out []store.Message
	var m store.Message
	var id int64
	_, err = pgx.ForEachRow(rows, []any{&id, &m.From, &m.Text, &m.TS}, func() error {
		out = append(out, store.Message{Room: room, ID: uint64(id), From: m.From, Text: m.Text, TS: m.TS.UTC()})
		return nil
	})
	if err != nil {
		return nil, db.fail("read messages", err)
	}
	if reverse {
		slices.Reverse(out)
	}
	return out, nil
}

// RoomEpoch implements store.Store: the epoch of room, "" when it has no
// stored history.
func (db *DB) RoomEpoch(room string) (string, error) {
	ctx, cancel := db.ctx()
	defer cancel()
	var epoch string
	err := db.pool.QueryRow(ctx, `SELECT epoch FROM rooms WHERE name = $1`, room).Scan(&epoch)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return epoch, db.fail("read room epoch", err)
}

// Heads implements store.Store: the last id and epoch of each named room
// with stored history, in one query.
func (db *DB) Heads(rooms []string) (map[string]store.Head, error) {
	out := make(map[string]store.Head, len(rooms))
	if len(rooms) == 0 {
		return out, nil
	}
	ctx, cancel := db.ctx()
	defer cancel()
	rows, err := db.pool.Query(ctx, `SELECT name, last_id, epoch FROM rooms WHERE name = ANY($1)`, rooms)
	if err != nil {
		return nil, db.fail("read room heads", err)
	}
	var name, epoch string
	var last int64
	_, err = pgx.ForEachRow(rows, []any{&name, &last, &epoch}, func() error {
		out[name] = store.Head{LastID: uint64(last), Epoch: epoch}
		return nil
	})
	if err != nil {
		return nil, db.fail("read room heads", err)
	}
	return out, nil
}

// Rooms implements store.Store: every room with stored history, by name.
func (db *DB) Rooms() ([]store.Room, error) {
	ctx, cancel := db.ctx()
	defer cancel()
	rows, err := db.pool.Query(ctx, `SELECT name, count, last_id, created_at FROM rooms ORDER BY name`)
	if err != nil {
		return nil, db.fail("list rooms", err)
	}
	var out []store.Room
	var r store.Room
	var count, last int64
	_, err = pgx.ForEachRow(rows, []any{&r.Name, &count, &last, &r.CreatedAt}, func() error {
		out = append(out, store.Room{Name: r.Name, Messages: int(count), LastID: uint64(last), CreatedAt: r.CreatedAt.UTC()})
		return nil
	})
	return out, db.fail("list rooms", err)
}

// DeleteRoom implements store.Store: it removes a room and its history,
// or returns store.ErrNotFound, and tells the change feed. The room's
// next message starts it again at id 1 with a new epoch.
func (db *DB) DeleteRoom(name string) error {
	ctx, cancel := db.ctx()
	defer cancel()
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM rooms WHERE name = $1`, name)
		if err != nil {
			return err
		}
		hadHistory := tag.RowsAffected() > 0
		// A private room goes whole: its members too (cascade).
		priv, err := tx.Exec(ctx, `DELETE FROM private_rooms WHERE name = $1`, name)
		if err != nil {
			return err
		}
		wasPrivate := priv.RowsAffected() > 0
		if !hadHistory && !wasPrivate {
			return fmt.Errorf("room %s: %w", name, store.ErrNotFound)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM messages WHERE room = $1`, name); err != nil {
			return err
		}
		if wasPrivate {
			if err := change(ctx, tx, store.ChangeMembers, name); err != nil {
				return err
			}
		}
		return change(ctx, tx, store.ChangeRoomDelete, name)
	})
	if errors.Is(err, store.ErrNotFound) {
		return err
	}
	db.wrote(err)
	return db.fail("delete room", err)
}

// Pruning works through the rooms pruneRooms at a time, deleting at most
// pruneBatch messages of each per transaction, so one prune never holds a
// room's lock (and so its senders) for long. Variables for tests.
var (
	pruneRooms       = 64
	pruneBatch int64 = 1000
)

// pruneCandidates lists, after name $1, up to $3 rooms whose oldest
// message is older than $2.
const pruneCandidates = `
SELECT r.name FROM rooms r
CROSS JOIN LATERAL (SELECT ts FROM messages m WHERE m.room = r.name ORDER BY id LIMIT 1) o
WHERE r.name > $1 AND o.ts < $2
ORDER BY r.name LIMIT $3`

// pruneOld deletes, in each room of $1 (locked in name order), the
// messages older than $2 among its $3 oldest, up to the first one that is
// not, as the bbolt store does: what goes is always the oldest part of a
// room, and one statement reads at most $3 messages of a room. It
// returns, per room, how many went.
const pruneOld = `
WITH r AS (
	SELECT name FROM rooms WHERE name = ANY($1::text[]) ORDER BY name FOR UPDATE
), z AS (
	SELECT r.name, max(o.id) AS upto
	FROM r CROSS JOIN LATERAL (
		SELECT id, bool_and(ts < $2) OVER (ORDER BY id) AS old
		FROM (SELECT id, ts FROM messages WHERE room = r.name ORDER BY id LIMIT $3) f
	) o
	WHERE o.old
	GROUP BY r.name
), d AS (
	DELETE FROM messages m USING z WHERE m.room = z.name AND m.id <= z.upto RETURNING m.room
), c AS (
	SELECT room, count(*) AS n FROM d GROUP BY room
)
UPDATE rooms SET count = rooms.count - c.n
FROM c WHERE rooms.name = c.room AND rooms.name = ANY($1::text[])
RETURNING rooms.name, c.n`

// PruneMessages implements store.Store: it deletes the messages older
// than maxAge in every room (from each room's oldest, stopping at its
// first newer one, as the bbolt store does) and returns how many went.
func (db *DB) PruneMessages(maxAge time.Duration) (int, error) {
	cutoff := db.now().Add(-maxAge)
	deleted := 0
	after := ""
	for {
		names, err := db.pruneCandidates(after, cutoff)
		if err != nil || len(names) == 0 {
			return deleted, err
		}
		after = names[len(names)-1]
		for len(names) > 0 {
			n, full, err := db.pruneRooms(names, cutoff)
			deleted += n
			if err != nil {
				return deleted, err
			}
			names = full // the rooms that may have more
		}
	}
}

func (db *DB) pruneCandidates(after string, cutoff time.Time) ([]string, error) {
	ctx, cancel := db.ctx()
	defer cancel()
	rows, err := db.pool.Query(ctx, pruneCandidates, after, cutoff, pruneRooms)
	if err != nil {
		return nil, db.fail("prune messages", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return names, db.fail("prune messages", err)
}

// pruneRooms runs pruneOld on names, returning how many messages went and
// the rooms where pruneBatch went (which may hold more).
func (db *DB) pruneRooms(names []string, cutoff time.Time) (int, []string, error) {
	ctx, cancel := db.ctx()
	defer cancel()
	rows, err := db.pool.Query(ctx, pruneOld, names, cutoff, pruneBatch)
	if err != nil {
		db.wrote(err)
		return 0, nil, db.fail("prune messages", err)
	}
	deleted := 0
	var full []string
	var name string
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&name, &n}, func() error {
		deleted += int(n)
		if n >= pruneBatch {
			full = append(full, name)
		}
		return nil
	})
	db.wrote(err)
	if err != nil {
		return 0, nil, db.fail("prune messages", err)
	}
	slices.Sort(full)
	return deleted, full, nil
}
