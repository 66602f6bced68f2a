package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// Access rules, private-room membership and read markers (SPEC §8), in
// three buckets added by schema 2:
//
//	access   "USER\x00PATTERN" -> permission ("read-write", "read-only", "deny")
//	private  room name -> JSON list of member names (sorted, lower-case)
//	reads    user -> nested bucket: room name -> 8-byte big-endian id
//	declared kind -> JSON list: what the config file declared when last applied
//
// The store only keeps these; the rules that give them meaning (pattern
// matching, precedence, who is an admin) live in package access, which
// the server loads once and keeps in memory.
var (
	bucketAccess   = []byte("access")
	bucketPrivate  = []byte("private")
	bucketReads    = []byte("reads")
	bucketDeclared = []byte("declared") // kind -> JSON list of names the config file declared last
)

// ErrRoomExists is returned by CreatePrivateRoom when the room is private
// already.
var ErrRoomExists = errors.New("room already exists")

// AccessRule is one access rule: User ("*" for everyone) gets Perm on the
// rooms Pattern names (a room name, or a prefix ending in "*").
type AccessRule struct {
	User    string `json:"user"`
	Pattern string `json:"pattern"`
	Perm    string `json:"permission"`
}

// PrivateRoom is a room only its members may see, join and read.
type PrivateRoom struct {
	Name    string   `json:"room"`
	Members []string `json:"members"`
}

// ReadMark is the result of SetReadMarker: the user's marker after the
// call, and whether the call moved it.
type ReadMark struct {
	ID    uint64
	Moved bool
}

func accessKey(user, pattern string) []byte {
	return []byte(strings.ToLower(user) + "\x00" + pattern)
}

// sortRules orders rules by user, then pattern: the order every backend
// lists them in.
func sortRules(rs []AccessRule) {
	slices.SortFunc(rs, func(a, b AccessRule) int {
		if c := strings.Compare(a.User, b.User); c != 0 {
			return c
		}
		return strings.Compare(a.Pattern, b.Pattern)
	})
}

// AccessRules returns every access rule, sorted by user then pattern.
func (db *DB) AccessRules() ([]AccessRule, error) {
	var out []AccessRule
	err := db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketAccess).ForEach(func(k, v []byte) error {
			user, pattern, _ := strings.Cut(string(k), "\x00")
			out = append(out, AccessRule{User: user, Pattern: pattern, Perm: string(v)})
			return nil
		})
	})
	sortRules(out)
	return out, err
}

// SetAccessRule adds r, or replaces the rule of the same user and
// pattern. The caller has validated it (package access).
func (db *DB) SetAccessRule(r AccessRule) error {
	return db.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketAccess).Put(accessKey(r.User, r.Pattern), []byte(r.Perm))
	})
}

// ResetAccess removes the rules of user ("*" included): the one for
// pattern, or every one of them when pattern is "". It returns how many
// it removed.
func (db *DB) ResetAccess(user, pattern string) (int, error) {
	n := 0
	err := db.update(func(tx *bolt.Tx) error {
		n = 0
		b := tx.Bucket(bucketAccess)
		if pattern != "" {
			k := accessKey(user, pattern)
			if b.Get(k) != nil {
				n = 1
				return b.Delete(k)
			}
			return nil
		}
		prefix := accessKey(user, "")
		c := b.Cursor()
		for k, _ := c.Seek(prefix); k != nil && strings.HasPrefix(string(k), string(prefix)); k, _ = c.Seek(prefix) {
			if err := c.Delete(); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

// CreatePrivateRoom makes room private with members (lower-cased, sorted,
// duplicates dropped). It returns ErrRoomExists when it is private
// already. A room with public history becomes private: from then on only
// its members read it.
func (db *DB) CreatePrivateRoom(room string, members []string) error {
	return db.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketPrivate)
		if b.Get([]byte(room)) != nil {
			return fmt.Errorf("room %s: %w", room, ErrRoomExists)
		}
		return putJSON(b, []byte(room), normMembers(members))
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

// PrivateRooms returns every private room with its members, by name.
func (db *DB) PrivateRooms() ([]PrivateRoom, error) {
	var out []PrivateRoom
	err := db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketPrivate).ForEach(func(k, v []byte) error {
			p := PrivateRoom{Name: string(k)}
			if err := json.Unmarshal(v, &p.Members); err != nil {
				return fmt.Errorf("%w: private room %s: %v", ErrCorrupt, k, err)
			}
			out = append(out, p)
			return nil
		})
	})
	return out, err
}

// SetMember adds user to (in true) or removes user from (in false) the
// private room. It returns ErrNotFound when the room is not private, or
// when removing a user who is not a member. Adding a member twice is no
// error.
func (db *DB) SetMember(room, user string, in bool) error {
	user = strings.ToLower(user)
	return db.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketPrivate)
		v := b.Get([]byte(room))
		if v == nil {
			return fmt.Errorf("private room %s: %w", room, ErrNotFound)
		}
		var ms []string
		if err := json.Unmarshal(v, &ms); err != nil {
			return fmt.Errorf("%w: private room %s: %v", ErrCorrupt, room, err)
		}
		has := slices.Contains(ms, user)
		switch {
		case in && has:
			return nil
		case in:
			ms = append(ms, user)
		case !has:
			return fmt.Errorf("%s in private room %s: %w", user, room, ErrNotFound)
		default:
			ms = slices.DeleteFunc(ms, func(m string) bool { return m == user })
		}
		return putJSON(b, []byte(room), normMembers(ms))
	})
}

// SetReadMarker records that user has read room up to id. Markers never
// move backwards: a lower id changes nothing. It returns the marker after
// the call.
func (db *DB) SetReadMarker(user, room string, id uint64) (ReadMark, error) {
	var m ReadMark
	err := db.update(func(tx *bolt.Tx) error {
		ub, err := tx.Bucket(bucketReads).CreateBucketIfNotExists([]byte(strings.ToLower(user)))
		if err != nil {
			return err
		}
		m = ReadMark{}
		if v := ub.Get([]byte(room)); len(v) == 8 {
			m.ID = binary.BigEndian.Uint64(v)
		}
		if id <= m.ID {
			return nil
		}
		m = ReadMark{ID: id, Moved: true}
		return ub.Put([]byte(room), idKey(id))
	})
	return m, err
}

// ReadMarkers returns user's read markers by room (empty, never nil,
// when there are none).
func (db *DB) ReadMarkers(user string) (map[string]uint64, error) {
	out := map[string]uint64{}
	err := db.bolt.View(func(tx *bolt.Tx) error {
		ub := tx.Bucket(bucketReads).Bucket([]byte(strings.ToLower(user)))
		if ub == nil {
			return nil
		}
		return ub.ForEach(func(k, v []byte) error {
			if len(v) == 8 {
				out[string(k)] = binary.BigEndian.Uint64(v)
			}
			return nil
		})
	})
	return out, err
}

// Declared returns the names last recorded for kind by SetDeclared
// (sorted; empty when none). The config file's declarative users and
// rules are authoritative for what they name: comparing with what it
// declared last tells what was removed from it since.
func (db *DB) Declared(kind string) ([]string, error) {
	out := []string{}
	err := db.bolt.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketDeclared).Get([]byte(kind)); v != nil {
			return json.Unmarshal(v, &out)
		}
		return nil
	})
	return out, err
}

// SetDeclared records names (sorted, de-duplicated) for kind.
func (db *DB) SetDeclared(kind string, names []string) error {
	ns := slices.Clone(names)
	slices.Sort(ns)
	ns = slices.Compact(ns)
	if ns == nil {
		ns = []string{}
	}
	return db.update(func(tx *bolt.Tx) error {
		return putJSON(tx.Bucket(bucketDeclared), []byte(kind), ns)
	})
}
