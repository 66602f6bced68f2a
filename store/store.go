package store

import (
	"context"
	"errors"
	"io"
	"time"
)

// Store is everything chatctl keeps: users, signing keys, refresh
// sessions, the deny list, rooms with their messages, and the audit log.
// Two backends implement it with the same rules: *DB, the bbolt file (the
// default), and store/pg, PostgreSQL (SPEC §7). The conformance suite in
// store/storetest runs one table of cases against both.
//
// Errors are the ones *DB documents (ErrNotFound, ErrUserExists,
// ErrKeyActive, ErrReadOnly, ErrVersionChanged, ErrRefreshInvalid,
// ErrRefreshReused, …); a backend that cannot be reached returns an error
// wrapping ErrUnavailable.
type Store interface {
	// Close flushes queued messages and audit entries and releases the store.
	Close() error
	// Created reports whether opening the store created it.
	Created() bool
	// ReadOnly reports whether the store was opened read-only.
	ReadOnly() bool
	// Path names the store in messages: the file, or the PostgreSQL URL
	// without its password.
	Path() string
	// Schema returns the schema version the store records; it fails when
	// the store cannot be read (so /health reports it).
	Schema() (int, error)
	// LastWriteErr is the error of the latest write when it failed to
	// commit, nil once a later one commits.
	LastWriteErr() error
	// MessageCommits counts message transactions committed by this handle.
	MessageCommits() uint64

	CreateUser(u User) (User, error)
	User(name string) (User, error)
	Users() ([]User, error)
	UpdateUser(name string, c Change) (User, error)
	DeleteUser(name string) error

	Keys() ([]Key, error)
	ActiveKey() (Key, error)
	RotateKey() (Key, error)
	RetireKey(kid string) (Key, error)
	NoteTTL(kid string, ttl time.Duration) error

	CreateSession(user, clientAddr string, ttl time.Duration) (Session, string, error)
	CreateSessionAt(user string, version uint64, clientAddr string, ttl time.Duration) (Session, string, error)
	Refresh(old, clientAddr string, ttl time.Duration) (Session, string, error)
	Sessions(user string) ([]Session, error)
	RevokeSession(id string) (Session, error)
	PruneSessions() (int, error)
	DenyToken(jti string, exp time.Time) error
	Denied(id string) bool

	SetRetention(r Retention)
	AppendMessage(ctx context.Context, room, from, text string, ts time.Time) (Message, error)
	MessagesAfter(room string, after uint64, limit int) ([]Message, error)
	MessagesBefore(room string, before uint64, limit int) ([]Message, error)
	RoomEpoch(room string) (string, error)
	// Heads returns the head (last id and epoch) of each named room that
	// has stored history; rooms without are left out. One cheap read
	// for many rooms: a cluster node checks the rooms it serves with it.
	Heads(rooms []string) (map[string]Head, error)
	Rooms() ([]Room, error)
	DeleteRoom(name string) error
	PruneMessages(maxAge time.Duration) (int, error)

	// Access rules, private rooms and read markers (SPEC §8; see
	// store/access.go for what each does and returns).
	AccessRules() ([]AccessRule, error)
	SetAccessRule(r AccessRule) error
	ResetAccess(user, pattern string) (int, error)
	CreatePrivateRoom(room string, members []string) error
	PrivateRooms() ([]PrivateRoom, error)
	SetMember(room, user string, in bool) error
	SetReadMarker(user, room string, id uint64) (ReadMark, error)
	ReadMarkers(user string) (map[string]uint64, error)
	Declared(kind string) ([]string, error)
	SetDeclared(kind string, names []string) error

	AppendAudit(entries ...AuditEntry) error
	RecordAudit(e AuditEntry)
	FlushAudit()
	AuditDropped() uint64
	Audit(q AuditQuery) ([]AuditEntry, error)
	PruneAudit(maxAge time.Duration, maxEntries int) (int, error)
}

var _ Store = (*DB)(nil)

// FileStore is implemented by the bbolt store only: a consistent copy of
// the file for `chatctl backup`.
type FileStore interface {
	WriteTo(w io.Writer, size func(int64)) (int64, error)
}

// ErrNoFileBackup is returned by WriteBackup for a store that is not a
// file.
var ErrNoFileBackup = errors.New("`chatctl backup` copies a bbolt file; back up a PostgreSQL store with pg_dump, or copy it into a file with `chatctl store copy --to FILE`")

// WriteBackup writes a consistent copy of s to w when s is a file (see
// DB.WriteTo), else fails with ErrNoFileBackup.
func WriteBackup(s Store, w io.Writer, size func(int64)) (int64, error) {
	f, ok := s.(FileStore)
	if !ok {
		return 0, ErrNoFileBackup
	}
	return f.WriteTo(w, size)
}

// Kinds of change in the change feed of a store shared by several
// processes (see Watcher).
const (
	ChangeUser       = "user"        // a user changed (role, enabled, hash); key: name
	ChangeUserRevoke = "user.revoke" // a user's tokens ended (passwd, disable, remove, revoke --all); key: name
	ChangeJTI        = "jti"         // an access token was revoked; key: jti
	ChangeSession    = "session"     // a session ended (revoke, refresh reuse); key: session id
	ChangeKey        = "key"         // a signing key was created, rotated or retired; key: kid
	ChangeRoomDelete = "room.delete" // a room was deleted; key: name
	// ChangeAccess: an access rule was set or reset; key: the rule's user
	// ("*" for everyone). A server reloads its rules (chat.Hub.RecheckAccess).
	ChangeAccess = "access"
	// ChangeMembers: a room became private or its members changed; key:
	// the room. A server reloads its rules (chat.Hub.RecheckAccess).
	ChangeMembers = "members"
	// ChangeReset says changes may have been missed (the feed was pruned
	// past the watcher's position): drop every cache.
	ChangeReset = "reset"
)

// Watcher is implemented by stores that other processes change too
// (PostgreSQL). Watch follows the store's change feed until ctx ends:
// every `every` it reads the changes committed since the last read, in
// commit order, applies each to the store's own caches, then calls fn.
// Changes made through this handle come back as well. Watch returns once
// ctx ends; it fails at once only when the feed cannot be read at start.
type Watcher interface {
	Watch(ctx context.Context, every time.Duration, fn func(kind, key string)) error
}
