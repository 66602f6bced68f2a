package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/chatctl/chatctl/admin"
	"github.com/chatctl/chatctl/api/chat"
	"github.com/chatctl/chatctl/auth"
)

// liveAdmin is the server's Admin: the Service, plus the hub's view of
// rooms. Revocations do not go through here: the Service reports every one
// to its OnRevoke hook (see NewServer), whichever path it was called by.
type liveAdmin struct {
	*admin.Service
	hub    *chat.Hub
	logins *loginLimits // UnlockUser clears them
}

// Rooms implements admin.Admin with the members online from the hub.
func (a *liveAdmin) Rooms(ctx context.Context) ([]admin.RoomInfo, error) {
	rooms, err := a.Service.Rooms(ctx)
	if err != nil {
		return nil, err
	}
	online := map[string]chat.RoomStats{}
	for _, st := range a.hub.Rooms() {
		online[st.Name] = st
	}
	for i := range rooms {
		st := online[rooms[i].Name]
		rooms[i].Online, rooms[i].Connections = st.Members, st.Conns
	}
	return rooms, nil
}

// DeleteRoom implements admin.Admin and closes the room in the hub.
func (a *liveAdmin) DeleteRoom(ctx context.Context, name string) error {
	if err := a.Service.DeleteRoom(ctx, name); err != nil {
		return err
	}
	a.hub.CloseRoom(name)
	// A private room's members went with it.
	return a.hub.RecheckAccess()
}

// SetRole implements admin.Admin and tells the hub, so that access rules
// apply at once to a user who is no longer an admin (and stop applying to
// a new one).
func (a *liveAdmin) SetRole(ctx context.Context, name, role string) (admin.UserInfo, error) {
	u, err := a.Service.SetRole(ctx, name, role)
	if err == nil {
		a.hub.SetAdmin(u.Username, u.Role == auth.RoleAdmin)
	}
	return u, err
}

// UnlockUser implements admin.Admin: it clears the server's failed-login
// counters for the user.
func (a *liveAdmin) UnlockUser(ctx context.Context, name string) (admin.UnlockResult, error) {
	return a.Service.UnlockUserWith(ctx, name, a.logins.unlock)
}

// Close does nothing: the server owns the store.
func (a *liveAdmin) Close() error { return nil }

// hashing runs a handler that does bcrypt work on the hash pool. The body
// is read first, on the request's own goroutine (bounded by http.max_body
// and the read timeout), so a slow or huge upload never holds a worker.
// do waits for a handler that has started even when the client leaves, so
// it never writes to w after ServeHTTP returned.
func (s *Server) hashing(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				var mbe *http.MaxBytesError
				if errors.As(err, &mbe) {
					writeError(w, r, s.log, errBodyTooLarge)
				} else {
					writeError(w, r, s.log, fmt.Errorf("%w: reading the body: %v", admin.ErrBadRequest, err))
				}
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		if err := s.hashes.do(r.Context(), func() { next.ServeHTTP(w, r) }); err != nil {
			s.hashErr(w, r, err)
		}
	})
}

// adminCall is the shape of every /admin handler: decode In, call, encode
// the result with status.
func adminCall[In, Out any](log *slog.Logger, status int, call func(r *http.Request, in In) (Out, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in In
		if r.ContentLength != 0 && r.Method != http.MethodGet && r.Method != http.MethodDelete {
			var err error
			if in, err = decode[In](r); err != nil {
				writeError(w, r, log, err)
				return
			}
		}
		out, err := call(r, in)
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		encode(w, status, out)
	})
}

type none struct{}

func handleUsers(a admin.Admin, log *slog.Logger) http.Handler {
	return adminCall(log, http.StatusOK, func(r *http.Request, _ none) ([]admin.UserInfo, error) {
		users, err := a.Users(r.Context())
		if users == nil {
			users = []admin.UserInfo{}
		}
		return users, err
	})
}

func handleAddUser(a admin.Admin, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := decode[admin.AddUserRequest](r)
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		res, err := a.AddUser(r.Context(), req)
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		status := http.StatusCreated
		if !res.Created {
			status = http.StatusOK
		}
		encode(w, status, res)
	})
}

func handleUser(a admin.Admin, log *slog.Logger) http.Handler {
	return adminCall(log, http.StatusOK, func(r *http.Request, _ none) (admin.UserInfo, error) {
		return a.User(r.Context(), r.PathValue("name"))
	})
}

func handleRemoveUser(a admin.Admin, log *slog.Logger) http.Handler {
	return adminCall(log, http.StatusOK, func(r *http.Request, _ none) (map[string]any, error) {
		name := r.PathValue("name")
		return map[string]any{"username": name, "removed": true}, a.RemoveUser(r.Context(), name)
	})
}

func handleSetPassword(a admin.Admin, log *slog.Logger) http.Handler {
	return adminCall(log, http.StatusOK, func(r *http.Request, in admin.PasswordRequest) (admin.UserInfo, error) {
		return a.SetPassword(r.Context(), r.PathValue("name"), in.Password)
	})
}

func handleSetRole(a admin.Admin, log *slog.Logger) http.Handler {
	return adminCall(log, http.StatusOK, func(r *http.Request, in admin.RoleRequest) (admin.UserInfo, error) {
		return a.SetRole(r.Context(), r.PathValue("name"), in.Role)
	})
}

func handleSetDisabled(a admin.Admin, log *slog.Logger) http.Handler {
	return adminCall(log, http.StatusOK, func(r *http.Request, in admin.DisabledRequest) (admin.UserInfo, error) {
		return a.SetDisabled(r.Context(), r.PathValue("name"), in.Disabled)
	})
}

func handleIssueToken(a admin.Admin, log *slog.Logger) http.Handler {
	return adminCall(log, http.StatusOK, func(r *http.Request, in admin.IssueRequest) (admin.IssuedToken, error) {
		return a.IssueToken(r.Context(), r.PathValue("name"), time.Duration(in.TTL))
	})
}

func handleSessions(a admin.Admin, log *slog.Logger) http.Handler {
	return adminCall(log, http.StatusOK, func(r *http.Request, _ none) ([]admin.SessionInfo, error) {
		out, err := a.Sessions(r.Context(), r.PathValue("name"))
		if out == nil {
			out = []admin.SessionInfo{}
		}
		return out, err
	})
}

func handleRevoke(a admin.Admin, log *slog.Logger) http.Handler {
	return adminCall(log, http.StatusOK, func(r *http.Request, in admin.RevokeRequest) (admin.RevokeResult, error) {
		return a.Revoke(r.Context(), in)
	})
}

func handleInspect(a admin.Admin, log *slog.Logger) http.Handler {
	return adminCall(log, http.StatusOK, func(r *http.Request, in admin.InspectRequest) (admin.Inspection, error) {
		return a.InspectToken(r.Context(), in.Token)
	})
}

func handleKeys(a admin.Admin, log *slog.Logger) http.Handler {
	return adminCall(log, http.StatusOK, func(r *http.Request, _ none) ([]admin.KeyInfo, error) {
		return a.Keys(r.Context())
	})
}

func handleRotateKey(a admin.Admin, log *slog.Logger) http.Handler {
	return adminCall(log, http.StatusOK, func(r *http.Request, _ none) (admin.KeyInfo, error) {
		return a.RotateKey(r.Context())
	})
}

func handleUnlockUser(a admin.Admin, log *slog.Logger) http.Handler {
	return adminCall(log, http.StatusOK, func(r *http.Request, _ none) (admin.UnlockResult, error) {
		return a.UnlockUser(r.Context(), r.PathValue("name"))
	})
}

func handleRetireKey(a admin.Admin, log *slog.Logger) http.Handler {
	return adminCall(log, http.StatusOK, func(r *http.Request, _ none) (admin.KeyInfo, error) {
		return a.RetireKey(r.Context(), r.PathValue("kid"))
	})
}

func handleRooms(a admin.Admin, log *slog.Logger) http.Handler {
	return adminCall(log, http.StatusOK, func(r *http.Request, _ none) ([]admin.RoomInfo, error) {
		out, err := a.Rooms(r.Context())
		if out == nil {
			out = []admin.RoomInfo{}
		}
		return out, err
	})
}

func handleDeleteRoom(a admin.Admin, log *slog.Logger) http.Handler {
	return adminCall(log, http.StatusOK, func(r *http.Request, _ none) (map[string]any, error) {
		name := r.PathValue("name")
		return map[string]any{"room": name, "deleted": true}, a.DeleteRoom(r.Context(), name)
	})
}

func handleAudit(a admin.Admin, log *slog.Logger) http.Handler {
	return adminCall(log, http.StatusOK, func(r *http.Request, _ none) ([]admin.AuditEntry, error) {
		q, err := admin.ParseAuditParams(r.URL.Query())
		if err != nil {
			return nil, err
		}
		return a.Audit(r.Context(), q)
	})
}

func handleAccessRules(a admin.Admin, log *slog.Logger) http.Handler {
	return adminCall(log, http.StatusOK, func(r *http.Request, _ none) ([]admin.AccessRule, error) {
		out, err := a.AccessRules(r.Context())
		if out == nil {
			out = []admin.AccessRule{}
		}
		return out, err
	})
}

func handleSetAccess(a admin.Admin, log *slog.Logger) http.Handler {
	return adminCall(log, http.StatusOK, func(r *http.Request, in admin.AccessRule) (admin.AccessRule, error) {
		return a.SetAccess(r.Context(), in)
	})
}

func handleResetAccess(a admin.Admin, log *slog.Logger) http.Handler {
	return adminCall(log, http.StatusOK, func(r *http.Request, in admin.ResetAccessRequest) (admin.ResetAccessResult, error) {
		return a.ResetAccess(r.Context(), in)
	})
}

func handleCreateRoom(a admin.Admin, log *slog.Logger) http.Handler {
	return adminCall(log, http.StatusCreated, func(r *http.Request, in admin.CreateRoomRequest) (admin.RoomMembers, error) {
		return a.CreateRoom(r.Context(), in)
	})
}

func handleRoomMembers(a admin.Admin, log *slog.Logger) http.Handler {
	return adminCall(log, http.StatusOK, func(r *http.Request, _ none) (admin.RoomMembers, error) {
		return a.RoomMembers(r.Context(), r.PathValue("name"))
	})
}

func handleAddMember(a admin.Admin, log *slog.Logger) http.Handler {
	return adminCall(log, http.StatusOK, func(r *http.Request, _ none) (admin.RoomMembers, error) {
		return a.AddMember(r.Context(), r.PathValue("name"), r.PathValue("user"))
	})
}

func handleKickMember(a admin.Admin, log *slog.Logger) http.Handler {
	return adminCall(log, http.StatusOK, func(r *http.Request, _ none) (admin.RoomMembers, error) {
		return a.KickMember(r.Context(), r.PathValue("name"), r.PathValue("user"))
	})
}
