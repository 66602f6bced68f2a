package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/chatctl/chatctl/auth"
	"github.com/chatctl/chatctl/configs"
	"github.com/chatctl/chatctl/store"
	"github.com/chatctl/chatctl/store/pg"
)

// ErrUserDisabled is returned when a token is requested for a disabled user.
var ErrUserDisabled = errors.New("user is disabled")

// Service implements Admin on an open store. The server uses the same
// Service for logins and token checks, so there is one copy of each rule.
type Service struct {
	db     store.Store
	cfg    *configs.Config
	keys   *keyRing
	tokens *auth.Tokens
	now    func() time.Time
	// onRevoke is set once by OnRevoke, read by every revoking call.
	onRevoke atomic.Pointer[func(Revocation)]
	// onAccess is set once by OnAccessChange, read by every access change.
	onAccess atomic.Pointer[func()]
	// afterAuth, set only by tests before use, runs in Login between the
	// password check and the session's start: the window a revocation
	// can hit.
	afterAuth func()
}

var _ Admin = (*Service)(nil)

// Open opens the store named by cfg.Store (PostgreSQL) or else cfg.DB
// (the bbolt file) and returns a Service on it. It
// fails with store.ErrLocked (within the lock timeout) when another process
// holds the store, and with configs.ErrLoosePermissions when the store, its
// folder or the secret file is open to other users (see
// Config.CheckPermissions): the server and every command that opens the
// store refuse alike.
func Open(cfg *configs.Config) (*Service, error) {
	return OpenWith(cfg, store.Create)
}

// OpenWith is Open for a command that needs access of the store: only
// store.Create makes a missing store; store.Read opens a read-only file
// read-only (see store.Access).
func OpenWith(cfg *configs.Config, access store.Access) (*Service, error) {
	return open(cfg, access, nil)
}

// OpenServer is Open for the server: the store's own warnings (the
// PostgreSQL change feed and node lock) go to log.
func OpenServer(cfg *configs.Config, log *slog.Logger) (*Service, error) {
	return open(cfg, store.Create, log)
}

func open(cfg *configs.Config, access store.Access, log *slog.Logger) (*Service, error) {
	if err := cfg.CheckPermissions(); err != nil {
		return nil, err
	}
	if cfg.Store != "" {
		db, err := pg.Open(context.Background(), cfg.Store, pg.Options{Access: access, Log: log})
		if err != nil {
			return nil, err
		}
		s, err := New(db, cfg, nil)
		if err != nil {
			db.Close()
			return nil, err
		}
		return s, nil
	}
	db, err := store.Open(cfg.DB, store.Options{Access: access})
	if err != nil {
		return nil, err
	}
	// Again now that the file exists: in a shared sticky folder someone
	// could have planted it between the check and its creation.
	if err := cfg.CheckPermissions(); err != nil {
		db.Close()
		return nil, err
	}
	s, err := New(db, cfg, nil)
	if err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// New returns a Service on db. now is the clock (nil for time.Now). The
// Service owns db: Close closes it.
func New(db store.Store, cfg *configs.Config, now func() time.Time) (*Service, error) {
	if now == nil {
		now = time.Now
	}
	secret, source, err := cfg.Secret()
	if err != nil {
		return nil, err
	}
	s := &Service{db: db, cfg: cfg, now: now, keys: newKeyRing(db, secret, source, now)}
	s.tokens = auth.NewTokens(s.keys, s, cfg.Token.Issuer, cfg.Token.Leeway, now)
	return s, nil
}

// Close closes the store.
func (s *Service) Close() error { return s.db.Close() }

// Backup implements Admin.
func (s *Service) Backup(ctx context.Context, w io.Writer) (int64, error) {
	n, err := store.WriteBackup(s.db, w, nil)
	if !s.db.ReadOnly() { // a read-only store cannot keep the entry
		s.record(ctx, ActionStoreBackup, "", err, fmt.Sprintf("%d bytes", n))
	}
	return n, err
}

// DB returns the store, for the server's own buckets.
func (s *Service) DB() store.Store { return s.db }

// Tokens returns the token minter and verifier bound to this store.
func (s *Service) Tokens() *auth.Tokens { return s.tokens }

// TokenState implements auth.Users.
func (s *Service) TokenState(name string) (auth.UserState, error) {
	u, err := s.db.User(name)
	if errors.Is(err, store.ErrNotFound) {
		return auth.UserState{}, nil
	}
	if err != nil {
		return auth.UserState{}, err
	}
	return auth.UserState{Found: true, Disabled: u.Disabled, Version: u.TokenVersion, Role: u.Role}, nil
}

func info(u store.User) UserInfo {
	return UserInfo{Username: u.Name, Role: u.Role, Disabled: u.Disabled, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}
}

// AddUser implements Admin.
func (s *Service) AddUser(ctx context.Context, req AddUserRequest) (AddUserResult, error) {
	res, err := s.addUser(req)
	detail := ""
	switch {
	case err != nil:
	case !res.Created:
		detail = "already exists; unchanged"
	case req.Hash != "":
		detail = "role " + res.User.Role + ", imported hash"
	default:
		detail = "role " + res.User.Role
	}
	s.record(ctx, ActionUserAdd, auditName(req.Name), err, detail)
	return res, err
}

func (s *Service) addUser(req AddUserRequest) (AddUserResult, error) {
	name, err := auth.NormalizeName(req.Name)
	if err != nil {
		return AddUserResult{}, err
	}
	if req.Role == "" {
		req.Role = auth.RoleUser
	}
	if err := auth.ValidateRole(req.Role); err != nil {
		return AddUserResult{}, err
	}
	if req.IgnoreExists {
		if u, err := s.db.User(name); err == nil {
			return AddUserResult{User: info(u)}, nil
		}
	}
	hash := req.Hash
	switch {
	case req.Hash != "" && req.Password != "":
		return AddUserResult{}, fmt.Errorf("%w: give a password or a hash, not both", ErrBadRequest)
	case req.Hash != "":
		if err := auth.ValidateHash(hash); err != nil {
			return AddUserResult{}, err
		}
	default:
		if hash, err = auth.HashPassword(req.Password, s.cfg.Password.MinLength, s.cfg.Password.BcryptCost); err != nil {
			return AddUserResult{}, err
		}
	}
	u, err := s.db.CreateUser(store.User{Name: name, Hash: hash, Role: req.Role})
	if errors.Is(err, store.ErrUserExists) && req.IgnoreExists {
		// Created by someone else between our check and our write.
		if u, err := s.db.User(name); err == nil {
			return AddUserResult{User: info(u)}, nil
		}
	}
	if err != nil {
		return AddUserResult{}, err
	}
	return AddUserResult{User: info(u), Created: true}, nil
}

// Users implements Admin.
func (s *Service) Users(context.Context) ([]UserInfo, error) {
	users, err := s.db.Users()
	if err != nil {
		return nil, err
	}
	out := make([]UserInfo, len(users))
	for i, u := range users {
		out[i] = info(u)
	}
	return out, nil
}

// User implements Admin.
func (s *Service) User(_ context.Context, name string) (UserInfo, error) {
	n, err := auth.NormalizeName(name)
	if err != nil {
		return UserInfo{}, err
	}
	u, err := s.db.User(n)
	return info(u), err
}

// update normalises name and applies c.
func (s *Service) update(name string, c store.Change) (UserInfo, error) {
	n, err := auth.NormalizeName(name)
	if err != nil {
		return UserInfo{}, err
	}
	u, err := s.db.UpdateUser(n, c)
	return info(u), err
}

// SetPassword implements Admin.
func (s *Service) SetPassword(ctx context.Context, name, password string) (u UserInfo, err error) {
	defer func() { s.record(ctx, ActionUserPasswd, auditName(name), err, "tokens revoked") }()
	hash, err := auth.HashPassword(password, s.cfg.Password.MinLength, s.cfg.Password.BcryptCost)
	if err != nil {
		return UserInfo{}, err
	}
	u, err = s.update(name, store.Change{Hash: &hash, RevokeTokens: true})
	if err == nil {
		s.revoked(Revocation{User: u.Username})
	}
	return u, err
}

// SetRole implements Admin.
func (s *Service) SetRole(ctx context.Context, name, role string) (u UserInfo, err error) {
	defer func() { s.record(ctx, ActionUserRole, auditName(name), err, "role "+auditText(role, 16)) }()
	if err := auth.ValidateRole(role); err != nil {
		return UserInfo{}, err
	}
	return s.update(name, store.Change{Role: &role})
}

// SetDisabled implements Admin. Disabling revokes every token; enabling
// does not bring old tokens back.
func (s *Service) SetDisabled(ctx context.Context, name string, disabled bool) (UserInfo, error) {
	u, err := s.update(name, store.Change{Disabled: &disabled, RevokeTokens: disabled})
	if err == nil && disabled {
		s.revoked(Revocation{User: u.Username})
	}
	if disabled {
		s.record(ctx, ActionUserDisable, auditName(name), err, "tokens revoked")
	} else {
		s.record(ctx, ActionUserEnable, auditName(name), err, "")
	}
	return u, err
}

// RemoveUser implements Admin.
func (s *Service) RemoveUser(ctx context.Context, name string) (err error) {
	defer func() { s.record(ctx, ActionUserRemove, auditName(name), err, "") }()
	n, err := auth.NormalizeName(name)
	if err != nil {
		return err
	}
	if err := s.db.DeleteUser(n); err != nil {
		return err
	}
	s.revoked(Revocation{User: n})
	return s.forgetAccess(n)
}

// IssueToken implements Admin. The log gets the token's jti and expiry,
// never the token.
func (s *Service) IssueToken(ctx context.Context, name string, ttl time.Duration) (t IssuedToken, err error) {
	defer func() {
		detail := ""
		if err == nil {
			detail = "jti " + t.JTI + ", expires " + t.ExpiresAt.Format(time.RFC3339)
		}
		s.record(ctx, ActionTokenIssue, auditName(name), err, detail)
	}()
	n, err := auth.NormalizeName(name)
	if err != nil {
		return IssuedToken{}, err
	}
	u, err := s.db.User(n)
	if err != nil {
		return IssuedToken{}, err
	}
	if u.Disabled {
		return IssuedToken{}, fmt.Errorf("user %s: %w", u.Name, ErrUserDisabled)
	}
	return s.mint(u, ttl, "")
}

// ErrTTLTooLong is returned for a token lifetime beyond token.refresh_ttl.
var ErrTTLTooLong = errors.New("token lifetime too long")

// mint signs an access token for u living ttl (token.ttl when zero), for
// session sid ("" for none). A lifetime is capped at token.refresh_ttl: an
// access token outliving any session makes revocation by rotation
// meaningless (and the deny list keeps an ended session only that long).
func (s *Service) mint(u store.User, ttl time.Duration, sid string) (IssuedToken, error) {
	if ttl == 0 {
		ttl = s.cfg.Token.TTL
	}
	// A lifetime is the caller's input: a negative or sub-second one (the
	// token would expire before it is used, expires_in 0) is refused as
	// bad input, never passed on to become an internal error.
	if ttl < time.Second {
		return IssuedToken{}, fmt.Errorf("%w: ttl must be at least 1s, got %s", ErrBadRequest, ttl)
	}
	if ttl > s.cfg.Token.RefreshTTL {
		return IssuedToken{}, fmt.Errorf("%w: %s is longer than token.refresh_ttl (%s); raise that to issue longer tokens", ErrTTLTooLong, ttl, s.cfg.Token.RefreshTTL)
	}
	tok, c, err := s.tokens.MintSession(u.Name, u.Role, u.TokenVersion, sid, ttl)
	if err != nil {
		return IssuedToken{}, err
	}
	return IssuedToken{
		AccessToken: tok, TokenType: "bearer", Username: u.Name, JTI: c.ID,
		ExpiresAt: c.ExpiresAt.UTC(), ExpiresIn: int64(ttl / time.Second),
	}, nil
}

// InspectToken implements Admin.
func (s *Service) InspectToken(_ context.Context, token string) (Inspection, error) {
	var in Inspection
	h, c, err := auth.Decode(token)
	if err != nil {
		in.Reason, in.Detail = string(auth.ReasonOf(err)), err.Error()
		return in, nil
	}
	in.Header, in.Claims = h, c
	if _, err := s.tokens.Verify(token); err != nil {
		r := auth.ReasonOf(err)
		if r == "" {
			return in, err // the store failed, not the token
		}
		in.Reason, in.Detail = string(r), err.Error()
		return in, nil
	}
	in.Valid = true
	return in, nil
}

// Keys implements Admin.
func (s *Service) Keys(context.Context) ([]KeyInfo, error) { return s.keys.infos() }

// RotateKey implements Admin.
func (s *Service) RotateKey(ctx context.Context) (KeyInfo, error) {
	k, err := s.keys.rotate()
	s.record(ctx, ActionKeyRotate, k.Kid, err, "")
	return k, err
}

// The states of a signing key, in KeyInfo.State.
const (
	KeyActive  = "active"  // signs new tokens, and verifies
	KeyRotated = "rotated" // rotated out: verifies until its tokens expire
	KeyRetired = "retired" // retired with `key retire`: verifies nothing
)

// ErrInvalidCredentials is returned by Authenticate for an unknown user, a
// wrong password or a disabled user alike.
var ErrInvalidCredentials = errors.New("incorrect username or password")

// Authenticate checks a login. Unknown users cost the same bcrypt work as
// a wrong password. A correct password whose hash has another cost than
// password.bcrypt_cost is rehashed at the configured cost.
func (s *Service) Authenticate(_ context.Context, name, password string) (store.User, error) {
	n, nameErr := auth.NormalizeName(name)
	var u store.User
	err := nameErr
	if err == nil {
		u, err = s.db.User(n)
	}
	if errors.Is(err, store.ErrNotFound) || nameErr != nil {
		auth.DummyCheck(password, s.cfg.Password.BcryptCost)
		if nameErr != nil {
			return store.User{}, errLogin{reasonBadName}
		}
		return store.User{}, errLogin{reasonUnknown}
	}
	if err != nil {
		return store.User{}, err
	}
	rehash, err := auth.CheckPassword(u.Hash, password, s.cfg.Password.BcryptCost)
	if err != nil {
		return store.User{}, errLogin{reasonPassword}
	}
	if u.Disabled {
		return store.User{}, errLogin{reasonDisabled}
	}
	if rehash {
		if h, err := auth.HashPassword(password, 0, s.cfg.Password.BcryptCost); err == nil {
			// The token version stays: the password did not change.
			// Only if nothing revoked the user meanwhile: a passwd that
			// committed while bcrypt ran must not be undone.
			if nu, err := s.db.UpdateUser(u.Name, store.Change{Hash: &h, IfVersion: &u.TokenVersion}); err == nil {
				u = nu
			}
		}
	}
	return u, nil
}

// UnlockUser implements Admin for a store without a server: the user must
// exist, and there is nothing to clear, as failed-login counters live in
// a running server's memory only (Live false).
func (s *Service) UnlockUser(ctx context.Context, name string) (UnlockResult, error) {
	return s.UnlockUserWith(ctx, name, nil)
}

// UnlockUserWith is UnlockUser for a running server: clear clears the
// failed-login counters of the (normalised) name and returns how many
// went. A nil clear means no server runs.
func (s *Service) UnlockUserWith(ctx context.Context, name string, clear func(name string) int) (res UnlockResult, err error) {
	defer func() {
		detail := "no server running: nothing to clear"
		if res.Live {
			detail = fmt.Sprintf("cleared %d counters", res.Cleared)
		}
		s.record(ctx, ActionUserUnlock, auditName(name), err, detail)
	}()
	n, err := auth.NormalizeName(name)
	if err != nil {
		return UnlockResult{}, err
	}
	u, err := s.db.User(n)
	if err != nil {
		return UnlockResult{}, err
	}
	res = UnlockResult{Username: u.Name}
	if clear != nil {
		res.Live, res.Cleared = true, clear(u.Name)
	}
	return res, nil
}

// Rooms implements Admin. Without a running server nobody is online.
func (s *Service) Rooms(context.Context) ([]RoomInfo, error) {
	rooms, err := s.db.Rooms()
	out := make([]RoomInfo, len(rooms))
	for i, r := range rooms {
		out[i] = RoomInfo{Name: r.Name, Messages: r.Messages, LastID: r.LastID, CreatedAt: r.CreatedAt}
	}
	return out, err
}

// DeleteRoom implements Admin.
func (s *Service) DeleteRoom(ctx context.Context, name string) error {
	err := s.db.DeleteRoom(name)
	s.record(ctx, ActionRoomDelete, auditText(name, 64), err, "")
	return err
}
