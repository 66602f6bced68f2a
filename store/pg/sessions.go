package pg

import (
	"errors"
	"time"

	"github.com/chatctl/chatctl/store"
)

var errNotYet = errors.New("not yet implemented on PostgreSQL")

// deny caches the deny list (TODO(helper)).
type deny struct{}

func (db *DB) CreateSession(user, clientAddr string, ttl time.Duration) (store.Session, string, error) {
	return store.Session{}, "", errNotYet
}
func (db *DB) CreateSessionAt(user string, version uint64, clientAddr string, ttl time.Duration) (store.Session, string, error) {
	return store.Session{}, "", errNotYet
}
func (db *DB) Refresh(old, clientAddr string, ttl time.Duration) (store.Session, string, error) {
	return store.Session{}, "", errNotYet
}
func (db *DB) Sessions(user string) ([]store.Session, error)  { return nil, errNotYet }
func (db *DB) RevokeSession(id string) (store.Session, error) { return store.Session{}, errNotYet }
func (db *DB) PruneSessions() (int, error)                    { return 0, errNotYet }
func (db *DB) DenyToken(jti string, exp time.Time) error      { return errNotYet }
func (db *DB) Denied(id string) bool                          { return false }
