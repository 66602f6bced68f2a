package pg

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatctl/chatctl/store"
)

// Users and signing keys. Names are stored lower-case, as in the bbolt
// store. Every write that other processes must act on appends to the
// change feed in its transaction: "user.revoke" when a user's tokens end
// (new token version, disabled, removed), "user" for other changes, and
// "key" when a key is created, rotated or retired.

// setWatching records whether the change feed is watched (Watch calls it
// when it starts and stops polling) and forgets every cached user: while
// nobody watched, nothing kept them fresh.
func (db *DB) setWatching(on bool) {
	db.watching.Store(on)
	db.users.clear()
}

// userCache keeps users in memory while the change feed is watched
// (db.watching): token checks read their user on every request, and a
// round trip to PostgreSQL per request would cost more than the rest of
// the check. Only while watching does applyChange drop what other
// processes changed; without it User reads the database.
//
// A reader fills the cache only when no drop happened between the start
// of its read and its store (gen), so a value a concurrent write has
// replaced is never kept.
type userCache struct {
	mu  sync.RWMutex // guards m and gen
	m   map[string]store.User
	gen uint64       // bumped by every drop
	n   atomic.Int64 // len(m), read without the lock
}

// get returns the cached user called key, and the generation to pass to
// put after reading it from the database.
func (c *userCache) get(key string) (store.User, bool, uint64) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	u, ok := c.m[key]
	return u, ok, c.gen
}

// put caches u unless a drop happened since generation gen.
func (c *userCache) put(key string, u store.User, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if c.m == nil {
		c.m = make(map[string]store.User)
	}
	c.m[key] = u
	c.n.Store(int64(len(c.m)))
}

// drop forgets the user called key.
func (c *userCache) drop(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	delete(c.m, key)
	c.n.Store(int64(len(c.m)))
}

// clear forgets every user.
func (c *userCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.m)
	c.n.Store(0)
}

const userColumns = `name, hash, role, disabled, token_version, created_at, updated_at`

func scanUser(row pgx.Row) (store.User, error) {
	var u store.User
	var v int64
	err := row.Scan(&u.Name, &u.Hash, &u.Role, &u.Disabled, &v, &u.CreatedAt, &u.UpdatedAt)
	u.TokenVersion, u.CreatedAt, u.UpdatedAt = uint64(v), utc(u.CreatedAt), utc(u.UpdatedAt)
	return u, err
}

// userNotFound is the refusal for a missing user.
func userNotFound(name string) error {
	return refuse(fmt.Errorf("user %s: %w", name, store.ErrNotFound))
}

// CreateUser implements store.Store: ErrUserExists when the name is taken.
func (db *DB) CreateUser(u store.User) (store.User, error) {
	u.Name = strings.ToLower(u.Name)
	now := stamp(db.now())
	u.TokenVersion, u.CreatedAt, u.UpdatedAt = store.NewVersion(0), now, now
	err := db.inTx("create user "+u.Name, func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO users (`+userColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (name) DO NOTHING`,
			u.Name, u.Hash, u.Role, u.Disabled, int64(u.TokenVersion), u.CreatedAt, u.UpdatedAt)
		if err == nil && tag.RowsAffected() == 0 {
			return refuse(fmt.Errorf("user %s: %w", u.Name, store.ErrUserExists))
		}
		return err
	})
	db.users.drop(u.Name)
	if err != nil {
		return store.User{}, err
	}
	return u, nil
}

// User implements store.Store: the user called name (any case), or
// ErrNotFound. While the change feed is watched it answers from memory.
func (db *DB) User(name string) (store.User, error) {
	key := strings.ToLower(name)
	watching := db.watching.Load()
	if !watching && db.users.n.Load() > 0 {
		db.users.clear() // filled while watching; nothing keeps it fresh now
	}
	u, ok, gen := db.users.get(key)
	if ok && watching {
		return u, nil
	}
	err := db.query("read user "+key, func(ctx context.Context) error {
		var err error
		u, err = scanUser(db.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE name = $1`, key))
		if errors.Is(err, pgx.ErrNoRows) {
			return userNotFound(key)
		}
		return err
	})
	if err != nil {
		return store.User{}, err
	}
	if watching {
		db.users.put(key, u, gen)
	}
	return u, nil
}

// Users implements store.Store: every user, ordered by name.
func (db *DB) Users() ([]store.User, error) {
	var users []store.User
	err := db.query("list users", func(ctx context.Context) error {
		rows, err := db.pool.Query(ctx, `SELECT `+userColumns+` FROM users ORDER BY name`)
		if err != nil {
			return err
		}
		users, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.User, error) { return scanUser(r) })
		return err
	})
	return users, err
}

// UpdateUser implements store.Store: c applied in one transaction that
// holds the user's row, ErrNotFound, or ErrVersionChanged for a stale
// IfVersion. RevokeTokens gives a new token version and ends the user's
// sessions.
func (db *DB) UpdateUser(name string, c store.Change) (store.User, error) {
	key := strings.ToLower(name)
	var u store.User
	err := db.inTx("update user "+key, func(ctx context.Context, tx pgx.Tx) error {
		var err error
		u, err = scanUser(tx.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE name = $1 FOR UPDATE`, key))
		if errors.Is(err, pgx.ErrNoRows) {
			return userNotFound(key)
		} else if err != nil {
			return err
		}
		if err := c.ApplyTo(&u, stamp(db.now())); err != nil {
			return refuse(err)
		}
		if c.RevokeTokens {
			if _, err := tx.Exec(ctx, `DELETE FROM sessions WHERE username = $1`, key); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE users SET hash = $2, role = $3, disabled = $4, token_version = $5, updated_at = $6
			WHERE name = $1`, key, u.Hash, u.Role, u.Disabled, int64(u.TokenVersion), u.UpdatedAt); err != nil {
			return err
		}
		kind := "user"
		if c.RevokeTokens || (c.Disabled != nil && *c.Disabled) {
			kind = "user.revoke"
		}
		return change(ctx, tx, kind, key)
	})
	db.users.drop(key)
	if err != nil {
		return store.User{}, err
	}
	return u, nil
}

// DeleteUser implements store.Store: the user and its sessions go, or
// ErrNotFound.
func (db *DB) DeleteUser(name string) error {
	key := strings.ToLower(name)
	err := db.inTx("remove user "+key, func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM users WHERE name = $1`, key)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return userNotFound(key)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM sessions WHERE username = $1`, key); err != nil {
			return err
		}
		return change(ctx, tx, "user.revoke", key)
	})
	db.users.drop(key)
	return err
}

const keyColumns = `kid, secret, created_at, retired_at, max_ttl, revoked_at`

func scanKey(row pgx.Row) (store.Key, error) {
	var k store.Key
	var retired, revoked *time.Time
	var ttl int64
	err := row.Scan(&k.Kid, &k.Secret, &k.CreatedAt, &retired, &ttl, &revoked)
	k.CreatedAt, k.MaxTTL = utc(k.CreatedAt), time.Duration(ttl)
	if retired != nil {
		k.RetiredAt = utc(*retired)
	}
	if revoked != nil {
		k.RevokedAt = utc(*revoked)
	}
	return k, err
}

// nullTime is t for a nullable column: NULL when zero.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// readKeys returns every stored key, in no order.
func readKeys(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}) ([]store.Key, error) {
	rows, err := q.Query(ctx, `SELECT `+keyColumns+` FROM keys`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Key, error) { return scanKey(r) })
}

// liveKeys is keys without those whose tokens have all expired at now, the
// active one first, then retired ones newest first (as the bbolt store's
// readKeys).
func liveKeys(keys []store.Key, now time.Time) []store.Key {
	keys = slices.DeleteFunc(keys, func(k store.Key) bool { return !k.Active() && !now.Before(k.Expires()) })
	slices.SortStableFunc(keys, func(a, b store.Key) int {
		if a.Active() != b.Active() {
			if a.Active() {
				return -1
			}
			return 1
		}
		return b.CreatedAt.Compare(a.CreatedAt)
	})
	return keys
}

// Keys implements store.Store: the keys still in use, the active one
// first, then retired ones newest first.
func (db *DB) Keys() ([]store.Key, error) {
	var keys []store.Key
	err := db.query("read keys", func(ctx context.Context) error {
		var err error
		keys, err = readKeys(ctx, db.pool)
		return err
	})
	return liveKeys(keys, db.now()), err
}

// ActiveKey implements store.Store: the signing key, created on first
// use. Processes racing to create it insert with ON CONFLICT DO NOTHING
// against keys_one_active, so exactly one key is made; the others read it.
func (db *DB) ActiveKey() (store.Key, error) {
	var k store.Key
	const active = `SELECT ` + keyColumns + ` FROM keys WHERE retired_at IS NULL`
	var found bool
	err := db.query("read the active key", func(ctx context.Context) error {
		var err error
		k, err = scanKey(db.pool.QueryRow(ctx, active))
		found = err == nil
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		return err
	})
	if err != nil || found {
		return k, err
	}
	err = db.inTx("create the first key", func(ctx context.Context, tx pgx.Tx) error {
		for range 2 {
			var err error
			k, err = scanKey(tx.QueryRow(ctx, active))
			if !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
			if k, err = store.NewKey(db.now()); err != nil {
				return err
			}
			k.CreatedAt = stamp(k.CreatedAt)
			tag, err := tx.Exec(ctx, `INSERT INTO keys (kid, secret, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
				k.Kid, k.Secret, k.CreatedAt)
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 1 {
				return change(ctx, tx, "key", k.Kid)
			}
			// Another process made the key meanwhile: read it.
		}
		return errors.New("no active key after creating one")
	})
	return k, err
}

// lockKeys serialises the writers of keys (rotation, retirement) against
// each other and against the first key's creation; readers go on.
func lockKeys(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `LOCK TABLE keys IN SHARE ROW EXCLUSIVE MODE`)
	return err
}

// RotateKey implements store.Store: the active key is retired, a new one
// signs; keys whose tokens have all expired are deleted.
func (db *DB) RotateKey() (store.Key, error) {
	var k store.Key
	err := db.inTx("rotate key", func(ctx context.Context, tx pgx.Tx) error {
		if err := lockKeys(ctx, tx); err != nil {
			return err
		}
		now := stamp(db.now())
		keys, err := readKeys(ctx, tx)
		if err != nil {
			return err
		}
		var stale []string
		for _, old := range keys {
			if !old.Active() && !now.Before(old.Expires()) {
				stale = append(stale, old.Kid)
			}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM keys WHERE kid = ANY($1)`, stale); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE keys SET retired_at = $1 WHERE retired_at IS NULL`, now); err != nil {
			return err
		}
		if k, err = store.NewKey(now); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO keys (kid, secret, created_at) VALUES ($1, $2, $3)`, k.Kid, k.Secret, k.CreatedAt); err != nil {
			return err
		}
		return change(ctx, tx, "key", k.Kid)
	})
	return k, err
}

// RetireKey implements store.Store: the rotated-out key kid stops
// verifying at once; ErrKeyActive for the signing key, ErrNotFound for an
// unknown or expired one; retiring a retired key changes nothing.
func (db *DB) RetireKey(kid string) (store.Key, error) {
	var k store.Key
	err := db.inTx("retire key "+kid, func(ctx context.Context, tx pgx.Tx) error {
		if err := lockKeys(ctx, tx); err != nil {
			return err
		}
		var err error
		k, err = scanKey(tx.QueryRow(ctx, `SELECT `+keyColumns+` FROM keys WHERE kid = $1`, kid))
		if errors.Is(err, pgx.ErrNoRows) {
			return refuse(fmt.Errorf("key %s: %w", kid, store.ErrNotFound))
		} else if err != nil {
			return err
		}
		now := stamp(db.now())
		switch {
		case k.Active():
			return refuse(fmt.Errorf("key %s: %w", kid, store.ErrKeyActive))
		case !now.Before(k.Expires()):
			return refuse(fmt.Errorf("key %s: %w (it has expired)", kid, store.ErrNotFound))
		case !k.RevokedAt.IsZero():
			return nil
		}
		k.RevokedAt = now
		if _, err := tx.Exec(ctx, `UPDATE keys SET revoked_at = $2 WHERE kid = $1`, kid, nullTime(now)); err != nil {
			return err
		}
		return change(ctx, tx, "key", kid)
	})
	if err != nil {
		return store.Key{}, err
	}
	return k, nil
}

// NoteTTL implements store.Store: kid signed a token living ttl; it
// writes only for a new maximum.
func (db *DB) NoteTTL(kid string, ttl time.Duration) error {
	return db.inTx("note key lifetime", func(ctx context.Context, tx pgx.Tx) error {
		var exists bool
		err := tx.QueryRow(ctx, `WITH u AS (UPDATE keys SET max_ttl = $2 WHERE kid = $1 AND max_ttl < $2 RETURNING 1)
			SELECT EXISTS (SELECT 1 FROM keys WHERE kid = $1)`, kid, int64(ttl)).Scan(&exists)
		if err == nil && !exists {
			return refuse(fmt.Errorf("key %s: %w", kid, store.ErrNotFound))
		}
		return err
	})
}
