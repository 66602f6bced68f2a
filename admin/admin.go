// Package admin is the one set of administrative operations behind every
// chatctl command: adding users, changing passwords, issuing tokens,
// rotating keys. The CLI talks to the Admin interface only. Service is the
// implementation that works on an open store; the server exposes the same
// Service over a Unix socket so that the CLI keeps working while `serve`
// holds the store file.
package admin

import (
	"context"
	"io"
	"time"
)

// Admin is the administrative surface of chatctl. Every method takes
// normalised or raw usernames alike, and returns errors that wrap the
// sentinels of packages store and auth (store.ErrNotFound,
// store.ErrUserExists, auth.ErrBadUsername, auth.ErrPasswordTooShort, …).
type Admin interface {
	// AddUser creates a user from a password or an imported bcrypt hash.
	// With IgnoreExists an existing user is returned unchanged, Created false.
	AddUser(ctx context.Context, req AddUserRequest) (AddUserResult, error)
	// Users lists every user by name.
	Users(ctx context.Context) ([]UserInfo, error)
	// User returns one user.
	User(ctx context.Context, name string) (UserInfo, error)
	// SetPassword replaces a password and revokes the user's tokens.
	SetPassword(ctx context.Context, name, password string) (UserInfo, error)
	// SetRole changes a user's role (admin or user).
	SetRole(ctx context.Context, name, role string) (UserInfo, error)
	// SetDisabled disables (revoking every token) or enables a user.
	SetDisabled(ctx context.Context, name string, disabled bool) (UserInfo, error)
	// RemoveUser deletes a user; their tokens stop verifying at once.
	RemoveUser(ctx context.Context, name string) error
	// IssueToken mints an access token for an existing, enabled user. A
	// zero ttl means the configured token.ttl.
	IssueToken(ctx context.Context, name string, ttl time.Duration) (IssuedToken, error)
	// InspectToken decodes a token and verifies it completely. An invalid
	// token is not an error: the Inspection says why it is invalid.
	InspectToken(ctx context.Context, token string) (Inspection, error)
	// Sessions lists a user's live sessions (refresh-token families).
	Sessions(ctx context.Context, name string) ([]SessionInfo, error)
	// Revoke ends one session, one access token (by jti), or with All
	// every token and session of a user.
	Revoke(ctx context.Context, req RevokeRequest) (RevokeResult, error)
	// UnlockUser clears the failed-login counters of a user (every
	// address's) in the running server. Without a server there are none
	// to clear, as they live in its memory only: Live says which.
	UnlockUser(ctx context.Context, name string) (UnlockResult, error)
	// Rooms lists the chat rooms with stored history.
	Rooms(ctx context.Context) ([]RoomInfo, error)
	// DeleteRoom removes a room and its history.
	DeleteRoom(ctx context.Context, name string) error
	// AccessRules lists the access rules (SPEC §8), by user then pattern.
	AccessRules(ctx context.Context) ([]AccessRule, error)
	// SetAccess adds or replaces a rule; a rule for an unknown user is
	// store.ErrNotFound, a bad pattern or permission ErrBadRequest.
	SetAccess(ctx context.Context, r AccessRule) (AccessRule, error)
	// ResetAccess removes a user's rules, or its rule for one pattern.
	ResetAccess(ctx context.Context, req ResetAccessRequest) (ResetAccessResult, error)
	// CreateRoom creates a private room with its first members.
	CreateRoom(ctx context.Context, req CreateRoomRequest) (RoomMembers, error)
	// RoomMembers lists who may read a private room or a DM.
	RoomMembers(ctx context.Context, name string) (RoomMembers, error)
	// AddMember adds a user to a private room.
	AddMember(ctx context.Context, room, user string) (RoomMembers, error)
	// KickMember removes a user from a private room, closing it for
	// their live connections.
	KickMember(ctx context.Context, room, user string) (RoomMembers, error)
	// Keys lists the signing keys that still verify.
	Keys(ctx context.Context) ([]KeyInfo, error)
	// RotateKey retires the active key and creates a new one.
	RotateKey(ctx context.Context) (KeyInfo, error)
	// RetireKey stops a rotated-out key verifying at once (a compromised
	// key): its tokens are refused and their chat connections closed. The
	// active key is refused with ErrKeyActive: rotate first.
	RetireKey(ctx context.Context, kid string) (KeyInfo, error)
	// Backup writes a consistent copy of the whole store to w (bbolt's
	// Tx.WriteTo in one read transaction, so writers carry on) and
	// returns its length in bytes. A remote copy that arrives short is an
	// error.
	Backup(ctx context.Context, w io.Writer) (int64, error)
	// Audit lists audit-log entries (admin actions and auth events)
	// selected by q, oldest first; with a Limit, the newest Limit of them.
	// Listing is not itself recorded.
	Audit(ctx context.Context, q AuditQuery) ([]AuditEntry, error)
	// Close releases what the implementation holds (the store or a
	// connection).
	Close() error
}

// AddUserRequest is the input of AddUser. Exactly one of Password and Hash
// is set.
type AddUserRequest struct {
	Name         string `json:"name"`
	Role         string `json:"role,omitempty"`
	Password     string `json:"password,omitempty"`
	Hash         string `json:"hash,omitempty"`
	IgnoreExists bool   `json:"ignore_exists,omitempty"`
}

// AddUserResult is the output of AddUser.
type AddUserResult struct {
	User    UserInfo `json:"user"`
	Created bool     `json:"created"`
}

// UserInfo is a user as shown to operators: never the hash.
type UserInfo struct {
	Username  string    `json:"username"`
	Role      string    `json:"role"`
	Disabled  bool      `json:"disabled"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// IssuedToken is a freshly minted access token.
type IssuedToken struct {
	AccessToken string    `json:"access_token"`
	TokenType   string    `json:"token_type"`
	ExpiresIn   int64     `json:"expires_in"`
	ExpiresAt   time.Time `json:"expires_at"`
	JTI         string    `json:"jti"`
	Username    string    `json:"username"`
}

// Inspection is the result of InspectToken.
type Inspection struct {
	// Header and Claims are absent (nil) when the token cannot be decoded.
	Header map[string]any `json:"header,omitzero"`
	Claims map[string]any `json:"claims,omitzero"`
	Valid  bool           `json:"valid"`
	// Reason is the failed check when not Valid (see auth.Reason).
	Reason string `json:"reason,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// KeyInfo describes a signing key without its secret.
type KeyInfo struct {
	Kid    string `json:"kid"`
	Active bool   `json:"active"`
	// State is KeyActive, KeyRotated or KeyRetired.
	State string `json:"state"`
	// Source is "store" for generated keys, or where an operator-supplied
	// secret came from.
	Source    string    `json:"source"`
	CreatedAt time.Time `json:"created_at,omitzero"`
	// RetiredAt is when the key stopped signing (rotation).
	RetiredAt time.Time `json:"retired_at,omitzero"`
	// Expires is when a rotated key stops verifying, or when `key retire`
	// stopped it.
	Expires time.Time `json:"expires,omitzero"`
}

// SessionInfo is one live session: a refresh-token family.
type SessionInfo struct {
	ID         string    `json:"id"`
	Username   string    `json:"username"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsed   time.Time `json:"last_used"`
	ClientAddr string    `json:"client_addr"`
	ExpiresAt  time.Time `json:"expires_at"`
}

// RevokeRequest names what Revoke ends: ID (a session id or an access
// token's jti), or User with All.
type RevokeRequest struct {
	ID   string `json:"id,omitempty"`
	User string `json:"user,omitempty"`
	All  bool   `json:"all,omitempty"`
}

// RevokeResult says what Revoke ended.
type RevokeResult struct {
	// Kind is "session", "token" or "user".
	Kind     string `json:"kind"`
	ID       string `json:"id,omitempty"`
	Username string `json:"username,omitempty"`
}

// UnlockResult says what UnlockUser cleared.
type UnlockResult struct {
	Username string `json:"username"`
	// Live is true when a running server cleared its counters; false when
	// no server runs, and so no counter exists.
	Live bool `json:"live"`
	// Cleared is how many counters (the name's own, and one per address
	// it failed from) were cleared.
	Cleared int `json:"cleared"`
}

// RoomInfo describes a chat room.
type RoomInfo struct {
	Name      string    `json:"name"`
	Messages  int       `json:"messages"`
	LastID    uint64    `json:"last_id"`
	CreatedAt time.Time `json:"created_at"`
	// Online is the number of users connected to the room, Connections
	// their connections; both are 0 when no server is running.
	Online      int `json:"online"`
	Connections int `json:"connections"`
}
