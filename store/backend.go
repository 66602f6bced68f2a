package store

import (
	"crypto/sha256"
	"strings"
	"time"

	"github.com/chatctl/chatctl/auth"
)

// The rules every backend shares, exported for store/pg: token versions,
// key and session ids, refresh tokens and their hashes, and the bounds of
// the audit queue. The bbolt store uses the same functions, so both
// backends make values of one shape (and `store copy` moves them as is).

// NewVersion returns a random token version other than old (0 for none):
// never 0, below 2^53 (see newVersion).
func NewVersion(old uint64) uint64 { return newVersion(old) }

// NewKey returns a fresh active HS256 key created at now.
func NewKey(now time.Time) (Key, error) { return newKey(now) }

// NewSessionID returns a fresh session id (SessionPrefix and 96 random
// bits).
func NewSessionID() string { return SessionPrefix + auth.RandomID(12) }

// NewRefreshToken returns a fresh refresh token of session id.
func NewRefreshToken(id string) string { return newRefreshToken(id) }

// RefreshTokenHash returns the session id a refresh token names and the
// SHA-256 of the token, which is all a store keeps of it. ok is false for
// a token without a session id (never issued by a store).
func RefreshTokenHash(token string) (session string, sum [32]byte, ok bool) {
	id, _, found := strings.Cut(token, ".")
	if !found || !strings.HasPrefix(id, SessionPrefix) {
		return "", sum, false
	}
	return id, sha256.Sum256([]byte(token)), true
}

// SessionDenyMargin is how long an ended session stays on the deny list
// past its expiry (see sessionDenyMargin).
const SessionDenyMargin = sessionDenyMargin

// Bounds of RecordAudit's queue, the same on every backend.
const (
	// AuditQueueLen is how many entries RecordAudit holds before dropping.
	AuditQueueLen = auditQueueLen
	// AuditBatch is the most entries the writer commits in one transaction.
	AuditBatch = auditBatch
)

// Matches reports whether e passes q's User and Action filters (Since and
// Limit are the caller's).
func (q AuditQuery) Matches(e AuditEntry) bool { return q.matches(e) }
