package pg

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/chatctl/chatctl/store"
)

// Access rules, private rooms and read markers (SPEC §8): the tables of
// migrations[1]. Every change to rules or membership appends to the
// change feed in its transaction (kinds store.ChangeAccess and
// store.ChangeMembers), so servers on other processes reload their
// in-memory rules; read markers are per user and need no feed.

// AccessRules implements store.Store.
func (db *DB) AccessRules() ([]store.AccessRule, error) {
	ctx, cancel := db.ctx()
	defer cancel()
	rows, err := db.pool.Query(ctx, `SELECT username, pattern, perm FROM access_rules ORDER BY username COLLATE "C", pattern COLLATE "C"`)
	if err != nil {
		return nil, db.fail("access rules", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.AccessRule, error) {
		var a store.AccessRule
		return a, r.Scan(&a.User, &a.Pattern, &a.Perm)
	})
	return out, db.fail("access rules", err)
}

// SetAccessRule implements store.Store.
func (db *DB) SetAccessRule(r store.AccessRule) error {
	user := strings.ToLower(r.User)
	return db.inTx("set access rule", func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO access_rules (username, pattern, perm) VALUES ($1, $2, $3)
			ON CONFLICT (username, pattern) DO UPDATE SET perm = EXCLUDED.perm`, user, r.Pattern, r.Perm); err != nil {
			return err
		}
		return change(ctx, tx, store.ChangeAccess, user)
	})
}

// ResetAccess implements store.Store.
func (db *DB) ResetAccess(user, pattern string) (int, error) {
	user = strings.ToLower(user)
	n := 0
	err := db.inTx("reset access", func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM access_rules WHERE username = $1 AND ($2 = '' OR pattern = $2)`, user, pattern)
		if err != nil {
			return err
		}
		n = int(tag.RowsAffected())
		if n == 0 {
			return nil
		}
		return change(ctx, tx, store.ChangeAccess, user)
	})
	return n, err
}

// CreatePrivateRoom implements store.Store.
func (db *DB) CreatePrivateRoom(room string, members []string) error {
	ms := normMembers(members)
	return db.inTx("create private room", func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO private_rooms (name) VALUES ($1) ON CONFLICT DO NOTHING`, room)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return refuse(fmt.Errorf("room %s: %w", room, store.ErrRoomExists))
		}
		if _, err := tx.Exec(ctx, `INSERT INTO room_members (room, username) SELECT $1, unnest($2::text[])`, room, ms); err != nil {
			return err
		}
		return change(ctx, tx, store.ChangeMembers, room)
	})
}

// normMembers lower-cases, sorts and de-duplicates names; never nil.
func normMembers(ms []string) []string {
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		out = append(out, strings.ToLower(m))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// PrivateRooms implements store.Store.
func (db *DB) PrivateRooms() ([]store.PrivateRoom, error) {
	ctx, cancel := db.ctx()
	defer cancel()
	rows, err := db.pool.Query(ctx, `SELECT p.name, coalesce(array_agg(m.username ORDER BY m.username COLLATE "C") FILTER (WHERE m.username IS NOT NULL), '{}')
		FROM private_rooms p LEFT JOIN room_members m ON m.room = p.name
		GROUP BY p.name ORDER BY p.name COLLATE "C"`)
	if err != nil {
		return nil, db.fail("private rooms", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.PrivateRoom, error) {
		var p store.PrivateRoom
		return p, r.Scan(&p.Name, &p.Members)
	})
	return out, db.fail("private rooms", err)
}

// SetMember implements store.Store.
func (db *DB) SetMember(room, user string, in bool) error {
	user = strings.ToLower(user)
	return db.inTx("set room member", func(ctx context.Context, tx pgx.Tx) error {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM private_rooms WHERE name = $1 FOR UPDATE)`, room).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return refuse(fmt.Errorf("private room %s: %w", room, store.ErrNotFound))
		}
		var n int64
		if in {
			tag, err := tx.Exec(ctx, `INSERT INTO room_members (room, username) VALUES ($1, $2) ON CONFLICT DO NOTHING`, room, user)
			if err != nil {
				return err
			}
			n = tag.RowsAffected()
		} else {
			tag, err := tx.Exec(ctx, `DELETE FROM room_members WHERE room = $1 AND username = $2`, room, user)
			if err != nil {
				return err
			}
			if n = tag.RowsAffected(); n == 0 {
				return refuse(fmt.Errorf("%s in private room %s: %w", user, room, store.ErrNotFound))
			}
		}
		if n == 0 {
			return nil
		}
		return change(ctx, tx, store.ChangeMembers, room)
	})
}

// SetReadMarker implements store.Store: one upsert that only ever raises
// the marker.
func (db *DB) SetReadMarker(user, room string, id uint64) (store.ReadMark, error) {
	user = strings.ToLower(user)
	ctx, cancel := db.ctx()
	defer cancel()
	var m store.ReadMark
	var moved int64
	err := db.pool.QueryRow(ctx, `WITH up AS (
			INSERT INTO read_markers (username, room, id) VALUES ($1, $2, $3)
			ON CONFLICT (username, room) DO UPDATE SET id = EXCLUDED.id WHERE read_markers.id < EXCLUDED.id
			RETURNING id)
		SELECT coalesce((SELECT id FROM up), (SELECT id FROM read_markers WHERE username = $1 AND room = $2), 0),
		       (SELECT count(*) FROM up)`, user, room, int64(id)).Scan(&m.ID, &moved)
	db.wrote(err)
	if err != nil {
		return store.ReadMark{}, db.fail("set read marker", err)
	}
	m.Moved = moved > 0
	return m, nil
}

// ReadMarkers implements store.Store.
func (db *DB) ReadMarkers(user string) (map[string]uint64, error) {
	ctx, cancel := db.ctx()
	defer cancel()
	rows, err := db.pool.Query(ctx, `SELECT room, id FROM read_markers WHERE username = $1`, strings.ToLower(user))
	if err != nil {
		return nil, db.fail("read markers", err)
	}
	out := map[string]uint64{}
	var room string
	var id int64
	_, err = pgx.ForEachRow(rows, []any{&room, &id}, func() error {
		out[room] = uint64(id)
		return nil
	})
	if err != nil {
		return nil, db.fail("read markers", err)
	}
	return out, nil
}

// Declared implements store.Store.
func (db *DB) Declared(kind string) ([]string, error) {
	ctx, cancel := db.ctx()
	defer cancel()
	out := []string{}
	err := db.pool.QueryRow(ctx, `SELECT names FROM declared WHERE kind = $1`, kind).Scan(&out)
	if errors.Is(err, pgx.ErrNoRows) {
		return []string{}, nil
	}
	return out, db.fail("declared "+kind, err)
}

// SetDeclared implements store.Store.
func (db *DB) SetDeclared(kind string, names []string) error {
	ns := slices.Clone(names)
	slices.Sort(ns)
	ns = slices.Compact(ns)
	if ns == nil {
		ns = []string{}
	}
	return db.inTx("set declared "+kind, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO declared (kind, names) VALUES ($1, $2)
			ON CONFLICT (kind) DO UPDATE SET names = EXCLUDED.names`, kind, ns)
		return err
	})
}
