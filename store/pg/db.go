// Package pg is chatctl's PostgreSQL store (SPEC §7): the same
// store.Store as the bbolt file, for several processes on one database.
//
// # Design
//
//   - One pgxpool per handle. Every method runs its statements with a
//     deadline (opTimeout), so a database that stops answering turns into
//     errors wrapping store.ErrUnavailable, never a hang.
//   - Schema: versioned migrations (migrations below), applied by Open in
//     one transaction under a transaction-scoped advisory lock, so several
//     processes starting at once apply each migration exactly once. We
//     use our own dozen lines rather than a migration library: the
//     schema is ours alone, migrations are plain SQL compiled into the
//     binary, and the lock is the only part that needs care.
//   - Messages: group commit as in the bbolt store. Per-room ids come from
//     rooms.last_id, read with SELECT … FOR UPDATE (rooms locked in name
//     order, so writers on several processes never deadlock) in the
//     transaction that inserts the messages; an ack follows COMMIT, and a
//     rolled-back transaction uses no id.
//   - Change feed: every write that another process must act on (a user
//     disabled, a key rotated, a token revoked, a room deleted) appends a
//     row to changes in its transaction, numbered from one locked counter
//     row, so numbering order is commit order; servers poll it (Watch).
package pg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatctl/chatctl/configs"
	"github.com/chatctl/chatctl/store"
)

// opTimeout bounds every statement a method runs.
const opTimeout = 5 * time.Second

// connectTimeout bounds Open's first connection.
const connectTimeout = 5 * time.Second

// schemaLockID is the advisory lock key Open's migration takes ("chatctl"
// in ASCII, as an int64).
const schemaLockID = 0x63686174_63746c00

// Options tune Open. The zero value is usable.
type Options struct {
	// Access: store.Create creates the schema in an empty database;
	// Read and Write refuse a database without one (store.ErrNoStore).
	Access store.Access
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives the store's own warnings (the change feed, the node
	// lock); nil means slog.Default().
	Log *slog.Logger
	// MaxConns bounds the pool; 0 means 16.
	MaxConns int32
	// Committers is the number of message committers; 0 means 2 (see
	// BenchmarkAppendTuning: on 2 cores, 2 beat 4 and 8).
	Committers int
	// CommitFault, when set, is called before each message commit; an
	// error makes that commit fail (its transaction runs and is rolled
	// back), as a database failing the commit would: AppendMessage
	// returns an error wrapping it and LastWriteErr reports it. Only for
	// tests, like store.Options.WriteFault.
	CommitFault func() error
}

// DB is an open PostgreSQL store.
type DB struct {
	pool    *pgxpool.Pool
	url     string // redacted, for messages
	host    string // host:port, for messages
	now     func() time.Time
	created bool // Open created the schema; set at Open, then read only
	opts    Options

	lastWriteErr atomic.Pointer[error] // latest failed write, nil once one commits
	commits      atomic.Uint64         // message transactions committed

	// watching is set while the change feed is watched (Watch): only
	// then may users be served from memory (users.go).
	watching atomic.Bool
	users    userCache // users read while watching (users.go)

	nodeMu sync.Mutex // guards node
	node   *nodeLock  // the node lock's keeper (LockNode); nil without

	msgs   messages         // the message committers (messages.go)
	denied deny             // the deny list cache (sessions.go)
	audit  store.AuditQueue // RecordAudit's queue and writer
}

var _ store.Store = (*DB)(nil)

// Open connects to the database at url, creates or upgrades the schema
// (see Options.Access) and returns the store. Errors are one line naming
// the host, never the password.
func Open(ctx context.Context, url string, opts Options) (*DB, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = 16
	}
	if opts.Committers <= 0 {
		opts.Committers = 2
	}
	redacted := configs.RedactURL(url)
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("store %s: bad URL: %s", redacted, describe(err))
	}
	cfg.MaxConns = opts.MaxConns
	cfg.ConnConfig.ConnectTimeout = connectTimeout
	host := net.JoinHostPort(cfg.ConnConfig.Host, fmt.Sprint(cfg.ConnConfig.Port))
	db := &DB{url: redacted, host: host, now: opts.Now, opts: opts}
	cctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(cctx, cfg)
	if err == nil {
		err = pool.Ping(cctx)
	}
	if err != nil {
		if pool != nil {
			pool.Close()
		}
		if isUnavailable(err) {
			return nil, fmt.Errorf("store PostgreSQL at %s: %w: %s", host, store.ErrUnavailable, describe(err))
		}
		return nil, fmt.Errorf("store PostgreSQL at %s: cannot connect: %s", host, describe(err))
	}
	db.pool = pool
	if err := db.migrate(cctx); err != nil {
		pool.Close()
		return nil, err
	}
	db.msgs.start(db)
	db.audit.Init(db.AppendAudit)
	return db, nil
}

// describe is err in one line without anything that may be a secret:
// pgconn's errors name the host and user but not the password.
func describe(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Message + " (SQLSTATE " + pe.Code + ")"
	}
	return strings.Join(strings.Fields(err.Error()), " ")
}

// ctx returns a context bounded by opTimeout.
func (db *DB) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), opTimeout)
}

// fail turns a driver error into the store's: connection problems wrap
// store.ErrUnavailable and name the host.
func (db *DB) fail(op string, err error) error {
	if err == nil {
		return nil
	}
	if isUnavailable(err) {
		return fmt.Errorf("%s: PostgreSQL at %s: %w: %s", op, db.host, store.ErrUnavailable, describe(err))
	}
	return fmt.Errorf("%s: %w", op, err)
}

// isUnavailable reports whether err means the server could not be used
// (down, unreachable, shutting down, timed out), as opposed to a refused
// statement.
func isUnavailable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// Class 08: connection exception; 57P01..57P03: admin shutdown,
		// crash shutdown, cannot connect now; 53: insufficient resources.
		return strings.HasPrefix(pe.Code, "08") || strings.HasPrefix(pe.Code, "57P") || strings.HasPrefix(pe.Code, "53")
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	// The connection cut while a statement was on it (the server went
	// away mid-query): no net.Error, only EOF.
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, pgconn.ErrConnClosed) || errors.Is(err, net.ErrClosed) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var ce *pgconn.ConnectError
	return errors.As(err, &ce) || pgconn.SafeToRetry(err)
}

// wrote records the outcome of a write for LastWriteErr.
func (db *DB) wrote(err error) {
	if err != nil && isUnavailable(err) {
		db.lastWriteErr.Store(&err)
		return
	}
	if err == nil {
		db.lastWriteErr.Store(nil)
	}
}

// Close implements store.Store: it commits queued messages and audit
// entries, then closes the pool.
func (db *DB) Close() error {
	db.unlockNode()
	db.msgs.stop()
	db.audit.Stop()
	db.pool.Close()
	return nil
}

// Created implements store.Store: Open created the schema.
func (db *DB) Created() bool { return db.created }

// ReadOnly implements store.Store; a PostgreSQL store is never opened
// read-only.
func (db *DB) ReadOnly() bool { return false }

// Path implements store.Store: the URL without its password.
func (db *DB) Path() string { return db.url }

// Pool returns the connection pool, for tests and store copy.
func (db *DB) Pool() *pgxpool.Pool { return db.pool }

// LastWriteErr implements store.Store.
func (db *DB) LastWriteErr() error {
	if p := db.lastWriteErr.Load(); p != nil {
		return *p
	}
	return nil
}

// MessageCommits implements store.Store.
func (db *DB) MessageCommits() uint64 { return db.commits.Load() }

// Schema implements store.Store: the version recorded in the database. It
// fails when the database cannot be reached, so /health reports it.
func (db *DB) Schema() (int, error) {
	ctx, cancel := db.ctx()
	defer cancel()
	var v int
	err := db.pool.QueryRow(ctx, `SELECT version FROM chatctl_schema`).Scan(&v)
	return v, db.fail("read schema version", err)
}

// migrations[i] upgrades the schema from version i to i+1.
var migrations = []string{
	0: `
CREATE TABLE users (
	name          text PRIMARY KEY,
	hash          text NOT NULL,
	role          text NOT NULL,
	disabled      boolean NOT NULL DEFAULT false,
	token_version bigint NOT NULL,
	created_at    timestamptz NOT NULL,
	updated_at    timestamptz NOT NULL
);
CREATE TABLE keys (
	kid        text PRIMARY KEY,
	secret     bytea NOT NULL,
	created_at timestamptz NOT NULL,
	retired_at timestamptz,
	max_ttl    bigint NOT NULL DEFAULT 0,
	revoked_at timestamptz
);
-- At most one active (signing) key.
CREATE UNIQUE INDEX keys_one_active ON keys ((true)) WHERE retired_at IS NULL;
CREATE TABLE sessions (
	id          text PRIMARY KEY,
	username    text NOT NULL,
	created_at  timestamptz NOT NULL,
	last_used   timestamptz NOT NULL,
	client_addr text NOT NULL,
	expires_at  timestamptz NOT NULL
);
CREATE INDEX sessions_username ON sessions (username);
CREATE INDEX sessions_expires ON sessions (expires_at);
-- Refresh tokens, by SHA-256 of the token; spent ones are kept until
-- their session ends, so a reuse is recognised.
CREATE TABLE refresh_tokens (
	hash       bytea PRIMARY KEY,
	session    text NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
	username   text NOT NULL,
	expires_at timestamptz NOT NULL,
	spent      boolean NOT NULL DEFAULT false
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session);
-- Revoked access-token ids and ended session ids, until they expire.
CREATE TABLE denied (
	id         text PRIMARY KEY,
	expires_at timestamptz NOT NULL
);
-- Room names compare as bytes (COLLATE "C"), as in the bbolt store:
-- listings sort alike, and every statement that locks several rooms
-- locks them in the order the message committers use.
CREATE TABLE rooms (
	name       text COLLATE "C" PRIMARY KEY,
	epoch      text NOT NULL,
	last_id    bigint NOT NULL DEFAULT 0,
	count      bigint NOT NULL DEFAULT 0,
	created_at timestamptz NOT NULL
);
-- No foreign key to rooms and no index on ts: each cost PostgreSQL CPU on
-- every message (the key's check is a trigger per row), and neither is
-- needed: messages are only inserted by the statement that upserts their
-- room, DeleteRoom deletes them with it, and pruning walks each room's
-- oldest messages by id (see messages.go).
CREATE TABLE messages (
	room   text COLLATE "C" NOT NULL,
	id     bigint NOT NULL,
	sender text NOT NULL,
	body   text NOT NULL,
	ts     timestamptz NOT NULL,
	PRIMARY KEY (room, id)
);
CREATE TABLE audit (
	seq   bigint PRIMARY KEY,
	ts    timestamptz NOT NULL,
	entry jsonb NOT NULL
);
CREATE INDEX audit_ts ON audit (ts, seq);
CREATE SEQUENCE audit_seq;
-- The change feed (see the package comment).
CREATE TABLE change_seq (seq bigint NOT NULL);
INSERT INTO change_seq VALUES (0);
CREATE TABLE changes (
	seq  bigint PRIMARY KEY,
	kind text NOT NULL,
	key  text NOT NULL,
	at   timestamptz NOT NULL DEFAULT now()
);
`,
	// Access rules, private rooms and read markers (rooms_access.go). A
	// private room is its own row, so rooms (whose rows come and go with
	// history) keeps its shape.
	1: `
CREATE TABLE access_rules (
	username text NOT NULL,
	pattern  text NOT NULL,
	perm     text NOT NULL,
	PRIMARY KEY (username, pattern)
);
CREATE TABLE private_rooms (
	name text PRIMARY KEY
);
CREATE TABLE room_members (
	room     text NOT NULL REFERENCES private_rooms (name) ON DELETE CASCADE,
	username text NOT NULL,
	PRIMARY KEY (room, username)
);
-- What the config file declared when last applied (auth.users, auth.access).
CREATE TABLE declared (
	kind  text PRIMARY KEY,
	names text[] NOT NULL
);
CREATE TABLE read_markers (
	username text NOT NULL,
	room     text NOT NULL,
	id       bigint NOT NULL,
	PRIMARY KEY (username, room)
);
`,
}

// migrate creates or upgrades the schema under an advisory lock held for
// its transaction.
func (db *DB) migrate(ctx context.Context) error {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return db.fail("store "+db.url, err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(schemaLockID)); err != nil {
		return db.fail("store "+db.url+": lock schema", err)
	}
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT to_regclass('chatctl_schema') IS NOT NULL`).Scan(&exists); err != nil {
		return db.fail("store "+db.url, err)
	}
	version := 0
	if exists {
		if err := tx.QueryRow(ctx, `SELECT version FROM chatctl_schema`).Scan(&version); err != nil {
			return db.fail("store "+db.url+": read schema version", err)
		}
	} else if db.opts.Access != store.Create {
		return fmt.Errorf("store %s: %w: the database has no chatctl schema", db.url, store.ErrNoStore)
	}
	if version > len(migrations) {
		return fmt.Errorf("store %s: %w (schema %d; this binary knows up to %d)", db.url, store.ErrNewerSchema, version, len(migrations))
	}
	if version == len(migrations) {
		return nil
	}
	if !exists {
		if _, err := tx.Exec(ctx, `CREATE TABLE chatctl_schema (version int NOT NULL); INSERT INTO chatctl_schema VALUES (0)`); err != nil {
			return db.fail("store "+db.url+": create schema", err)
		}
	}
	for v := version; v < len(migrations); v++ {
		if _, err := tx.Exec(ctx, migrations[v]); err != nil {
			return db.fail(fmt.Sprintf("store %s: migrate schema %d to %d", db.url, v, v+1), err)
		}
	}
	if _, err := tx.Exec(ctx, `UPDATE chatctl_schema SET version = $1`, len(migrations)); err != nil {
		return db.fail("store "+db.url, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return db.fail("store "+db.url+": commit schema", err)
	}
	db.created = version == 0
	return nil
}

// change appends one entry to the change feed inside tx (see Watch).
func change(ctx context.Context, tx pgx.Tx, kind, key string) error {
	_, err := tx.Exec(ctx, `WITH s AS (UPDATE change_seq SET seq = seq + 1 RETURNING seq)
		INSERT INTO changes (seq, kind, key) SELECT seq, $1, $2 FROM s`, kind, key)
	return err
}
