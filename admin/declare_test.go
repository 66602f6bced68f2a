package admin

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/chatctl/chatctl/configs"
	"github.com/chatctl/chatctl/store"
)

const (
	hashA = "$2a$10$HwhPlplaIAZBG9Nhx/z/eOS1Ywhm9yGqwxKVZJw0fkAmfx7UVqgoq"
	hashB = "$2b$10$7EqJtq98hPqEX7fNZaFWoOhi5BWX4Z2H/w2zlqmWpJ6G3oI4wJ7C."
)

// Ensure auth.users and auth.access are applied, are authoritative for
// what they name (a user taken out is disabled, a rule taken out is
// removed, across restarts since the store remembers), and leave alone
// what the CLI made.
func TestApplyDeclared(t *testing.T) {
	s, _ := newService(t, nil)
	mustAdd(t, s, "cli-user", "user")
	if _, err := s.SetAccess(ctx, AccessRule{User: "cli-user", Pattern: "x", Permission: "deny"}); err != nil {
		t.Fatal(err)
	}
	var revoked []Revocation
	s.OnRevoke(func(r Revocation) { revoked = append(revoked, r) })
	changes := 0
	s.OnAccessChange(func() { changes++ })

	secret := filepath.Join(t.TempDir(), "bob.hash")
	if err := os.WriteFile(secret, []byte(hashB+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CAROL_HASH", hashA)
	cfg := configs.Default()
	cfg.Auth.Users = []string{"alice:" + hashA + ":admin", "bob:file:" + secret + ":user", "carol:env:CAROL_HASH:user"}
	cfg.Auth.Access = []string{"*:ops-*:deny", "bob:ops-*:read-only"}
	res, err := s.ApplyDeclared(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Created, []string{"alice", "bob", "carol"}) || res.RulesSet != 2 || changes != 1 {
		t.Fatalf("first apply: %+v, %d access changes", res, changes)
	}
	if u, _ := s.db.User("bob"); u.Hash != hashB || u.Role != "user" {
		t.Fatalf("bob %+v", u)
	}
	// Again: nothing to do.
	if res, err := s.ApplyDeclared(ctx, cfg); err != nil || !res.Empty() {
		t.Fatalf("second apply: %+v, %v", res, err)
	}

	// carol taken out, alice demoted, bob's rule taken out; a fresh
	// Service (a restart) still knows what was declared.
	cfg.Auth.Users = []string{"alice:" + hashA + ":user", "bob:file:" + secret + ":user"}
	cfg.Auth.Access = []string{"*:ops-*:deny"}
	s2, err := New(s.db, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	s2.OnRevoke(func(r Revocation) { revoked = append(revoked, r) })
	res, err = s2.ApplyDeclared(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Disabled, []string{"carol"}) || !slices.Equal(res.Updated, []string{"alice"}) || res.RulesRemoved != 1 {
		t.Fatalf("third apply: %+v", res)
	}
	if u, _ := s.db.User("carol"); !u.Disabled {
		t.Fatal("carol is not disabled")
	}
	if !slices.Contains(revoked, Revocation{User: "carol"}) {
		t.Fatalf("carol's tokens not revoked: %v", revoked)
	}
	rules, _ := s.db.AccessRules()
	want := []store.AccessRule{{User: "*", Pattern: "ops-*", Perm: "deny"}, {User: "cli-user", Pattern: "x", Perm: "deny"}}
	if !slices.Equal(rules, want) {
		t.Fatalf("rules %v, want %v", rules, want)
	}
	if u, _ := s.db.User("cli-user"); u.Disabled {
		t.Fatal("a user the config never named was disabled")
	}

	// Put back in the list: enabled again.
	cfg.Auth.Users = append(cfg.Auth.Users, "carol:env:CAROL_HASH:user")
	if res, err := s2.ApplyDeclared(ctx, cfg); err != nil || !slices.Equal(res.Updated, []string{"carol"}) {
		t.Fatalf("re-declared: %+v, %v", res, err)
	}

	// A rule for an unknown user is an error, as on the CLI.
	cfg.Auth.Access = []string{"nobody:x:deny"}
	if _, err := s2.ApplyDeclared(ctx, cfg); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("rule for an unknown user: %v", err)
	}
}

// Ensure access rules and private rooms are validated and reported.
func TestAccessAndRooms(t *testing.T) {
	s, _ := newService(t, nil)
	mustAdd(t, s, "alice", "user")
	changes := 0
	s.OnAccessChange(func() { changes++ })
	for _, tt := range []struct {
		r    AccessRule
		want error
	}{
		{AccessRule{User: "nobody", Pattern: "x", Permission: "deny"}, store.ErrNotFound},
		{AccessRule{User: "alice", Pattern: "a*b", Permission: "deny"}, ErrBadRequest},
		{AccessRule{User: "alice", Pattern: "x", Permission: "write"}, ErrBadRequest},
		{AccessRule{User: "ALICE", Pattern: "x*", Permission: "read-only"}, nil},
		{AccessRule{User: "*", Pattern: "*", Permission: "deny"}, nil},
	} {
		if _, err := s.SetAccess(ctx, tt.r); !errors.Is(err, tt.want) {
			t.Errorf("SetAccess(%+v) = %v, want %v", tt.r, err, tt.want)
		}
	}
	if changes != 2 {
		t.Errorf("%d access changes, want 2", changes)
	}
	if res, err := s.ResetAccess(ctx, ResetAccessRequest{User: "alice"}); err != nil || res.Removed != 1 {
		t.Errorf("reset: %+v, %v", res, err)
	}
	if _, err := s.CreateRoom(ctx, CreateRoomRequest{Name: "board", Private: true, Members: []string{"Alice"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateRoom(ctx, CreateRoomRequest{Name: "board", Private: true}); !errors.Is(err, store.ErrRoomExists) {
		t.Errorf("create twice: %v", err)
	}
	m, err := s.RoomMembers(ctx, "@bob+alice")
	if err != nil || m.Room != "@alice+bob" || !slices.Equal(m.Members, []string{"alice", "bob"}) {
		t.Errorf("DM members %+v, %v", m, err)
	}
	if m, err := s.KickMember(ctx, "board", "alice"); err != nil || len(m.Members) != 0 {
		t.Errorf("kick: %+v, %v", m, err)
	}
}

// Ensure removing a user drops its rules and memberships: a new user of
// the same name starts with none.
func TestRemoveUserForgetsAccess(t *testing.T) {
	s, _ := newService(t, nil)
	mustAdd(t, s, "alice", "user")
	if _, err := s.SetAccess(ctx, AccessRule{User: "alice", Pattern: "x", Permission: "read-write"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateRoom(ctx, CreateRoomRequest{Name: "board", Private: true, Members: []string{"alice"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if rules, _ := s.AccessRules(ctx); len(rules) != 0 {
		t.Errorf("rules left: %v", rules)
	}
	if m, _ := s.RoomMembers(ctx, "board"); len(m.Members) != 0 {
		t.Errorf("members left: %v", m.Members)
	}
}
