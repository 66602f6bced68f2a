package store

import "errors"

var (
	// ErrNotFound is returned when a user, key or other record does not exist.
	ErrNotFound = errors.New("not found")

	// ErrUserExists is returned by CreateUser when the name is taken.
	ErrUserExists = errors.New("already exists")

	// ErrLocked is returned by Open when another process holds the file lock
	// for longer than Options.Timeout.
	ErrLocked = errors.New("store is in use by another process")

	// ErrCorrupt is returned by Open when the file is not a bbolt database or
	// its pages fail their checks.
	ErrCorrupt = errors.New("store is not a chatctl database or is damaged")

	// ErrKeyActive is returned by RetireKey for the key that signs new
	// tokens: rotate first, so that another key signs.
	ErrKeyActive = errors.New("key is the active signing key")

	// ErrNoStore is returned by Open, for an Access other than Create,
	// when the file does not exist.
	ErrNoStore = errors.New("does not exist")

	// ErrReadOnly is returned by Open when a command that writes meets a
	// read-only file, and by writes to a store opened read-only.
	ErrReadOnly = errors.New("store is read-only")

	// ErrNewerSchema is returned by Open when the file was written by a newer
	// chatctl whose schema this binary does not know.
	ErrNewerSchema = errors.New("store was written by a newer chatctl")

	// ErrVersionChanged is returned by CreateSessionAt (and UpdateUser with
	// Change.IfVersion) when the user's token version moved (passwd, disable, revoke --all) after the caller read
	// it: a login checked against the old state must not start a session.
	ErrVersionChanged = errors.New("user's tokens were revoked meanwhile")
)

// ErrUnavailable wraps the errors of a store that cannot be reached (a
// PostgreSQL server that is down or refuses the connection): the caller
// may retry later, nothing was changed.
var ErrUnavailable = errors.New("store unavailable")
