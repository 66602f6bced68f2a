// Package store keeps all of chatctl's state in one bbolt file.
//
// # Basics
//
// Open creates the file (mode 0600, and its folder when missing), creates
// every bucket and runs schema migrations in one transaction, then hands
// out a *DB whose methods each run in a single transaction: a change is
// either all there or not at all.
//
// Buckets (values are JSON unless noted):
//
//	meta     "schema" -> the schema version as a decimal string
//	users    lower-case username -> User
//	keys     kid -> Key (the HS256 signing keys)
//	sessions, refresh, denied: refresh-token families (see session.go)
//	rooms    one nested bucket per chat room (see message.go)
//	access, private, reads, declared: access rules, private rooms, read
//	         markers and what the config declared (schema 2; see access.go)
//
// Usernames are keys in lower case; callers normalise them first (see
// package auth), and the store lower-cases again so that lookups are
// case-insensitive whatever the caller does.
//
// # Caveats
//
// bbolt allows one process at a time. Open waits at most Options.Timeout
// for the file lock and then returns ErrLocked instead of hanging; a running
// `chatctl serve` is reached through its admin socket instead (package
// admin). Byte slices read inside a transaction are only valid inside it, so
// every value is decoded or copied before the transaction ends. Token
// versions come from one store-wide sequence, so a user who is removed and
// added again never makes an old token valid again. Decoded users are
// cached in memory (token checks read them on every request); the cache is
// coherent because only this process can write the file while it is open.
package store
