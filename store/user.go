package store

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// User is a user as persisted. Hash is a bcrypt hash and must never leave
// the process: API and CLI types copy the fields they show.
type User struct {
	Name     string `json:"name"`
	Hash     string `json:"hash"`
	Role     string `json:"role"`
	Disabled bool   `json:"disabled"`
	// TokenVersion is written into every token; changing it (passwd,
	// disable, revoke) ends all tokens issued before. Values are random
	// (see newVersion), so no token tells another user's version.
	TokenVersion uint64    `json:"token_version"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

func userKey(name string) []byte { return []byte(strings.ToLower(name)) }

// userCache keeps decoded users in memory: every token verification reads
// its user, and decoding JSON costs more than the rest of the check. It is
// coherent because bbolt lets one process at a time open the file, and
// every write in that process goes through the methods below.
type userCache struct {
	// mu is held for writing around each write transaction on users, and
	// for reading while a reader fills the cache, so that no reader can
	// store a value that a concurrent write is replacing.
	mu sync.RWMutex
	m  sync.Map // lower-case name -> User
}

// write runs fn, a write transaction touching the user called name, and
// drops the cached copy.
func (c *userCache) write(name string, fn func() error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m.Delete(strings.ToLower(name))
	return fn()
}

// CreateUser stores a new user, setting its token version and times. It
// returns ErrUserExists when the name is taken.
func (db *DB) CreateUser(u User) (User, error) {
	u.Name = strings.ToLower(u.Name)
	err := db.users.write(u.Name, func() error {
		return db.update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketUsers)
			if b.Get(userKey(u.Name)) != nil {
				return fmt.Errorf("user %s: %w", u.Name, ErrUserExists)
			}
			now := db.now().UTC()
			u.TokenVersion, u.CreatedAt, u.UpdatedAt = newVersion(0), now, now
			return put(b, u.Name, u)
		})
	})
	return u, err
}

// User returns the user called name (any case), or ErrNotFound.
func (db *DB) User(name string) (User, error) {
	key := strings.ToLower(name)
	if v, ok := db.users.m.Load(key); ok {
		return v.(User), nil
	}
	db.users.mu.RLock()
	defer db.users.mu.RUnlock()
	var u User
	err := db.bolt.View(func(tx *bolt.Tx) error {
		return getUser(tx, name, &u)
	})
	if err == nil {
		db.users.m.Store(key, u)
	}
	return u, err
}

func getUser(tx *bolt.Tx, name string, u *User) error {
	data := tx.Bucket(bucketUsers).Get(userKey(name))
	if data == nil {
		return fmt.Errorf("user %s: %w", strings.ToLower(name), ErrNotFound)
	}
	return json.Unmarshal(data, u)
}

// Users returns every user, ordered by name.
func (db *DB) Users() ([]User, error) {
	var users []User
	err := db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketUsers).ForEach(func(_, v []byte) error {
			var u User
			if err := json.Unmarshal(v, &u); err != nil {
				return err
			}
			users = append(users, u)
			return nil
		})
	})
	return users, err
}

// Change describes an update to a user. Nil fields are left alone.
type Change struct {
	Hash     *string
	Role     *string
	Disabled *bool
	// RevokeTokens gives the user a new token version, ending every token
	// issued before.
	RevokeTokens bool
	// IfVersion, when set, applies the change only while the user's token
	// version is still this one, else ErrVersionChanged: a login's rehash
	// must not put back the hash of a password changed meanwhile.
	IfVersion *uint64
}

// ApplyTo applies c to u, as both backends' UpdateUser do inside their
// transaction: ErrVersionChanged (u untouched) for a stale IfVersion,
// else the fields set, and a new token version for RevokeTokens (the
// caller also ends the user's sessions then) and UpdatedAt.
func (c Change) ApplyTo(u *User, now time.Time) error {
	if c.IfVersion != nil && u.TokenVersion != *c.IfVersion {
		return ErrVersionChanged
	}
	if c.Hash != nil {
		u.Hash = *c.Hash
	}
	if c.Role != nil {
		u.Role = *c.Role
	}
	if c.Disabled != nil {
		u.Disabled = *c.Disabled
	}
	if c.RevokeTokens {
		u.TokenVersion = newVersion(u.TokenVersion)
	}
	u.UpdatedAt = now
	return nil
}

// UpdateUser applies c to the user called name in one transaction and
// returns the result, or ErrNotFound.
func (db *DB) UpdateUser(name string, c Change) (User, error) {
	var u User
	err := db.users.write(name, func() error {
		return db.update(func(tx *bolt.Tx) error {
			if err := getUser(tx, name, &u); err != nil {
				return err
			}
			if err := c.ApplyTo(&u, db.now().UTC()); err != nil {
				return err
			}
			if c.RevokeTokens {
				if err := deleteUserSessions(tx, u.Name); err != nil {
					return err
				}
			}
			return put(tx.Bucket(bucketUsers), u.Name, u)
		})
	})
	return u, err
}

// DeleteUser removes the user called name, or returns ErrNotFound.
func (db *DB) DeleteUser(name string) error {
	return db.users.write(name, func() error {
		return db.update(func(tx *bolt.Tx) error {
			var u User
			if err := getUser(tx, name, &u); err != nil {
				return err
			}
			if err := deleteUserSessions(tx, u.Name); err != nil {
				return err
			}
			return tx.Bucket(bucketUsers).Delete(userKey(name))
		})
	})
}
