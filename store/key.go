package store

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
)

// KeySize is the length of generated HS256 secrets: 256 bits.
const KeySize = 32

// retiredGrace keeps a retired key a little past the last expiry it can
// have signed, so tokens within the verifier's leeway still check.
const retiredGrace = 5 * time.Minute

// Key is an HS256 signing key.
type Key struct {
	Kid       string    `json:"kid"`
	Secret    []byte    `json:"secret"`
	CreatedAt time.Time `json:"created_at"`
	// RetiredAt is zero for the active key, which signs new tokens.
	RetiredAt time.Time `json:"retired_at,omitzero"`
	// MaxTTL is the longest lifetime of any token the key signed, so a
	// retired key is kept exactly until those tokens have expired.
	MaxTTL time.Duration `json:"max_ttl"`
	// RevokedAt is when `chatctl key retire` stopped the key verifying,
	// before its tokens expired (a compromised key); zero otherwise. The
	// key stays listed until it would have expired, then goes.
	RevokedAt time.Time `json:"revoked_at,omitzero"`
}

// Active reports whether k signs new tokens.
func (k Key) Active() bool { return k.RetiredAt.IsZero() }

// Verifies reports whether tokens signed with k verify at now.
func (k Key) Verifies(now time.Time) bool {
	return k.RevokedAt.IsZero() && (k.Active() || now.Before(k.Expires()))
}

// Expires is when a retired key stops verifying (zero for the active key).
func (k Key) Expires() time.Time {
	if k.Active() {
		return time.Time{}
	}
	return k.RetiredAt.Add(k.MaxTTL + retiredGrace)
}

func newKey(now time.Time) (Key, error) {
	secret := make([]byte, KeySize)
	id := make([]byte, 4)
	if _, err := rand.Read(secret); err != nil {
		return Key{}, err
	}
	if _, err := rand.Read(id); err != nil {
		return Key{}, err
	}
	return Key{Kid: hex.EncodeToString(id), Secret: secret, CreatedAt: now.UTC()}, nil
}

// Keys returns the signing keys still in use, the active one first, then
// retired ones newest first. Keys whose tokens have all expired are left
// out (and deleted by the next RotateKey or ActiveKey).
func (db *DB) Keys() ([]Key, error) {
	var keys []Key
	err := db.bolt.View(func(tx *bolt.Tx) error {
		var err error
		keys, err = readKeys(tx, db.now())
		return err
	})
	return keys, err
}

func readKeys(tx *bolt.Tx, now time.Time) ([]Key, error) {
	var keys []Key
	err := tx.Bucket(bucketKeys).ForEach(func(_, v []byte) error {
		var k Key
		if err := json.Unmarshal(v, &k); err != nil {
			return err
		}
		if k.Active() || now.Before(k.Expires()) {
			keys = append(keys, k)
		}
		return nil
	})
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].Active() != keys[j].Active() {
			return keys[i].Active()
		}
		return keys[i].CreatedAt.After(keys[j].CreatedAt)
	})
	return keys, err
}

// ActiveKey returns the key that signs new tokens, generating a random one
// on first use.
func (db *DB) ActiveKey() (Key, error) {
	var k Key
	found := false
	err := db.bolt.View(func(tx *bolt.Tx) error {
		keys, err := readKeys(tx, db.now())
		if err == nil && len(keys) > 0 && keys[0].Active() {
			k, found = keys[0], true
		}
		return err
	})
	if err != nil || found {
		return k, err
	}
	err = db.update(func(tx *bolt.Tx) error {
		keys, err := readKeys(tx, db.now())
		if err != nil {
			return err
		}
		if len(keys) > 0 && keys[0].Active() { // another writer won the race
			k = keys[0]
			return nil
		}
		if k, err = newKey(db.now()); err != nil {
			return err
		}
		return put(tx.Bucket(bucketKeys), k.Kid, k)
	})
	return k, err
}

// RotateKey retires the active key and makes a new one active. The retired
// key keeps verifying until the longest-lived token it signed has expired;
// keys past that are deleted.
func (db *DB) RotateKey() (Key, error) {
	var k Key
	err := db.update(func(tx *bolt.Tx) error {
		now := db.now().UTC()
		b := tx.Bucket(bucketKeys)
		var stale [][]byte
		err := b.ForEach(func(id, v []byte) error {
			var old Key
			if err := json.Unmarshal(v, &old); err != nil {
				return err
			}
			switch {
			case old.Active():
				old.RetiredAt = now
				return put(b, old.Kid, old)
			case !now.Before(old.Expires()):
				stale = append(stale, append([]byte(nil), id...))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, id := range stale {
			if err := b.Delete(id); err != nil {
				return err
			}
		}
		if k, err = newKey(now); err != nil {
			return err
		}
		return put(b, k.Kid, k)
	})
	return k, err
}

// RetireKey stops the rotated-out key kid verifying at once. It returns
// ErrKeyActive for the key that signs new tokens (RotateKey first: some
// key must sign), ErrNotFound for a kid the store does not hold or that
// has expired. Retiring a retired key changes nothing.
func (db *DB) RetireKey(kid string) (Key, error) {
	var k Key
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketKeys)
		data := b.Get([]byte(kid))
		if data == nil {
			return fmt.Errorf("key %s: %w", kid, ErrNotFound)
		}
		if err := json.Unmarshal(data, &k); err != nil {
			return err
		}
		now := db.now().UTC()
		switch {
		case k.Active():
			return fmt.Errorf("key %s: %w", kid, ErrKeyActive)
		case !now.Before(k.Expires()):
			return fmt.Errorf("key %s: %w (it has expired)", kid, ErrNotFound)
		case !k.RevokedAt.IsZero():
			return nil
		}
		k.RevokedAt = now
		return put(b, k.Kid, k)
	})
	return k, err
}

// NoteTTL records that kid signed a token living ttl, so the key is kept
// long enough after rotation. It writes only when ttl is a new maximum.
func (db *DB) NoteTTL(kid string, ttl time.Duration) error {
	return db.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketKeys)
		data := b.Get([]byte(kid))
		if data == nil {
			return fmt.Errorf("key %s: %w", kid, ErrNotFound)
		}
		var k Key
		if err := json.Unmarshal(data, &k); err != nil {
			return err
		}
		if ttl <= k.MaxTTL {
			return nil
		}
		k.MaxTTL = ttl
		return put(b, k.Kid, k)
	})
}
