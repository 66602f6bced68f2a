package pg

import (
	"time"

	"github.com/chatctl/chatctl/store"
)

// TODO(helper): users and keys.

func (db *DB) CreateUser(u store.User) (store.User, error) { return store.User{}, errNotYet }
func (db *DB) User(name string) (store.User, error)        { return store.User{}, errNotYet }
func (db *DB) Users() ([]store.User, error)                { return nil, errNotYet }
func (db *DB) UpdateUser(name string, c store.Change) (store.User, error) {
	return store.User{}, errNotYet
}
func (db *DB) DeleteUser(name string) error { return errNotYet }

func (db *DB) Keys() ([]store.Key, error)                  { return nil, errNotYet }
func (db *DB) ActiveKey() (store.Key, error)               { return store.Key{}, errNotYet }
func (db *DB) RotateKey() (store.Key, error)               { return store.Key{}, errNotYet }
func (db *DB) RetireKey(kid string) (store.Key, error)     { return store.Key{}, errNotYet }
func (db *DB) NoteTTL(kid string, ttl time.Duration) error { return errNotYet }
