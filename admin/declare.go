package admin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/chatctl/chatctl/configs"
	"github.com/chatctl/chatctl/store"
)

// Declarative users and access rules (auth.users, auth.access): applied by
// serve at start and on every reload. The config is authoritative for
// what it names, and for what it named when last applied: the store keeps
// that list (store.Declared), so a user taken out of the file is disabled
// and a rule taken out is removed, across restarts too.

// Kinds of store.Declared.
const (
	declaredUsers  = "auth.users"
	declaredAccess = "auth.access"
)

// ActionConfigApply is the audit action of ApplyDeclared.
const ActionConfigApply = "config.apply"

// DeclaredResult says what ApplyDeclared changed.
type DeclaredResult struct {
	Created, Updated, Disabled []string // users
	RulesSet, RulesRemoved     int
}

// Empty reports whether nothing changed.
func (r DeclaredResult) Empty() bool {
	return len(r.Created)+len(r.Updated)+len(r.Disabled)+r.RulesSet+r.RulesRemoved == 0
}

// String sums r up for logs and the audit log (names only, no hash).
func (r DeclaredResult) String() string {
	return fmt.Sprintf("users created %v, updated %v, disabled %v; rules set %d, removed %d",
		r.Created, r.Updated, r.Disabled, r.RulesSet, r.RulesRemoved)
}

// ApplyDeclared makes the store agree with cfg's auth.users and
// auth.access (see configs/chatctl.yaml). Every declared user is created,
// or updated to the declared hash and role and enabled (a new hash or a
// re-enable revokes nothing it should not: a changed hash ends the user's
// tokens, as `user passwd` does). Users declared last time and no longer
// are disabled, with their tokens. Rules are set; rules declared last time
// and no longer are removed. A rule for a user that does not exist is an
// error, as on the CLI.
func (s *Service) ApplyDeclared(ctx context.Context, cfg *configs.Config) (res DeclaredResult, err error) {
	defer func() {
		if err != nil || !res.Empty() {
			s.record(ctx, ActionConfigApply, "", err, res.String())
		}
	}()
	users, err := cfg.DeclaredUsers()
	if err != nil {
		return res, err
	}
	rules, err := cfg.DeclaredRules()
	if err != nil {
		return res, err
	}
	names := make([]string, 0, len(users))
	for _, d := range users {
		names = append(names, d.Name)
		changed, created, err := s.applyUser(d)
		if err != nil {
			return res, fmt.Errorf("auth.users: %s: %w", d.Name, err)
		}
		switch {
		case created:
			res.Created = append(res.Created, d.Name)
		case changed:
			res.Updated = append(res.Updated, d.Name)
		}
	}
	before, err := s.db.Declared(declaredUsers)
	if err != nil {
		return res, err
	}
	for _, name := range before {
		if slices.Contains(names, name) {
			continue
		}
		u, err := s.db.User(name)
		if errors.Is(err, store.ErrNotFound) || (err == nil && u.Disabled) {
			continue
		}
		if err != nil {
			return res, err
		}
		yes := true
		if _, err := s.db.UpdateUser(name, store.Change{Disabled: &yes, RevokeTokens: true}); err != nil {
			return res, err
		}
		s.revoked(Revocation{User: name})
		res.Disabled = append(res.Disabled, name)
	}
	if err := s.db.SetDeclared(declaredUsers, names); err != nil {
		return res, err
	}

	current, err := s.db.AccessRules()
	if err != nil {
		return res, err
	}
	keys := make([]string, 0, len(rules))
	for _, r := range rules {
		keys = append(keys, r.User+":"+r.Pattern)
		if r.User != "*" {
			if _, err := s.db.User(r.User); err != nil {
				return res, fmt.Errorf("auth.access: %s:%s: user %s: %w", r.User, r.Pattern, r.User, err)
			}
		}
		want := store.AccessRule{User: r.User, Pattern: r.Pattern, Perm: r.Perm}
		if slices.Contains(current, want) {
			continue
		}
		if err := s.db.SetAccessRule(want); err != nil {
			return res, err
		}
		res.RulesSet++
	}
	beforeRules, err := s.db.Declared(declaredAccess)
	if err != nil {
		return res, err
	}
	for _, k := range beforeRules {
		if slices.Contains(keys, k) {
			continue
		}
		user, pattern, _ := strings.Cut(k, ":")
		n, err := s.db.ResetAccess(user, pattern)
		if err != nil {
			return res, err
		}
		res.RulesRemoved += n
	}
	if err := s.db.SetDeclared(declaredAccess, keys); err != nil {
		return res, err
	}
	if res.RulesSet+res.RulesRemoved > 0 {
		s.accessChanged()
	}
	return res, nil
}

// applyUser creates d or brings the stored user to d's hash and role,
// enabled.
func (s *Service) applyUser(d configs.DeclaredUser) (changed, created bool, err error) {
	u, err := s.db.User(d.Name)
	if errors.Is(err, store.ErrNotFound) {
		_, err = s.db.CreateUser(store.User{Name: d.Name, Hash: d.Hash, Role: d.Role})
		return true, true, err
	}
	if err != nil {
		return false, false, err
	}
	var c store.Change
	if u.Hash != d.Hash {
		c.Hash, c.RevokeTokens = &d.Hash, true
	}
	if u.Role != d.Role {
		c.Role = &d.Role
	}
	if u.Disabled {
		no := false
		c.Disabled = &no
	}
	if c.Hash == nil && c.Role == nil && c.Disabled == nil {
		return false, false, nil
	}
	if _, err := s.db.UpdateUser(d.Name, c); err != nil {
		return false, false, err
	}
	if c.RevokeTokens {
		s.revoked(Revocation{User: d.Name})
	}
	return true, false, nil
}
