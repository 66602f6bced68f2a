package pg

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/chatctl/chatctl/store"
)

// The PostgreSQL side of a store copy (see store/copy.go). Export reads
// one REPEATABLE READ snapshot through server-side cursors, fetchSize rows
// at a time; Load writes with COPY, in batches, inside one transaction
// that holds the tables locked against other writers, and that commits
// only once the copy has been checked.

var (
	_ store.Exporter = (*DB)(nil)
	_ store.Importer = (*DB)(nil)
)

// fetchSize is how many rows one FETCH of an export cursor reads.
const fetchSize = 5000

// loadLockTimeout bounds the wait for the tables' locks when loading.
const loadLockTimeout = 5 * time.Second

// copyTables are every table a copy writes, in load order.
const copyTables = `users, keys, sessions, refresh_tokens, denied, rooms, messages,
	access_rules, private_rooms, room_members, read_markers, declared, audit`

const countSQL = `SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM keys),
	(SELECT count(*) FROM sessions), (SELECT count(*) FROM refresh_tokens),
	(SELECT count(*) FROM denied), (SELECT count(*) FROM rooms),
	(SELECT count(*) FROM messages), (SELECT count(*) FROM access_rules),
	(SELECT count(*) FROM private_rooms), (SELECT count(*) FROM room_members),
	(SELECT count(*) FROM read_markers), (SELECT count(*) FROM declared),
	(SELECT count(*) FROM audit)`

// Rooms are compared in byte order (COLLATE "C"), as the bbolt file
// keeps them and as Go compares strings.
const talliesSQL = `SELECT r.name, r.last_id, (SELECT count(*) FROM messages m WHERE m.room = r.name)
	FROM rooms r ORDER BY r.name COLLATE "C"`

// querier is what a transaction and the pool share.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func count(ctx context.Context, q querier) (store.Counts, error) {
	var c store.Counts
	err := q.QueryRow(ctx, countSQL).Scan(&c.Users, &c.Keys, &c.Sessions, &c.RefreshTokens, &c.Denied, &c.Rooms, &c.Messages,
		&c.AccessRules, &c.PrivateRooms, &c.Members, &c.ReadMarkers, &c.Declared, &c.Audit)
	return c, err
}

func roomTallies(ctx context.Context, q querier, fn func(store.RoomTally) error) error {
	rows, err := q.Query(ctx, talliesSQL)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var t store.RoomTally
		var last int64
		if err := rows.Scan(&t.Name, &last, &t.Messages); err != nil {
			return err
		}
		t.LastID = uint64(last)
		if err := fn(t); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Count implements store.Inventory.
func (db *DB) Count(ctx context.Context) (store.Counts, error) {
	c, err := count(ctx, db.pool)
	return c, db.fail("count records", err)
}

// RoomTallies implements store.Inventory.
func (db *DB) RoomTallies(ctx context.Context, fn func(store.RoomTally) error) error {
	return db.fail("read rooms", roomTallies(ctx, db.pool, fn))
}

// Export implements store.Exporter.
func (db *DB) Export(ctx context.Context, put func(store.Record) error) error {
	db.FlushAudit()
	tx, err := db.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return db.fail("export", err)
	}
	defer tx.Rollback(context.Background())
	c, err := count(ctx, tx)
	if err != nil {
		return db.fail("export: count records", err)
	}
	if err := put(c); err != nil {
		return err
	}
	e := exporter{ctx: ctx, tx: tx, put: put}
	for _, step := range []struct {
		what, sql string
		row       func(pgx.Rows) (store.Record, error)
	}{
		{"users", `SELECT name, hash, role, disabled, token_version, created_at, updated_at FROM users ORDER BY name`, copyScanUser},
		{"keys", `SELECT kid, secret, created_at, retired_at, max_ttl, revoked_at FROM keys ORDER BY kid`, copyScanKey},
		{"sessions", `SELECT id, username, created_at, last_used, client_addr, expires_at FROM sessions ORDER BY id`, copyScanSession},
		{"refresh tokens", `SELECT hash, session, username, expires_at, spent FROM refresh_tokens ORDER BY session, hash`, scanRefresh},
		{"deny list", `SELECT id, expires_at FROM denied ORDER BY id`, scanDeny},
		{"rooms", `SELECT name, epoch, last_id, count, created_at FROM rooms ORDER BY name`, scanRoom},
		{"messages", `SELECT room, id, sender, body, ts FROM messages ORDER BY room, id`, scanMessage},
		{"access rules", `SELECT username, pattern, perm FROM access_rules ORDER BY username, pattern`, scanRule},
		{"private rooms", `SELECT p.name, coalesce(array_agg(m.username ORDER BY m.username COLLATE "C") FILTER (WHERE m.username IS NOT NULL), '{}')
			FROM private_rooms p LEFT JOIN room_members m ON m.room = p.name GROUP BY p.name ORDER BY p.name`, scanPrivate},
		{"read markers", `SELECT username, room, id FROM read_markers ORDER BY username, room`, scanMarker},
		{"declared lists", `SELECT kind, names FROM declared ORDER BY kind`, scanDeclared},
		{"audit log", `SELECT seq, ts, entry FROM audit ORDER BY seq`, scanAudit},
	} {
		if err := e.cursor("export_"+strings.ReplaceAll(step.what, " ", "_"), step.sql, step.row); err != nil {
			var se sinkError
			if errors.As(err, &se) {
				return se.error
			}
			return db.fail("export "+step.what, err)
		}
	}
	var last int64
	var called bool
	if err := tx.QueryRow(ctx, `SELECT last_value, is_called FROM audit_seq`).Scan(&last, &called); err != nil {
		return db.fail("export audit sequence", err)
	}
	if !called {
		last = 0
	}
	return put(store.AuditSequence{Last: uint64(last)})
}

// sinkError marks an error of the exporter's put, which belongs to the
// target rather than to this store.
type sinkError struct{ error }

// exporter streams the rows of cursors to put.
type exporter struct {
	ctx context.Context
	tx  pgx.Tx
	put func(store.Record) error
}

// cursor declares the cursor name for sql and fetches it fetchSize rows
// at a time, handing each row, as a record, to put. Each query gets a
// cursor of its own name: pgx caches the shape of a statement's result
// by its text.
func (e *exporter) cursor(name, sql string, scan func(pgx.Rows) (store.Record, error)) error {
	if _, err := e.tx.Exec(e.ctx, `DECLARE `+name+` NO SCROLL CURSOR FOR `+sql); err != nil {
		return err
	}
	for {
		rows, err := e.tx.Query(e.ctx, fmt.Sprintf(`FETCH %d FROM %s`, fetchSize, name))
		if err != nil {
			return err
		}
		n := 0
		for rows.Next() {
			n++
			r, err := scan(rows)
			if err == nil {
				if err = e.put(r); err != nil {
					err = sinkError{err}
				}
			}
			if err != nil {
				rows.Close()
				return err
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if n < fetchSize {
			break
		}
	}
	_, err := e.tx.Exec(e.ctx, `CLOSE `+name)
	return err
}

func copyScanUser(rows pgx.Rows) (store.Record, error) {
	var u store.User
	var version int64
	err := rows.Scan(&u.Name, &u.Hash, &u.Role, &u.Disabled, &version, &u.CreatedAt, &u.UpdatedAt)
	u.TokenVersion, u.CreatedAt, u.UpdatedAt = uint64(version), u.CreatedAt.UTC(), u.UpdatedAt.UTC()
	return u, err
}

func copyScanKey(rows pgx.Rows) (store.Record, error) {
	var k store.Key
	var retired, revoked *time.Time
	var ttl int64
	err := rows.Scan(&k.Kid, &k.Secret, &k.CreatedAt, &retired, &ttl, &revoked)
	k.CreatedAt, k.MaxTTL = k.CreatedAt.UTC(), time.Duration(ttl)
	if retired != nil {
		k.RetiredAt = retired.UTC()
	}
	if revoked != nil {
		k.RevokedAt = revoked.UTC()
	}
	return k, err
}

func copyScanSession(rows pgx.Rows) (store.Record, error) {
	var s store.Session
	err := rows.Scan(&s.ID, &s.User, &s.CreatedAt, &s.LastUsed, &s.ClientAddr, &s.ExpiresAt)
	s.CreatedAt, s.LastUsed, s.ExpiresAt = s.CreatedAt.UTC(), s.LastUsed.UTC(), s.ExpiresAt.UTC()
	return s, err
}

func scanRefresh(rows pgx.Rows) (store.Record, error) {
	var r store.RefreshToken
	err := rows.Scan(&r.Hash, &r.Session, &r.User, &r.ExpiresAt, &r.Spent)
	r.ExpiresAt = r.ExpiresAt.UTC()
	return r, err
}

func scanDeny(rows pgx.Rows) (store.Record, error) {
	var d store.DenyEntry
	err := rows.Scan(&d.ID, &d.ExpiresAt)
	d.ExpiresAt = d.ExpiresAt.UTC()
	return d, err
}

func scanRoom(rows pgx.Rows) (store.Record, error) {
	var r store.RoomRecord
	var last int64
	err := rows.Scan(&r.Name, &r.Epoch, &last, &r.Count, &r.CreatedAt)
	r.LastID, r.CreatedAt = uint64(last), r.CreatedAt.UTC()
	return r, err
}

func scanMessage(rows pgx.Rows) (store.Record, error) {
	var m store.Message
	var id int64
	err := rows.Scan(&m.Room, &id, &m.From, &m.Text, &m.TS)
	m.ID, m.TS = uint64(id), m.TS.UTC()
	return m, err
}

func scanRule(rows pgx.Rows) (store.Record, error) {
	var r store.AccessRule
	err := rows.Scan(&r.User, &r.Pattern, &r.Perm)
	return r, err
}

func scanPrivate(rows pgx.Rows) (store.Record, error) {
	var p store.PrivateRoom
	err := rows.Scan(&p.Name, &p.Members)
	if p.Members == nil {
		p.Members = []string{}
	}
	return p, err
}

func scanMarker(rows pgx.Rows) (store.Record, error) {
	var m store.ReadMarker
	var id int64
	err := rows.Scan(&m.User, &m.Room, &id)
	m.ID = uint64(id)
	return m, err
}

func scanDeclared(rows pgx.Rows) (store.Record, error) {
	var d store.DeclaredList
	err := rows.Scan(&d.Kind, &d.Names)
	if d.Names == nil {
		d.Names = []string{}
	}
	return d, err
}

// scanAudit reads an entry; its sequence and time are the columns'.
func scanAudit(rows pgx.Rows) (store.Record, error) {
	var e store.AuditEntry
	var seq int64
	var ts time.Time
	var entry []byte
	if err := rows.Scan(&seq, &ts, &entry); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(entry, &e); err != nil {
		return nil, fmt.Errorf("%w: audit entry %d: %v", store.ErrCorrupt, seq, err)
	}
	e.Seq, e.Time = uint64(seq), ts.UTC()
	return e, nil
}

// Load implements store.Importer: one transaction that first locks every
// table against writers (waiting at most loadLockTimeout) and checks that
// they are all empty.
func (db *DB) Load(ctx context.Context) (store.Loader, error) {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return nil, db.fail("store "+db.url, err)
	}
	fail := func(what string, err error) (store.Loader, error) {
		tx.Rollback(context.Background())
		return nil, db.fail("store "+db.url+": "+what, err)
	}
	if _, err := tx.Exec(ctx, fmt.Sprintf(`SET LOCAL lock_timeout = %d`, loadLockTimeout.Milliseconds())); err != nil {
		return fail("set lock timeout", err)
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE `+copyTables+` IN SHARE ROW EXCLUSIVE MODE`); err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "55P03" { // lock_not_available
			tx.Rollback(context.Background())
			return nil, fmt.Errorf("store %s: another process is writing to it (stop chatctl serve on it first)", db.url)
		}
		return fail("lock tables", err)
	}
	c, err := count(ctx, tx)
	if err != nil {
		return fail("count records", err)
	}
	if !c.Empty() {
		tx.Rollback(context.Background())
		return nil, fmt.Errorf("store %s %w (%s); copy into a new, empty database", db.url, store.ErrNotEmpty, c)
	}
	return &loader{db: db, tx: tx}, nil
}

// loader is the store.Loader of a PostgreSQL store: rows of one table are
// gathered up to copyBatch and written with COPY. It is used by one
// goroutine.
type loader struct {
	db    *DB
	tx    pgx.Tx
	table string   // the table of rows
	cols  []string // its columns
	rows  [][]any
	// members are the room_members rows of the private rooms in rows,
	// written after them.
	members [][]any
	bytes   int // about the size of rows and members (store.RecordSize)
}

func (l *loader) Count(ctx context.Context) (store.Counts, error) {
	c, err := count(ctx, l.tx)
	return c, l.db.fail("count copied records", err)
}

func (l *loader) RoomTallies(ctx context.Context, fn func(store.RoomTally) error) error {
	return l.db.fail("read copied rooms", roomTallies(ctx, l.tx, fn))
}

// Put implements store.Loader.
func (l *loader) Put(ctx context.Context, r store.Record) error {
	var table string
	var cols []string
	var row []any
	switch r := r.(type) {
	case store.User:
		table, cols = "users", []string{"name", "hash", "role", "disabled", "token_version", "created_at", "updated_at"}
		row = []any{strings.ToLower(r.Name), r.Hash, r.Role, r.Disabled, int64(r.TokenVersion), r.CreatedAt, r.UpdatedAt}
	case store.Key:
		table, cols = "keys", []string{"kid", "secret", "created_at", "retired_at", "max_ttl", "revoked_at"}
		row = []any{r.Kid, r.Secret, r.CreatedAt, copyNullTime(r.RetiredAt), int64(r.MaxTTL), copyNullTime(r.RevokedAt)}
	case store.Session:
		table, cols = "sessions", []string{"id", "username", "created_at", "last_used", "client_addr", "expires_at"}
		row = []any{r.ID, strings.ToLower(r.User), r.CreatedAt, r.LastUsed, r.ClientAddr, r.ExpiresAt}
	case store.RefreshToken:
		table, cols = "refresh_tokens", []string{"hash", "session", "username", "expires_at", "spent"}
		row = []any{r.Hash, r.Session, strings.ToLower(r.User), r.ExpiresAt, r.Spent}
	case store.DenyEntry:
		table, cols = "denied", []string{"id", "expires_at"}
		row = []any{r.ID, r.ExpiresAt}
	case store.RoomRecord:
		table, cols = "rooms", []string{"name", "epoch", "last_id", "count", "created_at"}
		row = []any{r.Name, r.Epoch, int64(r.LastID), r.Count, r.CreatedAt}
	case store.Message:
		table, cols = "messages", []string{"room", "id", "sender", "body", "ts"}
		row = []any{r.Room, int64(r.ID), r.From, r.Text, r.TS}
	case store.AccessRule:
		table, cols = "access_rules", []string{"username", "pattern", "perm"}
		row = []any{strings.ToLower(r.User), r.Pattern, r.Perm}
	case store.PrivateRoom:
		table, cols = "private_rooms", []string{"name"}
		row = []any{r.Name}
	case store.ReadMarker:
		table, cols = "read_markers", []string{"username", "room", "id"}
		row = []any{strings.ToLower(r.User), r.Room, int64(r.ID)}
	case store.DeclaredList:
		names := r.Names
		if names == nil {
			names = []string{}
		}
		table, cols = "declared", []string{"kind", "names"}
		row = []any{r.Kind, names}
	case store.AuditEntry:
		entry, err := json.Marshal(r)
		if err != nil {
			return err
		}
		table, cols = "audit", []string{"seq", "ts", "entry"}
		row = []any{int64(r.Seq), r.Time, entry}
	case store.AuditSequence:
		if err := l.Flush(ctx); err != nil {
			return err
		}
		if r.Last == 0 {
			return nil
		}
		_, err := l.tx.Exec(ctx, `SELECT setval('audit_seq', $1)`, int64(r.Last))
		return l.db.fail("set the audit sequence", err)
	case store.Counts:
		return nil
	default:
		return fmt.Errorf("store copy: unknown record %T", r)
	}
	if table != l.table {
		if err := l.Flush(ctx); err != nil {
			return err
		}
		l.table, l.cols = table, cols
	}
	l.rows = append(l.rows, row)
	if p, ok := r.(store.PrivateRoom); ok {
		for _, m := range normMembers(p.Members) {
			l.members = append(l.members, []any{p.Name, m})
		}
	}
	l.bytes += store.RecordSize(r)
	if len(l.rows)+len(l.members) >= store.CopyBatch || l.bytes >= store.CopyBatchBytes {
		return l.Flush(ctx)
	}
	return nil
}

// copyNullTime is t, or NULL for the zero time.
func copyNullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// Flush implements store.Loader: one COPY of the rows gathered, and one
// of the members of the private rooms among them.
func (l *loader) Flush(ctx context.Context) error {
	if len(l.rows) == 0 {
		return nil
	}
	table := l.table
	_, err := l.tx.CopyFrom(ctx, pgx.Identifier{l.table}, l.cols, pgx.CopyFromRows(l.rows))
	if err != nil {
		if bad := unstorable(l.cols, l.rows); bad != "" {
			err = fmt.Errorf("%s, which PostgreSQL text cannot store: %s", bad, describe(err))
		}
	} else if len(l.members) > 0 {
		table = "room_members"
		cols := []string{"room", "username"}
		_, err = l.tx.CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromRows(l.members))
		if err != nil {
			if bad := unstorable(cols, l.members); bad != "" {
				err = fmt.Errorf("%s, which PostgreSQL text cannot store: %s", bad, describe(err))
			}
		}
	}
	clear(l.rows)
	clear(l.members)
	l.rows, l.members, l.bytes = l.rows[:0], l.members[:0], 0
	if err != nil {
		return l.db.fail("copy into "+table, err)
	}
	return nil
}

// unstorable names the first value of rows (of columns cols) that
// PostgreSQL's text refuses (a NUL character, or bytes that are not
// UTF-8), or "".
func unstorable(cols []string, rows [][]any) string {
	bad := func(s string) bool { return strings.IndexByte(s, 0) >= 0 || !utf8.ValidString(s) }
	for _, row := range rows {
		for i, v := range row { // the value itself is not shown: it may be a hash
			switch v := v.(type) {
			case string:
				if !bad(v) {
					continue
				}
			case []string:
				if !slices.ContainsFunc(v, bad) {
					continue
				}
			default:
				continue
			}
			key := fmt.Sprintf("%s %q", cols[0], row[0])
			if cols[0] == "room" && cols[1] == "id" {
				key = fmt.Sprintf("message %d of room %q", row[1], row[0])
			}
			return fmt.Sprintf("%s: %s holds a NUL character or bytes that are not UTF-8", key, cols[i])
		}
	}
	return ""
}

// Commit implements store.Loader.
func (l *loader) Commit(ctx context.Context) error {
	if err := l.Flush(ctx); err != nil {
		return err
	}
	return l.db.fail("commit the copy", l.tx.Commit(ctx))
}

// Abort implements store.Loader: nothing written is kept.
func (l *loader) Abort() error {
	l.rows, l.members = nil, nil
	err := l.tx.Rollback(context.Background())
	if errors.Is(err, pgx.ErrTxClosed) {
		return nil
	}
	return l.db.fail("roll back the copy", err)
}
