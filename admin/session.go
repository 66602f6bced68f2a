package admin

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/chatctl/chatctl/auth"
	"github.com/chatctl/chatctl/store"
)

// TokenPair is what a login or a refresh returns (RFC 6749 §5.1).
type TokenPair struct {
	IssuedToken
	RefreshToken string `json:"refresh_token"`
	SessionID    string `json:"-"`
}

// Denied implements auth.Users: id is a jti or a session id.
func (s *Service) Denied(id string) bool { return s.db.Denied(id) }

// Login checks a password and starts a session: an access token plus the
// first refresh token of a new family. clientAddr is recorded for
// `token list`.
func (s *Service) Login(ctx context.Context, name, password, clientAddr string) (TokenPair, error) {
	u, err := s.Authenticate(ctx, name, password)
	if err != nil {
		if r := reasonOf(err); r != "" {
			s.event(ActionLoginFailed, auditName(name), clientAddr, "", false, r)
		}
		return TokenPair{}, err
	}
	if s.afterAuth != nil {
		s.afterAuth()
	}
	sess, refresh, err := s.db.CreateSessionAt(u.Name, u.TokenVersion, clientAddr, s.cfg.Token.RefreshTTL)
	if errors.Is(err, store.ErrVersionChanged) {
		// The password was checked against a state that a passwd, disable
		// or revoke has since replaced: fail as a wrong password would.
		s.event(ActionLoginFailed, u.Name, clientAddr, "", false, "tokens revoked during login")
		return TokenPair{}, ErrInvalidCredentials
	}
	if err != nil {
		return TokenPair{}, err
	}
	tok, err := s.mint(u, 0, sess.ID)
	if err != nil {
		return TokenPair{}, err
	}
	s.event(ActionLoginOK, u.Name, clientAddr, "", true, "session "+sess.ID)
	return TokenPair{IssuedToken: tok, RefreshToken: refresh, SessionID: sess.ID}, nil
}

// Refresh spends a refresh token and returns a new pair. A spent token
// revokes its session and the access tokens minted for it
// (store.ErrRefreshReused); unknown, expired or revoked ones give
// store.ErrRefreshInvalid, as does a disabled user.
func (s *Service) Refresh(_ context.Context, refresh, clientAddr string) (TokenPair, error) {
	sess, next, err := s.db.Refresh(refresh, clientAddr, s.cfg.Token.RefreshTTL)
	if errors.Is(err, store.ErrRefreshReused) {
		s.revoked(Revocation{Session: sess.ID})
		s.event(ActionRefreshReuse, sess.User, clientAddr, sess.ID, false, "a spent refresh token was presented again; session revoked")
	}
	if err != nil {
		return TokenPair{}, err
	}
	u, err := s.db.User(sess.User)
	if errors.Is(err, store.ErrNotFound) || (err == nil && u.Disabled) {
		return TokenPair{}, store.ErrRefreshInvalid
	}
	if err != nil {
		return TokenPair{}, err
	}
	tok, err := s.mint(u, 0, sess.ID)
	if err != nil {
		return TokenPair{}, err
	}
	return TokenPair{IssuedToken: tok, RefreshToken: next, SessionID: sess.ID}, nil
}

// Sessions implements Admin.
func (s *Service) Sessions(_ context.Context, name string) ([]SessionInfo, error) {
	n, err := auth.NormalizeName(name)
	if err != nil {
		return nil, err
	}
	if _, err := s.db.User(n); err != nil {
		return nil, err
	}
	list, err := s.db.Sessions(n)
	out := make([]SessionInfo, len(list))
	for i, x := range list {
		out[i] = SessionInfo{ID: x.ID, Username: x.User, CreatedAt: x.CreatedAt, LastUsed: x.LastUsed, ClientAddr: x.ClientAddr, ExpiresAt: x.ExpiresAt}
	}
	return out, err
}

// Revoke implements Admin.
func (s *Service) Revoke(ctx context.Context, req RevokeRequest) (res RevokeResult, err error) {
	defer func() {
		target, detail := auditText(req.ID, maxIDLen), ""
		if req.User != "" {
			target, detail = auditName(req.User), "every token and session"
		}
		if err == nil {
			detail = res.Kind
			if res.Kind == "user" {
				detail = "every token and session"
			} else if res.Username != "" {
				detail += " of " + res.Username
			}
		}
		s.record(ctx, ActionTokenRevoke, target, err, detail)
	}()
	switch {
	case req.User != "" && req.All:
		u, err := s.update(req.User, store.Change{RevokeTokens: true})
		if err != nil {
			return RevokeResult{}, err
		}
		s.revoked(Revocation{User: u.Username})
		return RevokeResult{Kind: "user", Username: u.Username}, nil
	case req.User != "" || req.All:
		return RevokeRequest{}.invalid()
	case len(req.ID) > maxIDLen:
		// Ours have about 22 characters; a long one would only fill the
		// deny list (and bbolt refuses keys over 32 KiB).
		return RevokeResult{}, fmt.Errorf("%w: an id of %d bytes is neither a session id nor a jti", ErrBadRequest, len(req.ID))
	case strings.HasPrefix(req.ID, store.SessionPrefix):
		sess, err := s.db.RevokeSession(req.ID)
		if err != nil {
			return RevokeResult{}, err
		}
		s.revoked(Revocation{Session: sess.ID})
		return RevokeResult{Kind: "session", ID: sess.ID, Username: sess.User}, nil
	case req.ID != "":
		// An access token cannot be recalled, only refused until it would
		// have expired anyway: the longest lifetime any key has signed.
		if err := s.db.DenyToken(req.ID, s.now().Add(s.keys.maxTTL(s.cfg.Token.TTL))); err != nil {
			return RevokeResult{}, err
		}
		s.revoked(Revocation{JTI: req.ID})
		return RevokeResult{Kind: "token", ID: req.ID}, nil
	}
	return RevokeRequest{}.invalid()
}

func (RevokeRequest) invalid() (RevokeResult, error) {
	return RevokeResult{}, fmt.Errorf("%w: give a session id, a token's jti, or a user with all", ErrBadRequest)
}

// maxIDLen bounds the session ids and jtis Revoke accepts.
const maxIDLen = 128

// ErrBadRequest is returned for a request that names nothing to act on.
var ErrBadRequest = errors.New("bad request")
