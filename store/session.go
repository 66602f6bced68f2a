package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Sessions are refresh-token families (RFC 6749 §10.4, RFC 9700 §4.14):
// a login starts one, each refresh spends the current token and issues the
// next, and presenting a spent token revokes the whole family.
//
// Buckets:
//
//	sessions  user "\x00" session id -> Session
//	refresh   sha256(refresh token) -> refreshRecord
//	denied    jti -> expiry (RFC 3339), access tokens revoked one by one
//
// Refresh tokens are stored only as hashes: a copy of the file does not
// let anyone sign in.

var (
	bucketSessions = []byte("sessions")
	bucketRefresh  = []byte("refresh")
	bucketDenied   = []byte("denied")
)

var (
	// ErrRefreshInvalid is returned by Refresh for an unknown or expired
	// refresh token.
	ErrRefreshInvalid = errors.New("invalid refresh token")
	// ErrRefreshReused is returned by Refresh for a token that was already
	// spent; its whole session has been revoked.
	ErrRefreshReused = errors.New("refresh token reused; session revoked")
)

// Session is one refresh-token family of a user.
type Session struct {
	ID         string    `json:"id"`
	User       string    `json:"user"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsed   time.Time `json:"last_used"`
	ClientAddr string    `json:"client_addr"`
	ExpiresAt  time.Time `json:"expires_at"`
}

type refreshRecord struct {
	Session   string    `json:"session"`
	User      string    `json:"user"`
	ExpiresAt time.Time `json:"expires_at"`
	Spent     bool      `json:"spent"`
}

func hashToken(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

func sessionKey(user, id string) []byte { return []byte(strings.ToLower(user) + "\x00" + id) }

// CreateSession starts a session for user whose first refresh token is
// token, valid for ttl.
func (db *DB) CreateSession(user, id, token, clientAddr string, ttl time.Duration) (Session, error) {
	now := db.now().UTC()
	s := Session{ID: id, User: strings.ToLower(user), CreatedAt: now, LastUsed: now, ClientAddr: clientAddr, ExpiresAt: now.Add(ttl)}
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		if err := getUser(tx, user, &User{}); err != nil {
			return err
		}
		if err := putJSON(tx.Bucket(bucketSessions), sessionKey(user, id), s); err != nil {
			return err
		}
		return putJSON(tx.Bucket(bucketRefresh), hashToken(token), refreshRecord{Session: id, User: s.User, ExpiresAt: s.ExpiresAt})
	})
	return s, err
}

// Refresh spends the refresh token old and makes next the session's
// current token, valid for ttl from now. A spent token revokes the session
// and returns ErrRefreshReused; an unknown or expired one returns
// ErrRefreshInvalid.
func (db *DB) Refresh(old, next, clientAddr string, ttl time.Duration) (Session, error) {
	var s Session
	reused := false
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		rb := tx.Bucket(bucketRefresh)
		data := rb.Get(hashToken(old))
		if data == nil {
			return ErrRefreshInvalid
		}
		var rec refreshRecord
		if err := json.Unmarshal(data, &rec); err != nil {
			return err
		}
		now := db.now().UTC()
		if rec.Spent {
			reused = true
			return deleteSession(tx, rec.User, rec.Session)
		}
		if !now.Before(rec.ExpiresAt) {
			return ErrRefreshInvalid
		}
		sd := tx.Bucket(bucketSessions).Get(sessionKey(rec.User, rec.Session))
		if sd == nil {
			return ErrRefreshInvalid // revoked
		}
		if err := json.Unmarshal(sd, &s); err != nil {
			return err
		}
		rec.Spent = true
		if err := putJSON(rb, hashToken(old), rec); err != nil {
			return err
		}
		s.LastUsed, s.ClientAddr, s.ExpiresAt = now, clientAddr, now.Add(ttl)
		if err := putJSON(tx.Bucket(bucketSessions), sessionKey(s.User, s.ID), s); err != nil {
			return err
		}
		return putJSON(rb, hashToken(next), refreshRecord{Session: s.ID, User: s.User, ExpiresAt: s.ExpiresAt})
	})
	if err == nil && reused {
		// The revocation above committed; report the reuse.
		err = ErrRefreshReused
	}
	return s, err
}

// Sessions returns the live sessions of user, oldest first.
func (db *DB) Sessions(user string) ([]Session, error) {
	var out []Session
	now := db.now()
	err := db.bolt.View(func(tx *bolt.Tx) error {
		prefix := sessionKey(user, "")
		c := tx.Bucket(bucketSessions).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var s Session
			if err := json.Unmarshal(v, &s); err != nil {
				return err
			}
			if now.Before(s.ExpiresAt) {
				out = append(out, s)
			}
		}
		return nil
	})
	sortSessions(out)
	return out, err
}

func sortSessions(s []Session) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j].CreatedAt.Before(s[j-1].CreatedAt); j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// RevokeSession ends the session id wherever it belongs, or returns
// ErrNotFound.
func (db *DB) RevokeSession(id string) (Session, error) {
	var s Session
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketSessions).Cursor()
		suffix := []byte("\x00" + id)
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if bytes.HasSuffix(k, suffix) {
				if err := json.Unmarshal(v, &s); err != nil {
					return err
				}
				return deleteSession(tx, s.User, id)
			}
		}
		return fmt.Errorf("session %s: %w", id, ErrNotFound)
	})
	return s, err
}

// deleteSession removes a session and every refresh token of it.
func deleteSession(tx *bolt.Tx, user, id string) error {
	if err := tx.Bucket(bucketSessions).Delete(sessionKey(user, id)); err != nil {
		return err
	}
	rb := tx.Bucket(bucketRefresh)
	var stale [][]byte
	err := rb.ForEach(func(k, v []byte) error {
		var rec refreshRecord
		if err := json.Unmarshal(v, &rec); err != nil {
			return err
		}
		if rec.Session == id {
			stale = append(stale, append([]byte(nil), k...))
		}
		return nil
	})
	for _, k := range stale {
		if err := rb.Delete(k); err != nil {
			return err
		}
	}
	return err
}

// deleteUserSessions removes every session of user; it runs inside the
// transactions that revoke a user's tokens.
func deleteUserSessions(tx *bolt.Tx, user string) error {
	prefix := sessionKey(user, "")
	var ids []string
	c := tx.Bucket(bucketSessions).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		ids = append(ids, string(k[len(prefix):]))
	}
	for _, id := range ids {
		if err := deleteSession(tx, user, id); err != nil {
			return err
		}
	}
	return nil
}

// DenyToken revokes one access token by its jti until exp, when it would
// have expired anyway.
func (db *DB) DenyToken(jti string, exp time.Time) error {
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDenied).Put([]byte(jti), []byte(exp.UTC().Format(time.RFC3339)))
	})
	if err == nil {
		db.denied.Store(jti, exp)
	}
	return err
}

// Denied reports whether the access token jti was revoked.
func (db *DB) Denied(jti string) bool {
	db.loadDenied()
	_, ok := db.denied.Load(jti)
	return ok
}

// loadDenied reads the deny list into memory once, dropping entries of
// tokens that have expired.
func (db *DB) loadDenied() {
	db.deniedOnce.Do(func() {
		now := db.now()
		db.bolt.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketDenied)
			var stale [][]byte
			b.ForEach(func(k, v []byte) error {
				exp, err := time.Parse(time.RFC3339, string(v))
				if err != nil || now.After(exp) {
					stale = append(stale, append([]byte(nil), k...))
					return nil
				}
				db.denied.Store(string(k), exp)
				return nil
			})
			for _, k := range stale {
				b.Delete(k)
			}
			return nil
		})
	})
}

func putJSON(b *bolt.Bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, data)
}
