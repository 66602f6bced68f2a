package pg

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatctl/chatctl/store"
)

// Refresh sessions, as in the bbolt store (store/session.go): a login
// starts a session with its first refresh token; each refresh spends the
// token (kept, marked spent, until the session ends) and issues the next;
// presenting a spent one ends the session and denies its id. Tokens are
// kept as SHA-256 hashes only.
//
// Locks: every transaction on a session locks its sessions row first
// (SELECT … FOR UPDATE, or the DELETE), then its refresh_tokens rows, and
// the change feed's counter row last (as every writer does). Refreshes of
// one family queue on the session row: of two concurrent refreshes with
// one token exactly one wins, the other sees the token spent (reuse,
// which ends the family) or gone (ErrRefreshInvalid). A session is
// started under FOR SHARE on its user's row, so a revocation (UpdateUser,
// which holds the row FOR UPDATE) is never outrun.

// denyRetry is how soon Denied tries again to load the deny list after a
// failed load (the database down at start).
const denyRetry = time.Second

// denyFallback is how long an id another process denied is kept in memory
// when its expiry cannot be read (the database down meanwhile): the id
// was revoked, so keeping it longer only costs memory.
const denyFallback = 24 * time.Hour

// deny is the deny list in memory: Denied reads only this. It is loaded
// from the denied table on first use and then kept up by this handle's
// own writes and, for other processes' writes, by applyChange.
type deny struct {
	ids    sync.Map // id -> expiry (time.Time)
	loaded atomic.Bool
	mu     sync.Mutex // held by the one load in progress; guards tried
	tried  time.Time  // wall time of the latest failed load
}

// add puts id on the in-memory list until exp.
func (d *deny) add(id string, exp time.Time) {
	if id != "" {
		d.ids.Store(id, exp)
	}
}

// loadDenied reads the deny list into memory once; after a failure it
// tries again at most every denyRetry. Until a load succeeds, Denied knows
// only the ids this handle wrote or applyChange added.
func (db *DB) loadDenied() {
	d := &db.denied
	if d.loaded.Load() {
		return
	}
	// One load at a time, and nobody waits for it: a token check during
	// a slow load goes on with what memory holds.
	if !d.mu.TryLock() {
		return
	}
	defer d.mu.Unlock()
	if d.loaded.Load() || time.Since(d.tried) < denyRetry {
		return
	}
	now := db.now()
	err := db.query("read the deny list", func(ctx context.Context) error {
		rows, err := db.pool.Query(ctx, `SELECT id, expires_at FROM denied WHERE expires_at >= $1`, ceil(now))
		if err != nil {
			return err
		}
		var id string
		var exp time.Time
		_, err = pgx.ForEachRow(rows, []any{&id, &exp}, func() error {
			d.ids.LoadOrStore(id, utc(exp))
			return nil
		})
		return err
	})
	if err != nil {
		d.tried = time.Now()
		return
	}
	d.loaded.Store(true)
}

// Denied implements store.Store: id, an access token's jti or a session
// id, was revoked. It reads memory only, once the list is loaded.
func (db *DB) Denied(id string) bool {
	db.loadDenied()
	_, ok := db.denied.ids.Load(id)
	return ok
}

// applyChange acts on one change-feed row another process wrote (the
// poller calls it for each, in order): a denied jti or session id joins
// the in-memory deny list with its expiry; a changed or revoked user is
// dropped from the user cache. Other kinds are not this file's.
func (db *DB) applyChange(kind, key string) {
	switch kind {
	case "jti", "session":
		var exp time.Time
		err := db.query("read deny entry", func(ctx context.Context) error {
			return db.pool.QueryRow(ctx, `SELECT expires_at FROM denied WHERE id = $1`, key).Scan(&exp)
		})
		switch {
		case err == nil:
			db.denied.add(key, utc(exp))
		case errors.Is(err, pgx.ErrNoRows):
			// Pruned already: it has expired.
		default:
			db.denied.add(key, db.now().Add(denyFallback))
		}
	case "user", "user.revoke":
		db.users.drop(strings.ToLower(key))
	case store.ChangeReset:
		// Changes were missed: forget every user, read the deny list
		// afresh (what memory holds stays until then).
		db.users.clear()
		db.denied.loaded.Store(false)
		db.loadDenied()
	}
}

const sessionColumns = `id, username, created_at, last_used, client_addr, expires_at`

func scanSession(row pgx.Row) (store.Session, error) {
	var s store.Session
	err := row.Scan(&s.ID, &s.User, &s.CreatedAt, &s.LastUsed, &s.ClientAddr, &s.ExpiresAt)
	s.CreatedAt, s.LastUsed, s.ExpiresAt = utc(s.CreatedAt), utc(s.LastUsed), utc(s.ExpiresAt)
	return s, err
}

// CreateSession implements store.Store: a session for user, valid for
// ttl, with its first refresh token; ErrNotFound for an unknown user.
func (db *DB) CreateSession(user, clientAddr string, ttl time.Duration) (store.Session, string, error) {
	return db.createSession(user, clientAddr, ttl, nil)
}

// CreateSessionAt implements store.Store: CreateSession only while the
// user's token version is still version, else ErrVersionChanged.
func (db *DB) CreateSessionAt(user string, version uint64, clientAddr string, ttl time.Duration) (store.Session, string, error) {
	return db.createSession(user, clientAddr, ttl, &version)
}

func (db *DB) createSession(user, clientAddr string, ttl time.Duration, version *uint64) (store.Session, string, error) {
	now := stamp(db.now())
	s := store.Session{ID: store.NewSessionID(), User: strings.ToLower(user), CreatedAt: now, LastUsed: now, ClientAddr: clientAddr, ExpiresAt: stamp(now.Add(ttl))}
	token := store.NewRefreshToken(s.ID)
	_, sum, _ := store.RefreshTokenHash(token)
	err := db.inTx("start session", func(ctx context.Context, tx pgx.Tx) error {
		var v int64
		err := tx.QueryRow(ctx, `SELECT token_version FROM users WHERE name = $1 FOR SHARE`, s.User).Scan(&v)
		if errors.Is(err, pgx.ErrNoRows) {
			return userNotFound(s.User)
		} else if err != nil {
			return err
		}
		if version != nil && uint64(v) != *version {
			return refuse(store.ErrVersionChanged)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO sessions (`+sessionColumns+`) VALUES ($1, $2, $3, $4, $5, $6)`,
			s.ID, s.User, s.CreatedAt, s.LastUsed, s.ClientAddr, s.ExpiresAt); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO refresh_tokens (hash, session, username, expires_at) VALUES ($1, $2, $3, $4)`,
			sum[:], s.ID, s.User, s.ExpiresAt)
		return err
	})
	if err != nil {
		return store.Session{}, "", err
	}
	return s, token, nil
}

// denySession puts s's id on the deny list (in tx) until its access
// tokens have all expired, and notes it in the change feed.
func denySession(ctx context.Context, tx pgx.Tx, s store.Session) (time.Time, error) {
	exp := stamp(s.ExpiresAt.Add(store.SessionDenyMargin))
	if err := putDenied(ctx, tx, s.ID, exp); err != nil {
		return exp, err
	}
	return exp, change(ctx, tx, "session", s.ID)
}

// putDenied writes a deny-list entry; an id denied twice keeps the later
// expiry.
func putDenied(ctx context.Context, tx pgx.Tx, id string, exp time.Time) error {
	_, err := tx.Exec(ctx, `INSERT INTO denied (id, expires_at) VALUES ($1, $2)
		ON CONFLICT (id) DO UPDATE SET expires_at = GREATEST(denied.expires_at, EXCLUDED.expires_at)`, id, exp)
	return err
}

// Refresh implements store.Store: old is spent and the session's next
// token returned, valid for ttl from now. A spent token ends the session
// (its id is denied) and returns it with ErrRefreshReused; an unknown or
// expired one gives ErrRefreshInvalid.
func (db *DB) Refresh(old, clientAddr string, ttl time.Duration) (store.Session, string, error) {
	id, sum, ok := store.RefreshTokenHash(old)
	if !ok {
		return store.Session{}, "", store.ErrRefreshInvalid
	}
	var s store.Session
	var next string
	var deniedUntil time.Time
	reused := false
	err := db.inTx("refresh session", func(ctx context.Context, tx pgx.Tx) error {
		reused, next, deniedUntil = false, "", time.Time{}
		var err error
		// The session row first: refreshes of one family queue here.
		s, err = scanSession(tx.QueryRow(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE id = $1 FOR UPDATE`, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return refuse(store.ErrRefreshInvalid) // revoked, ended or never was
		} else if err != nil {
			return err
		}
		var spent bool
		var exp time.Time
		err = tx.QueryRow(ctx, `SELECT spent, expires_at FROM refresh_tokens WHERE hash = $1 AND session = $2 FOR UPDATE`,
			sum[:], id).Scan(&spent, &exp)
		if errors.Is(err, pgx.ErrNoRows) {
			return refuse(store.ErrRefreshInvalid)
		} else if err != nil {
			return err
		}
		now := stamp(db.now())
		if spent {
			reused = true
			if _, err := tx.Exec(ctx, `DELETE FROM sessions WHERE id = $1`, id); err != nil { // and its tokens
				return err
			}
			deniedUntil, err = denySession(ctx, tx, s)
			return err
		}
		if !now.Before(exp) {
			return refuse(store.ErrRefreshInvalid)
		}
		// The spent token stays (until the session ends) so that a replay
		// of it is recognised as reuse.
		if _, err := tx.Exec(ctx, `UPDATE refresh_tokens SET spent = true WHERE hash = $1`, sum[:]); err != nil {
			return err
		}
		s.LastUsed, s.ClientAddr, s.ExpiresAt = now, clientAddr, stamp(now.Add(ttl))
		if _, err := tx.Exec(ctx, `UPDATE sessions SET last_used = $2, client_addr = $3, expires_at = $4 WHERE id = $1`,
			id, s.LastUsed, s.ClientAddr, s.ExpiresAt); err != nil {
			return err
		}
		next = store.NewRefreshToken(id)
		_, nextSum, _ := store.RefreshTokenHash(next)
		_, err = tx.Exec(ctx, `INSERT INTO refresh_tokens (hash, session, username, expires_at) VALUES ($1, $2, $3, $4)`,
			nextSum[:], id, s.User, s.ExpiresAt)
		return err
	})
	switch {
	case err == nil && reused:
		// The revocation committed; report the reuse.
		db.denied.add(s.ID, deniedUntil)
		return s, "", store.ErrRefreshReused
	case err != nil:
		return store.Session{}, "", err
	}
	return s, next, nil
}

// Sessions implements store.Store: user's live sessions, oldest first.
func (db *DB) Sessions(user string) ([]store.Session, error) {
	var out []store.Session
	err := db.query("list sessions", func(ctx context.Context) error {
		rows, err := db.pool.Query(ctx, `SELECT `+sessionColumns+` FROM sessions
			WHERE username = $1 AND expires_at > $2 ORDER BY created_at, id`, strings.ToLower(user), db.now())
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Session, error) { return scanSession(r) })
		return err
	})
	return out, err
}

// RevokeSession implements store.Store: the session id ends and its
// access tokens are denied until it would have expired; ErrNotFound for
// an unknown one.
func (db *DB) RevokeSession(id string) (store.Session, error) {
	var s store.Session
	var until time.Time
	err := db.inTx("revoke session "+id, func(ctx context.Context, tx pgx.Tx) error {
		var err error
		s, err = scanSession(tx.QueryRow(ctx, `DELETE FROM sessions WHERE id = $1 RETURNING `+sessionColumns, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return refuse(fmt.Errorf("session %s: %w", id, store.ErrNotFound))
		} else if err != nil {
			return err
		}
		until, err = denySession(ctx, tx, s)
		return err
	})
	if err != nil {
		return store.Session{}, err
	}
	db.denied.add(s.ID, until)
	return s, nil
}

// PruneSessions implements store.Store: expired sessions go with their
// refresh tokens, and deny-list entries of expired tokens; it returns how
// many sessions went.
func (db *DB) PruneSessions() (int, error) {
	now := db.now()
	var n int
	var gone []string
	err := db.inTx("prune sessions", func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM sessions WHERE expires_at <= $1`, now)
		if err != nil {
			return err
		}
		n = int(tag.RowsAffected())
		rows, err := tx.Query(ctx, `DELETE FROM denied WHERE expires_at < $1 RETURNING id`, ceil(now))
		if err != nil {
			return err
		}
		gone, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		return 0, err
	}
	for _, id := range gone {
		db.denied.ids.Delete(id)
	}
	// Entries other processes pruned, or loaded before they expired.
	db.denied.ids.Range(func(k, v any) bool {
		if now.After(v.(time.Time)) {
			db.denied.ids.Delete(k)
		}
		return true
	})
	return n, nil
}

// DenyToken implements store.Store: the access token jti is refused until
// exp, when it would have expired anyway.
func (db *DB) DenyToken(jti string, exp time.Time) error {
	exp = stamp(exp)
	err := db.inTx("revoke token", func(ctx context.Context, tx pgx.Tx) error {
		if err := putDenied(ctx, tx, jti, exp); err != nil {
			return err
		}
		return change(ctx, tx, "jti", jti)
	})
	if err == nil {
		db.denied.add(jti, exp)
	}
	return err
}
