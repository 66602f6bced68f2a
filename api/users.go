package api

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/chatctl/chatctl/admin"
	"github.com/chatctl/chatctl/auth"
	"github.com/chatctl/chatctl/store"
)

func handleRoot() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		encode(w, http.StatusOK, map[string]string{"message": "Welcome to the Real-time Chat API!"})
	})
}

// handleHealth answers 200 while the store can be read and its latest
// write committed, else 503 with the reason: a full disk makes the server
// unhealthy until a write succeeds again. A node whose broker is down is
// degraded, not dead (SPEC §7: it serves its own members and catches up
// from the store): 200 with status degraded and the reason.
func (s *Server) handleHealth() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if reason := storeProblem(s.svc.DB()); reason != "" {
			unhealthy(w, reason)
			return
		}
		if !s.hub.Broker().Up() {
			encode(w, http.StatusOK, map[string]string{"status": "degraded",
				"detail": "broker: disconnected; serving this node's members, other nodes' messages are read from the store"})
			return
		}
		encode(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}

// handleReady answers 200 {"status":"ready"} while the server takes new
// clients: not draining, and the store answers a read transaction and its
// latest write committed. Else 503 with status draining or unavailable and
// the reason, like /health. /health says whether the process should be
// restarted; /ready whether a load balancer should send it traffic.
func (s *Server) handleReady() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.draining.Load() {
			encode(w, http.StatusServiceUnavailable, map[string]string{"status": "draining", "detail": "the server is shutting down"})
			return
		}
		if reason := storeProblem(s.svc.DB()); reason != "" {
			unhealthy(w, reason)
			return
		}
		encode(w, http.StatusOK, map[string]string{"status": "ready"})
	})
}

// storeProblem is why the store is unusable (it cannot be read, or its
// last write failed), or "" when it is fine.
func storeProblem(db store.Store) string {
	if _, err := db.Schema(); err != nil {
		return "store: " + err.Error()
	}
	if err := db.LastWriteErr(); err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the file's path is no business of an anonymous caller
		}
		return "store: the last write failed: " + err.Error()
	}
	return ""
}

// unhealthy is the 503 of /health.
func unhealthy(w http.ResponseWriter, reason string) {
	encode(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "detail": reason})
}

// ctxKey is the type of this package's context keys.
type ctxKey int

const claimsKey ctxKey = 0

// claimsFrom returns the verified token claims requireAuth stored.
func claimsFrom(ctx context.Context) *auth.Claims {
	c, _ := ctx.Value(claimsKey).(*auth.Claims)
	return c
}

// bearer extracts the token of an "Authorization: Bearer" header.
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// unauthorized is the seed's answer to a missing token: a plain Bearer
// challenge (RFC 6750 §3.1: no error code when the request had none).
func unauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", "Bearer")
	errBody(w, http.StatusUnauthorized, "Could not validate credentials")
}

// rejectToken answers a token that was sent but is not valid (malformed,
// expired, revoked, …): the same body, with RFC 6750 §3.1's error code.
func rejectToken(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	errBody(w, http.StatusUnauthorized, "Could not validate credentials")
}

// verify checks a token and counts rejections by reason.
func (s *Server) verify(token string) (*auth.Claims, error) {
	c, err := s.tokens.Verify(token)
	if err != nil {
		reason := string(auth.ReasonOf(err))
		if reason == "" {
			reason = "error"
		}
		s.metrics.tokens.WithLabelValues("rejected", reason).Inc()
	}
	return c, err
}

// authenticate verifies tok, counting a missing one, and answers 401 when
// it is not valid; ok is false then and the request is done.
func (s *Server) authenticate(w http.ResponseWriter, tok string) (c *auth.Claims, ok bool) {
	if tok == "" {
		s.metrics.tokens.WithLabelValues("rejected", "missing").Inc()
		unauthorized(w)
		return nil, false
	}
	c, err := s.verify(tok)
	if err != nil {
		if !errors.Is(err, auth.ErrInvalidToken) {
			s.log.Error("verify token", "err", err) // the store failed, not the token
		}
		rejectToken(w)
		return nil, false
	}
	return c, true
}

// requireAuth lets a request through only with a valid bearer token, and
// puts its claims in the context.
func (s *Server) requireAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, ok := s.authenticate(w, bearer(r)); ok {
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), claimsKey, c)))
		}
	})
}

// requireAdmin refuses tokens of users whose current role is not admin.
func requireAdmin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c := claimsFrom(r.Context()); c == nil || c.Role != auth.RoleAdmin {
			errBody(w, http.StatusForbidden, "Admin role required")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// me is the body of GET /users/me: the seed's fields plus role and
// creation time.
type me struct {
	Username  string    `json:"username"`
	Message   string    `json:"message"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"created_at"`
}

func handleMe(svc *admin.Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := claimsFrom(r.Context())
		u, err := svc.DB().User(c.Subject) // cached: no store read
		if err != nil {
			rejectToken(w) // removed between verification and now
			return
		}
		encode(w, http.StatusOK, me{Username: u.Name, Message: "You are authenticated!", Role: u.Role, CreatedAt: u.CreatedAt})
	})
}

// signupRequest is the body of POST /users.
type signupRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Role     string `json:"role,omitempty"`
}

// handleCreateUser signs up a user when signup is on; an admin's bearer
// token may always create users and choose their role.
func (s *Server) handleCreateUser() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		isAdmin := false
		// The audit log's actor: the admin, or the sign-up itself.
		actor := admin.Actor{From: clientAddr(r, s.proxies), Signup: true}
		if tok := bearer(r); tok != "" {
			c, err := s.verify(tok)
			if err != nil {
				rejectToken(w)
				return
			}
			isAdmin = c.Role == auth.RoleAdmin
			if isAdmin {
				actor = admin.Actor{Name: c.Subject, From: actor.From}
			}
		}
		if !isAdmin && !s.cfg.Signup {
			errBody(w, http.StatusForbidden, "Sign-up is disabled")
			return
		}
		req, err := decode[signupRequest](r)
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		if req.Role != "" && req.Role != auth.RoleUser && !isAdmin {
			errBody(w, http.StatusForbidden, "Only an admin can choose the role")
			return
		}
		// Sign-ups are limited per address (issue 10, item 13): each costs
		// a bcrypt hash and makes an account. Admins are not limited.
		signupKey := ""
		if !isAdmin {
			signupKey = addrKey(clientAddr(r, s.proxies))
			if ok, wait := s.signups.take(signupKey); !ok {
				w.Header().Set("Retry-After", retryAfter(wait))
				errBody(w, http.StatusTooManyRequests, "Too many sign-ups from this address; try again later")
				return
			}
		}
		var res admin.AddUserResult
		var addErr error // not err: do's result would overwrite it
		if err := s.hashes.do(r.Context(), func() {
			res, addErr = s.admin.AddUser(admin.WithActor(r.Context(), actor), admin.AddUserRequest{Name: req.Username, Password: req.Password, Role: req.Role})
		}); err != nil {
			s.hashErr(w, r, err) // overload refunds nothing
			return
		}
		if signupKey != "" && addErr != nil && !errors.Is(addErr, store.ErrUserExists) {
			// Refused before hashing (bad name, password too short, …):
			// it cost nothing, so it counts nothing.
			s.signups.refund(signupKey)
		}
		if addErr != nil {
			writeError(w, r, s.log, addErr)
			return
		}
		encode(w, http.StatusCreated, res.User)
	})
}

// hashErr answers a request whose bcrypt work failed or could not run.
func (s *Server) hashErr(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, errBusy) {
		w.Header().Set("Retry-After", "1")
		errBody(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	if r.Context().Err() != nil {
		return // the client left
	}
	writeError(w, r, s.log, err)
}
