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

	"github.com/chatctl/chatctl/auth"
)

// Sessions are refresh-token families (RFC 6749 §10.4, RFC 9700 §4.14):
// a login starts one, each refresh spends the current token and issues the
// next, and presenting a spent token revokes the whole family.
//
// Buckets:
//
//	sessions  user "\x00" session id -> Session
//	refresh   session id "\x00" sha256(refresh token) -> refreshRecord
//	denied    jti or session id -> expiry (RFC 3339): access tokens
//	          revoked one by one, and sessions ended by RevokeSession or
//	          reuse, whose access tokens (claim sid) are refused
//
// A refresh token is "<session id>.<256 random bits>": the id finds its
// family's records by prefix, so ending a session touches only its own
// tokens. Tokens are stored only as hashes: a copy of the file does not
// let anyone sign in. Expired sessions and their tokens are removed by
// PruneSessions.

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
	// spent; its whole session has been revoked (and is returned with it).
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

// SessionPrefix starts every session id, so a session can be told from an
// access token's jti.
const SessionPrefix = "ses_"

// sessionDenyMargin keeps an ended session on the deny list this long past
// its expiry. The session's last access token was minted right after its
// expiry was set, for at most token.refresh_ttl (admin caps it), so it
// expires within moments of the session; the margin covers that and the
// verifier's leeway.
const sessionDenyMargin = 5 * time.Minute

// refreshKey is where token's record lives: its session id, then its hash.
// A token without a session id has no key.
func refreshKey(token string) ([]byte, bool) {
	id, _, ok := strings.Cut(token, ".")
	if !ok || !strings.HasPrefix(id, SessionPrefix) {
		return nil, false
	}
	sum := sha256.Sum256([]byte(token))
	return append([]byte(id+"\x00"), sum[:]...), true
}

// newRefreshToken returns a fresh token of session id.
func newRefreshToken(id string) string { return id + "." + auth.RandomID(32) }

func sessionKey(user, id string) []byte { return []byte(strings.ToLower(user) + "\x00" + id) }

// CreateSession starts a session for user, valid for ttl, and returns it
// with its first refresh token.
func (db *DB) CreateSession(user, clientAddr string, ttl time.Duration) (Session, string, error) {
	return db.createSession(user, clientAddr, ttl, nil)
}

// CreateSessionAt is CreateSession for a user whose state was read at
// token version version (a login that checked the password): if the
// version has moved since (passwd, disable, `token revoke --user --all`
// committed while bcrypt ran), no session starts and ErrVersionChanged is
// returned, so a revocation cannot be outrun by a login in flight.
func (db *DB) CreateSessionAt(user string, version uint64, clientAddr string, ttl time.Duration) (Session, string, error) {
	return db.createSession(user, clientAddr, ttl, &version)
}

func (db *DB) createSession(user, clientAddr string, ttl time.Duration, version *uint64) (Session, string, error) {
	now := db.now().UTC()
	s := Session{ID: NewSessionID(), User: strings.ToLower(user), CreatedAt: now, LastUsed: now, ClientAddr: clientAddr, ExpiresAt: now.Add(ttl)}
	token := newRefreshToken(s.ID)
	key, _ := refreshKey(token)
	err := db.update(func(tx *bolt.Tx) error {
		var u User
		if err := getUser(tx, user, &u); err != nil {
			return err
		}
		if version != nil && u.TokenVersion != *version {
			return ErrVersionChanged
		}
		if err := putJSON(tx.Bucket(bucketSessions), sessionKey(user, s.ID), s); err != nil {
			return err
		}
		return putJSON(tx.Bucket(bucketRefresh), key, refreshRecord{Session: s.ID, User: s.User, ExpiresAt: s.ExpiresAt})
	})
	if err != nil {
		return Session{}, "", err
	}
	return s, token, nil
}

// Refresh spends the refresh token old and returns the session's next
// token, valid for ttl from now. A spent token ends the session (its
// access tokens are denied too) and returns it with ErrRefreshReused; an
// unknown or expired one returns ErrRefreshInvalid.
func (db *DB) Refresh(old, clientAddr string, ttl time.Duration) (Session, string, error) {
	oldKey, ok := refreshKey(old)
	if !ok {
		return Session{}, "", ErrRefreshInvalid
	}
	var s Session
	var next string
	reused := false
	var denied deniedID
	err := db.update(func(tx *bolt.Tx) error {
		rb := tx.Bucket(bucketRefresh)
		data := rb.Get(oldKey)
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
			s = Session{ID: rec.Session, User: rec.User}
			if sd := tx.Bucket(bucketSessions).Get(sessionKey(rec.User, rec.Session)); sd != nil {
				if err := json.Unmarshal(sd, &s); err != nil {
					return err
				}
				var err error
				if denied, err = denySession(tx, s); err != nil {
					return err
				}
			}
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
		// The spent record stays (until the session ends) so that a replay
		// of it is recognised as reuse.
		rec.Spent = true
		if err := putJSON(rb, oldKey, rec); err != nil {
			return err
		}
		s.LastUsed, s.ClientAddr, s.ExpiresAt = now, clientAddr, now.Add(ttl)
		if err := putJSON(tx.Bucket(bucketSessions), sessionKey(s.User, s.ID), s); err != nil {
			return err
		}
		next = newRefreshToken(s.ID)
		nextKey, _ := refreshKey(next)
		return putJSON(rb, nextKey, refreshRecord{Session: s.ID, User: s.User, ExpiresAt: s.ExpiresAt})
	})
	switch {
	case err == nil && reused:
		// The revocation above committed; report the reuse.
		db.remember(denied)
		return s, "", ErrRefreshReused
	case err != nil:
		return Session{}, "", err
	}
	return s, next, nil
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
// ErrNotFound. The access tokens minted for it (claim sid) are denied
// until the session would have expired.
func (db *DB) RevokeSession(id string) (Session, error) {
	var s Session
	var denied deniedID
	err := db.update(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketSessions).Cursor()
		suffix := []byte("\x00" + id)
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if bytes.HasSuffix(k, suffix) {
				if err := json.Unmarshal(v, &s); err != nil {
					return err
				}
				var err error
				if denied, err = denySession(tx, s); err != nil {
					return err
				}
				return deleteSession(tx, s.User, id)
			}
		}
		return fmt.Errorf("session %s: %w", id, ErrNotFound)
	})
	if err == nil {
		db.remember(denied)
	}
	return s, err
}

// deniedID is a deny-list entry written in a transaction, to be added to
// the in-memory set once the transaction has committed.
type deniedID struct {
	id  string
	exp time.Time
}

// denySession puts s's id on the deny list until its access tokens have
// all expired.
func denySession(tx *bolt.Tx, s Session) (deniedID, error) {
	d := deniedID{id: s.ID, exp: s.ExpiresAt.Add(sessionDenyMargin)}
	return d, tx.Bucket(bucketDenied).Put([]byte(d.id), []byte(d.exp.UTC().Format(time.RFC3339)))
}

// remember adds a committed entry to the in-memory deny list.
func (db *DB) remember(d deniedID) {
	if d.id != "" {
		db.denied.Store(d.id, d.exp)
	}
}

// deleteSession removes a session and every refresh token of it.
func deleteSession(tx *bolt.Tx, user, id string) error {
	if err := tx.Bucket(bucketSessions).Delete(sessionKey(user, id)); err != nil {
		return err
	}
	return deletePrefix(tx.Bucket(bucketRefresh), []byte(id+"\x00"))
}

// deletePrefix deletes every key of b that starts with prefix.
func deletePrefix(b *bolt.Bucket, prefix []byte) error {
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Seek(prefix) {
		if err := c.Delete(); err != nil {
			return err
		}
	}
	return nil
}

// PruneSessions removes sessions that have expired, with their refresh
// tokens, and deny-list entries of access tokens that have expired; it
// returns how many sessions went. Without it, spent tokens kept for reuse
// detection would pile up.
func (db *DB) PruneSessions() (int, error) {
	now := db.now()
	n := 0
	err := db.update(func(tx *bolt.Tx) error {
		var stale []Session
		err := tx.Bucket(bucketSessions).ForEach(func(_, v []byte) error {
			var s Session
			if err := json.Unmarshal(v, &s); err != nil {
				return err
			}
			if !now.Before(s.ExpiresAt) {
				stale = append(stale, s)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, s := range stale {
			if err := deleteSession(tx, s.User, s.ID); err != nil {
				return err
			}
		}
		n = len(stale)
		denied := tx.Bucket(bucketDenied)
		var expired [][]byte
		denied.ForEach(func(k, v []byte) error {
			if exp, err := time.Parse(time.RFC3339, string(v)); err != nil || now.After(exp) {
				expired = append(expired, append([]byte(nil), k...))
			}
			return nil
		})
		for _, k := range expired {
			if err := denied.Delete(k); err != nil {
				return err
			}
			db.denied.Delete(string(k))
		}
		return nil
	})
	return n, err
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
	err := db.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDenied).Put([]byte(jti), []byte(exp.UTC().Format(time.RFC3339)))
	})
	if err == nil {
		db.remember(deniedID{id: jti, exp: exp})
	}
	return err
}

// Denied reports whether id, an access token's jti or a session id, was
// revoked. It reads memory only (after the first call).
func (db *DB) Denied(id string) bool {
	db.loadDenied()
	_, ok := db.denied.Load(id)
	return ok
}

// loadDenied reads the deny list into memory once; entries of tokens that
// have expired are skipped (PruneSessions deletes them).
func (db *DB) loadDenied() {
	db.deniedOnce.Do(func() {
		now := db.now()
		db.bolt.View(func(tx *bolt.Tx) error {
			return tx.Bucket(bucketDenied).ForEach(func(k, v []byte) error {
				if exp, err := time.Parse(time.RFC3339, string(v)); err == nil && !now.After(exp) {
					db.denied.Store(string(k), exp)
				}
				return nil
			})
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
