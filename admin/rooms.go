package admin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/chatctl/chatctl/access"
	"github.com/chatctl/chatctl/auth"
	"github.com/chatctl/chatctl/store"
)

// Access rules and private rooms (SPEC §8). The Service validates and
// stores them; the server keeps the rules in memory (chat.Hub) and is
// told of every change through OnAccessChange, whichever path made it
// (the CLI over the socket, /admin, a config reload). A CLI on a shared
// PostgreSQL store reaches running servers through the change feed.

// Audit actions of this file.
const (
	ActionAccessSet   = "access.set"
	ActionAccessReset = "access.reset"
	ActionRoomCreate  = "room.create"
	ActionRoomAdd     = "room.add"
	ActionRoomKick    = "room.kick"
)

// AccessRule is one access rule: User ("*" for everyone) gets Permission
// (read-write, read-only or deny) on the rooms Pattern names (a room
// name, or a prefix ending in "*").
type AccessRule struct {
	User       string `json:"user"`
	Pattern    string `json:"pattern"`
	Permission string `json:"permission"`
}

// ResetAccessRequest names the rules ResetAccess removes: User's rule for
// Pattern, or all of User's when Pattern is empty.
type ResetAccessRequest struct {
	User    string `json:"user"`
	Pattern string `json:"pattern,omitempty"`
}

// ResetAccessResult says how many rules ResetAccess removed.
type ResetAccessResult struct {
	User    string `json:"user"`
	Pattern string `json:"pattern,omitempty"`
	Removed int    `json:"removed"`
}

// CreateRoomRequest creates a private room with its first members.
type CreateRoomRequest struct {
	Name    string   `json:"name"`
	Private bool     `json:"private"`
	Members []string `json:"members,omitempty"`
}

// RoomMembers is a private room (or a DM) and who may read it.
type RoomMembers struct {
	Room    string   `json:"room"`
	Private bool     `json:"private"`
	Members []string `json:"members"`
}

// OnAccessChange sets fn to be called after every change of access rules
// or private-room members this Service makes. The server reloads its
// rules there (chat.Hub.RecheckAccess).
func (s *Service) OnAccessChange(fn func()) { s.onAccess.Store(&fn) }

// accessChanged calls the OnAccessChange hook.
func (s *Service) accessChanged() {
	if fn := s.onAccess.Load(); fn != nil {
		(*fn)()
	}
}

// ruleUser normalises the user of a rule: "*" or an existing user.
func (s *Service) ruleUser(name string) (string, error) {
	if name == access.Everyone {
		return name, nil
	}
	return s.existingUser(name)
}

// existingUser normalises name and checks that the user exists.
func (s *Service) existingUser(name string) (string, error) {
	n, err := auth.NormalizeName(name)
	if err != nil {
		return "", err
	}
	if _, err := s.db.User(n); err != nil {
		return "", err
	}
	return n, nil
}

// badRequest wraps err as ErrBadRequest, keeping its message.
func badRequest(err error) error { return fmt.Errorf("%w: %v", ErrBadRequest, err) }

// AccessRules lists every access rule, by user then pattern.
func (s *Service) AccessRules(context.Context) ([]AccessRule, error) {
	rs, err := s.db.AccessRules()
	out := make([]AccessRule, len(rs))
	for i, r := range rs {
		out[i] = AccessRule{User: r.User, Pattern: r.Pattern, Permission: r.Perm}
	}
	return out, err
}

// SetAccess adds a rule, or replaces the rule of the same user and
// pattern. A rule for an unknown user is store.ErrNotFound; a bad pattern
// or permission ErrBadRequest.
func (s *Service) SetAccess(ctx context.Context, r AccessRule) (out AccessRule, err error) {
	defer func() {
		s.record(ctx, ActionAccessSet, auditText(r.User+" "+r.Pattern, 100), err, auditText(r.Permission, 20))
	}()
	return s.setAccess(r)
}

func (s *Service) setAccess(r AccessRule) (AccessRule, error) {
	user, err := s.ruleUser(r.User)
	if err != nil {
		return AccessRule{}, err
	}
	if err := access.CheckPattern(r.Pattern); err != nil {
		return AccessRule{}, badRequest(err)
	}
	p, err := access.ParsePerm(r.Permission)
	if err != nil {
		return AccessRule{}, badRequest(err)
	}
	out := AccessRule{User: user, Pattern: r.Pattern, Permission: string(p)}
	if err := s.db.SetAccessRule(store.AccessRule{User: user, Pattern: r.Pattern, Perm: string(p)}); err != nil {
		return AccessRule{}, err
	}
	s.accessChanged()
	return out, nil
}

// ResetAccess removes the rules of a user ("*" included), or the one for
// a pattern. Removing nothing is no error (Removed is 0); an unknown
// user, unless it has rules left behind, is store.ErrNotFound.
func (s *Service) ResetAccess(ctx context.Context, req ResetAccessRequest) (res ResetAccessResult, err error) {
	defer func() {
		s.record(ctx, ActionAccessReset, auditText(strings.TrimSpace(req.User+" "+req.Pattern), 100), err, fmt.Sprintf("%d removed", res.Removed))
	}()
	user := strings.ToLower(req.User)
	if req.Pattern != "" {
		if err := access.CheckPattern(req.Pattern); err != nil {
			return res, badRequest(err)
		}
	}
	if user != access.Everyone {
		if user, err = auth.NormalizeName(req.User); err != nil {
			return res, err
		}
	}
	n, err := s.db.ResetAccess(user, req.Pattern)
	if err != nil {
		return res, err
	}
	if n == 0 && user != access.Everyone {
		if _, err := s.db.User(user); err != nil {
			return res, err
		}
	}
	if n > 0 {
		s.accessChanged()
	}
	return ResetAccessResult{User: user, Pattern: req.Pattern, Removed: n}, nil
}

// CreateRoom creates a private room with members (each an existing
// user). Public rooms need no creating: the first join creates them. An
// existing private room is store.ErrRoomExists.
func (s *Service) CreateRoom(ctx context.Context, req CreateRoomRequest) (out RoomMembers, err error) {
	defer func() {
		s.record(ctx, ActionRoomCreate, auditText(req.Name, 64), err, auditText(strings.Join(req.Members, " "), 200))
	}()
	if !access.ValidRoom(req.Name) {
		return out, fmt.Errorf("%w: room name must be 1..64 of [a-z0-9._-], not . or ..", ErrBadRequest)
	}
	if !req.Private {
		return out, fmt.Errorf("%w: public rooms are created by their first join; create private rooms with private true (--private)", ErrBadRequest)
	}
	members := make([]string, 0, len(req.Members))
	for _, m := range req.Members {
		n, err := s.existingUser(m)
		if err != nil {
			return out, err
		}
		members = append(members, n)
	}
	if err := s.db.CreatePrivateRoom(req.Name, members); err != nil {
		return out, err
	}
	s.accessChanged()
	return s.RoomMembers(ctx, req.Name)
}

// RoomMembers returns who may read a private room or a DM. A public room
// has no member list (whoever the rules let in may join it): it is
// store.ErrNotFound, as is a room that does not exist.
func (s *Service) RoomMembers(_ context.Context, name string) (RoomMembers, error) {
	if access.IsDM(name) {
		canon, a, b, err := access.DM("", name)
		if err != nil || !strings.Contains(name, "+") {
			return RoomMembers{}, fmt.Errorf("%w: name a direct message as @USER1+USER2", ErrBadRequest)
		}
		return RoomMembers{Room: canon, Private: true, Members: []string{a, b}}, nil
	}
	ps, err := s.db.PrivateRooms()
	if err != nil {
		return RoomMembers{}, err
	}
	for _, p := range ps {
		if p.Name == name {
			return RoomMembers{Room: p.Name, Private: true, Members: p.Members}, nil
		}
	}
	return RoomMembers{}, fmt.Errorf("private room %s: %w (public rooms have no member list)", name, store.ErrNotFound)
}

// AddMember adds an existing user to a private room.
func (s *Service) AddMember(ctx context.Context, room, user string) (RoomMembers, error) {
	return s.setMember(ctx, ActionRoomAdd, room, user, true)
}

// KickMember removes a user from a private room; their live connections
// leave it at once (a left frame with reason forbidden).
func (s *Service) KickMember(ctx context.Context, room, user string) (RoomMembers, error) {
	return s.setMember(ctx, ActionRoomKick, room, user, false)
}

func (s *Service) setMember(ctx context.Context, action, room, user string, in bool) (out RoomMembers, err error) {
	defer func() { s.record(ctx, action, auditText(room, 64), err, auditText(user, 64)) }()
	var n string
	if in {
		n, err = s.existingUser(user)
	} else {
		n, err = auth.NormalizeName(user) // a removed user can still be kicked
	}
	if err != nil {
		return out, err
	}
	if err := s.db.SetMember(room, n, in); err != nil {
		return out, err
	}
	s.accessChanged()
	return s.RoomMembers(ctx, room)
}

// forgetAccess removes a removed user's access rules and private-room
// memberships, so that a new user of the same name starts with none.
func (s *Service) forgetAccess(user string) error {
	n, err := s.db.ResetAccess(user, "")
	if err != nil {
		return fmt.Errorf("user %s removed; its access rules: %w", user, err)
	}
	ps, err := s.db.PrivateRooms()
	if err != nil {
		return fmt.Errorf("user %s removed; its private rooms: %w", user, err)
	}
	for _, p := range ps {
		if slices.Contains(p.Members, user) {
			if err := s.db.SetMember(p.Name, user, false); err != nil && !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("user %s removed; leaving private room %s: %w", user, p.Name, err)
			}
			n++
		}
	}
	if n > 0 {
		s.accessChanged()
	}
	return nil
}
