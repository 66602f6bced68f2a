package admin

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/chatctl/chatctl/auth"
	"github.com/chatctl/chatctl/configs"
	"github.com/chatctl/chatctl/store"
)

type clock struct{ t time.Time }

func (c *clock) Now() time.Time { return c.t }

// newService returns a Service on a temporary store with a fixed clock and
// cheap bcrypt.
func newService(tb testing.TB, mutate func(*configs.Config)) (*Service, *clock) {
	tb.Helper()
	cfg := configs.Default()
	cfg.DB = filepath.Join(tb.TempDir(), "c.db")
	cfg.Password.BcryptCost = bcrypt.MinCost
	if mutate != nil {
		mutate(cfg)
	}
	c := &clock{time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}
	db, err := store.Open(cfg.DB, store.Options{Now: c.Now, NoSync: true})
	if err != nil {
		tb.Fatal(err)
	}
	s, err := New(db, cfg, c.Now)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := db.Check(); err != nil {
			tb.Error(err)
		}
		s.Close()
	})
	return s, c
}

var ctx = context.Background()

func mustAdd(tb testing.TB, s *Service, name, role string) {
	tb.Helper()
	if _, err := s.AddUser(ctx, AddUserRequest{Name: name, Role: role, Password: "password123"}); err != nil {
		tb.Fatal(err)
	}
}

// Ensure AddUser validates its input and IgnoreExists is idempotent.
func TestAddUser(t *testing.T) {
	s, _ := newService(t, nil)
	res, err := s.AddUser(ctx, AddUserRequest{Name: "Alice", Password: "password123"})
	if err != nil || !res.Created || res.User.Username != "alice" || res.User.Role != "user" {
		t.Fatalf("AddUser = %+v, %v", res, err)
	}
	tests := []struct {
		name string
		req  AddUserRequest
		want error
	}{
		{"ErrUserExists", AddUserRequest{Name: "ALICE", Password: "password123"}, store.ErrUserExists},
		{"ErrBadUsername", AddUserRequest{Name: "-x", Password: "password123"}, auth.ErrBadUsername},
		{"ErrBadRole", AddUserRequest{Name: "bob", Role: "root", Password: "password123"}, auth.ErrBadRole},
		{"ErrPasswordTooShort", AddUserRequest{Name: "bob", Password: "short"}, auth.ErrPasswordTooShort},
		{"ErrPasswordTooLong", AddUserRequest{Name: "bob", Password: strings.Repeat("x", 73)}, auth.ErrPasswordTooLong},
		{"ErrBadHash", AddUserRequest{Name: "bob", Hash: "$2b$nope"}, auth.ErrBadHash},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.AddUser(ctx, tc.req); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	res, err = s.AddUser(ctx, AddUserRequest{Name: "alice", Password: "other-password", IgnoreExists: true})
	if err != nil || res.Created {
		t.Fatalf("IgnoreExists = %+v, %v", res, err)
	}
	if _, err := s.Authenticate(ctx, "alice", "password123"); err != nil {
		t.Fatalf("IgnoreExists changed the password: %v", err)
	}
}

// Ensure logins: wrong password, unknown and disabled users fail alike;
// imported hashes verify and are rehashed at the configured cost.
func TestAuthenticate(t *testing.T) {
	s, _ := newService(t, nil)
	mustAdd(t, s, "alice", "user")
	mustAdd(t, s, "dave", "user")
	s.SetDisabled(ctx, "dave", true)
	if u, err := s.Authenticate(ctx, "ALICE", "password123"); err != nil || u.Name != "alice" {
		t.Fatalf("login = %+v, %v", u, err)
	}
	for _, tc := range []struct{ name, user, pw string }{
		{"WrongPassword", "alice", "password124"},
		{"UnknownUser", "zed", "password123"},
		{"BadName", "-", "password123"},
		{"Disabled", "dave", "password123"},
		{"Overlong", "alice", "password123" + strings.Repeat("x", 70)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.Authenticate(ctx, tc.user, tc.pw); !errors.Is(err, ErrInvalidCredentials) {
				t.Fatalf("err = %v, want ErrInvalidCredentials", err)
			}
		})
	}
	t.Run("ImportedHashRehashed", func(t *testing.T) {
		h, _ := bcrypt.GenerateFromPassword([]byte("passlib-pw"), bcrypt.MinCost+1)
		imported := "$2y$" + string(h[4:])
		if _, err := s.AddUser(ctx, AddUserRequest{Name: "carol", Hash: imported}); err != nil {
			t.Fatal(err)
		}
		before, _ := s.db.User("carol")
		if _, err := s.Authenticate(ctx, "carol", "passlib-pw"); err != nil {
			t.Fatalf("imported $2y$ hash does not verify: %v", err)
		}
		after, _ := s.db.User("carol")
		if cost, _ := bcrypt.Cost([]byte(after.Hash)); cost != bcrypt.MinCost {
			t.Fatalf("hash cost %d after login, want %d", cost, bcrypt.MinCost)
		}
		if after.TokenVersion != before.TokenVersion {
			t.Fatal("rehash revoked the user's tokens")
		}
		if _, err := s.Authenticate(ctx, "carol", "passlib-pw"); err != nil {
			t.Fatalf("rehashed password does not verify: %v", err)
		}
	})
}

// Ensure passwd, disable and remove revoke tokens, and token issue and
// inspect report the state.
func TestTokensFollowUserState(t *testing.T) {
	s, _ := newService(t, nil)
	mustAdd(t, s, "alice", "admin")
	tok, err := s.IssueToken(ctx, "Alice", 0)
	if err != nil || tok.ExpiresIn != 1800 || tok.JTI == "" || tok.TokenType != "bearer" {
		t.Fatalf("IssueToken = %+v, %v", tok, err)
	}
	in, err := s.InspectToken(ctx, tok.AccessToken)
	if err != nil || !in.Valid || in.Claims["sub"] != "alice" || in.Header["alg"] != "HS256" {
		t.Fatalf("inspect = %+v, %v", in, err)
	}
	steps := []struct {
		name   string
		change func() error
		reason auth.Reason
	}{
		{"Passwd", func() error { _, err := s.SetPassword(ctx, "alice", "new-password"); return err }, auth.ReasonRevoked},
		{"Disable", func() error { _, err := s.SetDisabled(ctx, "alice", true); return err }, auth.ReasonUserDisabled},
		{"Remove", func() error { return s.RemoveUser(ctx, "alice") }, auth.ReasonUserRemoved},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if _, err := s.AddUser(ctx, AddUserRequest{Name: "alice", Password: "password123", IgnoreExists: true}); err != nil {
				t.Fatal(err)
			}
			s.SetDisabled(ctx, "alice", false)
			tok, err := s.IssueToken(ctx, "alice", time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if err := st.change(); err != nil {
				t.Fatal(err)
			}
			in, err := s.InspectToken(ctx, tok.AccessToken)
			if err != nil || in.Valid || in.Reason != string(st.reason) {
				t.Fatalf("after %s: %+v, %v", st.name, in, err)
			}
		})
	}
	if _, err := s.IssueToken(ctx, "zed", 0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("token for unknown user: %v", err)
	}
	mustAdd(t, s, "dave", "user")
	s.SetDisabled(ctx, "dave", true)
	if _, err := s.IssueToken(ctx, "dave", 0); !errors.Is(err, ErrUserDisabled) {
		t.Fatalf("token for disabled user: %v", err)
	}
	// Re-enabling does not revive tokens issued before the disable.
	in, _ = s.InspectToken(ctx, "not.a.token")
	if in.Valid || in.Reason != string(auth.ReasonMalformed) {
		t.Fatalf("junk: %+v", in)
	}
}

// Ensure a rotated-out key verifies its tokens until they expire, then is
// dropped, and new tokens use the new key.
func TestKeyRotation(t *testing.T) {
	s, c := newService(t, nil)
	mustAdd(t, s, "alice", "user")
	old, _ := s.IssueToken(ctx, "alice", 2*time.Hour)
	keys, _ := s.Keys(ctx)
	if len(keys) != 1 || !keys[0].Active || keys[0].Source != "store" {
		t.Fatalf("keys = %+v", keys)
	}
	c.t = c.t.Add(time.Minute)
	nk, err := s.RotateKey(ctx)
	if err != nil || nk.Kid == keys[0].Kid {
		t.Fatalf("rotate = %+v, %v", nk, err)
	}
	fresh, _ := s.IssueToken(ctx, "alice", 0)
	h, _, _ := auth.Decode(fresh.AccessToken)
	if h["kid"] != nk.Kid {
		t.Fatalf("new token signed by %v, want %s", h["kid"], nk.Kid)
	}
	if in, _ := s.InspectToken(ctx, old.AccessToken); !in.Valid {
		t.Fatalf("old token rejected right after rotation: %+v", in)
	}
	keys, _ = s.Keys(ctx)
	if len(keys) != 2 || keys[1].Expires.Before(old.ExpiresAt) {
		t.Fatalf("retired key must outlive its tokens: %+v (token expires %v)", keys, old.ExpiresAt)
	}
	c.t = old.ExpiresAt.Add(10 * time.Minute)
	if in, _ := s.InspectToken(ctx, old.AccessToken); in.Valid || in.Reason != string(auth.ReasonUnknownKey) {
		t.Fatalf("token of a dropped key: %+v", in)
	}
	if keys, _ = s.Keys(ctx); len(keys) != 1 {
		t.Fatalf("expired key still listed: %+v", keys)
	}
}

// Ensure CHATCTL_JWT_SECRET replaces the store's keys, cannot be rotated,
// and two services with the same secret accept each other's tokens.
func TestExternalSecret(t *testing.T) {
	secret := strings.Repeat("0123456789abcdef", 3)
	a, _ := newService(t, func(c *configs.Config) { c.JWTSecret = secret })
	b, _ := newService(t, func(c *configs.Config) { c.JWTSecret = secret })
	mustAdd(t, a, "alice", "user")
	mustAdd(t, b, "alice", "user")
	tok, err := a.IssueToken(ctx, "alice", 0)
	if err != nil {
		t.Fatal(err)
	}
	// b's alice has another token version, so the signature checks out
	// but the token is revoked there: proof the key was accepted.
	if _, err := b.Tokens().VerifySignature(tok.AccessToken); err != nil {
		t.Fatalf("shared secret not accepted: %v", err)
	}
	if _, err := a.RotateKey(ctx); !errors.Is(err, ErrExternalKey) {
		t.Fatalf("rotate with external secret: %v", err)
	}
	keys, _ := a.Keys(ctx)
	if len(keys) != 1 || keys[0].Source != configs.SecretEnv || strings.Contains(keys[0].Kid, secret[:8]) {
		t.Fatalf("keys = %+v", keys)
	}
	if _, err := New(a.db, &configs.Config{JWTSecret: "short"}, nil); err == nil {
		t.Fatal("short secret accepted")
	}
}

// BenchmarkVerify measures a full verification: signature, claims and the
// user's current state read through the store.
func BenchmarkVerify(b *testing.B) {
	s, c := newService(b, nil)
	c.t = time.Now()
	mustAdd(b, s, "alice", "user")
	tok, _ := s.IssueToken(ctx, "alice", time.Hour)
	tk := s.Tokens()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tk.Verify(tok.AccessToken); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIssueToken measures minting through the service, key lookup included.
func BenchmarkIssueToken(b *testing.B) {
	s, _ := newService(b, nil)
	mustAdd(b, s, "alice", "user")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.IssueToken(ctx, "alice", time.Hour); err != nil {
			b.Fatal(err)
		}
	}
}
