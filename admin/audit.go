package admin

import (
	"context"
	"errors"
	"fmt"
	"os/user"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/chatctl/chatctl/auth"
	"github.com/chatctl/chatctl/store"
)

// AuditEntry is one record of the audit log (see store.AuditEntry).
type AuditEntry = store.AuditEntry

// AuditQuery selects audit entries (see store.AuditQuery).
type AuditQuery = store.AuditQuery

// Audit actions. Admin actions are recorded by the Service whichever way
// they came (the CLI on the store, the admin socket, the /admin API); the
// auth events by Login and Refresh.
const (
	ActionUserAdd      = "user.add"
	ActionUserSignup   = "user.signup" // POST /users with signup on
	ActionUserRemove   = "user.remove"
	ActionUserPasswd   = "user.passwd"
	ActionUserRole     = "user.role"
	ActionUserDisable  = "user.disable"
	ActionUserEnable   = "user.enable"
	ActionUserUnlock   = "user.unlock"
	ActionTokenIssue   = "token.issue"
	ActionTokenRevoke  = "token.revoke"
	ActionKeyRotate    = "key.rotate"
	ActionKeyRetire    = "key.retire"
	ActionRoomDelete   = "room.delete"
	ActionStoreBackup  = "store.backup"
	ActionLoginOK      = "login.ok"
	ActionLoginFailed  = "login.failed"
	ActionRefreshReuse = "refresh.reused"
)

// Where an action came from, besides a client address.
const (
	FromLocal  = "local"  // the CLI on the store file
	FromSocket = "socket" // the CLI through the running server's socket
)

// Bounds of audit listings.
const (
	DefaultAuditLimit = 100
	MaxAuditLimit     = 10000
)

// Actor is who asks for an admin action and from where; the Service
// records it with the action. Put it in the context with WithActor.
type Actor struct {
	// Name is an operating-system user (CLI), or the admin's username
	// (HTTP API).
	Name string
	// From is a client address, FromSocket or FromLocal.
	From string
	// Signup marks AddUser as a self-service sign-up (POST /users).
	Signup bool
}

type actorKey struct{}

// WithActor returns ctx carrying a, for the Service to record.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// actorOf returns the Actor of ctx; without one, the operating-system
// user of this process, working on the store directly (FromLocal).
func actorOf(ctx context.Context) Actor {
	if a, ok := ctx.Value(actorKey{}).(Actor); ok {
		return a
	}
	return Actor{Name: localUser(), From: FromLocal}
}

var localUser = sync.OnceValue(func() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "uid " + strconv.Itoa(int(euid()))
})

// OSUser names the operating-system user uid for the audit log: its login
// name, else "uid N"; "unknown" when the system cannot tell (known false).
func OSUser(uid uint32, known bool) string {
	if !known {
		return "unknown"
	}
	id := strconv.FormatUint(uint64(uid), 10)
	if u, err := user.LookupId(id); err == nil && u.Username != "" {
		return u.Username
	}
	return "uid " + id
}

// auditText makes s safe to keep and show: control and invalid bytes
// escaped as Go does, cut to at most n bytes of the original.
func auditText(s string, n int) string {
	cut := false
	if len(s) > n {
		s, cut = s[:n], true
		for !utf8.ValidString(s) && len(s) > 0 && n-len(s) < utf8.UTFMax {
			s = s[:len(s)-1]
		}
	}
	q := strconv.Quote(s)
	q = q[1 : len(q)-1]
	q = strings.ReplaceAll(q, `\"`, `"`)
	if cut {
		q += "…"
	}
	return q
}

// auditName is how a username given by a caller is recorded: normalised
// when valid; otherwise escaped, cut to 64 bytes and quoted, so that the
// log shows it was not a valid name (and holds no more of it than that).
func auditName(raw string) string {
	if n, err := auth.NormalizeName(raw); err == nil {
		return n
	}
	return `"` + auditText(raw, 64) + `"`
}

// auditErr is the detail of a failed action: the error, escaped and cut.
func auditErr(err error) string { return auditText(err.Error(), 200) }

// record writes an admin action by ctx's actor on target, with err's
// outcome. It writes at once (store.AppendAudit): an admin action is rare
// and its caller waits anyway. A failed write is counted as dropped
// (chatctl_audit_dropped_total) and does not fail the action, which has
// already happened.
func (s *Service) record(ctx context.Context, action, target string, err error, detail string) {
	a := actorOf(ctx)
	if action == ActionUserAdd && a.Signup {
		action, a.Name = ActionUserSignup, target
	}
	e := AuditEntry{Time: s.now().UTC(), Action: action, Actor: a.Name, From: a.From, Target: target, Outcome: store.AuditOK, Detail: detail}
	if err != nil {
		e.Outcome, e.Detail = store.AuditFailed, auditErr(err)
	}
	s.db.AppendAudit(e)
}

// event queues an auth event (a login, a reused refresh token) without
// waiting for the store: logins must not slow down for the audit log.
func (s *Service) event(action, actor, from, target string, ok bool, detail string) {
	e := AuditEntry{Time: s.now().UTC(), Action: action, Actor: actor, From: from, Target: target, Outcome: store.AuditOK, Detail: detail}
	if !ok {
		e.Outcome = store.AuditFailed
	}
	s.db.RecordAudit(e)
}

// Audit implements Admin. A Limit of 0 means DefaultAuditLimit; more
// than MaxAuditLimit, or less than 0, is ErrBadRequest.
func (s *Service) Audit(_ context.Context, q AuditQuery) ([]AuditEntry, error) {
	switch {
	case q.Limit < 0 || q.Limit > MaxAuditLimit:
		return nil, fmt.Errorf("%w: limit must be between 1 and %d, got %d", ErrBadRequest, MaxAuditLimit, q.Limit)
	case q.Limit == 0:
		q.Limit = DefaultAuditLimit
	}
	if q.User != "" {
		q.User = auditName(q.User)
	}
	out, err := s.db.Audit(q)
	if out == nil {
		out = []AuditEntry{}
	}
	return out, err
}

// ParseSince reads a --since value: a duration back from now ("1h",
// "30m") or an RFC 3339 time.
func ParseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("%q: want a positive duration", s)
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q: want a duration such as 1h or a time such as 2026-01-02T15:04:05Z", auditText(s, 64))
}

// loginReason tells why a login failed, for the audit log only (the
// client always gets the same answer).
type loginReason string

const (
	reasonBadName  loginReason = "invalid username"
	reasonUnknown  loginReason = "unknown user"
	reasonPassword loginReason = "wrong password"
	reasonDisabled loginReason = "user disabled"
)

// errLogin is ErrInvalidCredentials with the reason attached.
type errLogin struct{ reason loginReason }

func (e errLogin) Error() string { return ErrInvalidCredentials.Error() }
func (e errLogin) Is(target error) bool {
	return target == ErrInvalidCredentials
}

// reasonOf returns the reason of a failed login.
func reasonOf(err error) string {
	var e errLogin
	if errors.As(err, &e) {
		return string(e.reason)
	}
	return ""
}
