package admin

import (
	"errors"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chatctl/chatctl/auth"
	"github.com/chatctl/chatctl/configs"
	"github.com/chatctl/chatctl/store"
)

// hooked returns a Service with alice and bob, whose OnRevoke records
// every call.
func hooked(t *testing.T, mutate func(*configs.Config)) (*Service, *[]Revocation) {
	t.Helper()
	s, _ := newService(t, mutate)
	mustAdd(t, s, "alice", "user")
	mustAdd(t, s, "bob", "user")
	var got []Revocation
	s.OnRevoke(func(r Revocation) { got = append(got, r) })
	return s, &got
}

// revokingMethods and quietMethods classify every method of Admin, plus
// the Service's own Login and Refresh: TestRevocationHookCoversAdmin fails
// when a method is added to Admin without being put in one of them, so a
// new revoking method cannot forget the hook unnoticed.
var (
	revokingMethods = []string{"SetPassword", "SetDisabled", "RemoveUser", "Revoke", "RetireKey", "Refresh"}
	quietMethods    = []string{"AddUser", "Users", "User", "SetRole", "IssueToken", "InspectToken", "Sessions",
		"Rooms", "DeleteRoom", "AccessRules", "SetAccess", "ResetAccess", "CreateRoom", "RoomMembers",
		"AddMember", "KickMember", "Keys", "RotateKey", "Close", "Login", "UnlockUser", "Backup", "Audit"}
)

// Ensure every method of Admin is classified as revoking or not.
func TestRevocationHookCoversAdmin(t *testing.T) {
	known := append(slices.Clone(revokingMethods), quietMethods...)
	typ := reflect.TypeFor[Admin]()
	var missing []string
	for i := range typ.NumMethod() {
		if m := typ.Method(i).Name; !slices.Contains(known, m) {
			missing = append(missing, m)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Fatalf("Admin methods %v are in neither revokingMethods nor quietMethods: does each call s.revoked when it ends tokens? Add a case to TestRevocationHook", missing)
	}
}

// Ensure every revoking method calls OnRevoke exactly once, after its
// change, naming what it ended; a failed call or the non-revoking
// variants call nothing.
func TestRevocationHook(t *testing.T) {
	tests := []struct {
		method string // one of revokingMethods
		name   string
		call   func(t *testing.T, s *Service) error
		want   []Revocation
	}{
		{"SetPassword", "OK", func(t *testing.T, s *Service) error {
			_, err := s.SetPassword(ctx, "Alice", "password456")
			return err
		}, []Revocation{{User: "alice"}}},
		{"SetPassword", "ErrNotFound", func(t *testing.T, s *Service) error {
			_, err := s.SetPassword(ctx, "nobody", "password456")
			return ignore(err, store.ErrNotFound)
		}, nil},
		{"SetDisabled", "Disable", func(t *testing.T, s *Service) error {
			_, err := s.SetDisabled(ctx, "ALICE", true)
			return err
		}, []Revocation{{User: "alice"}}},
		{"SetDisabled", "Enable", func(t *testing.T, s *Service) error {
			_, err := s.SetDisabled(ctx, "alice", false)
			return err
		}, nil},
		{"RemoveUser", "OK", func(t *testing.T, s *Service) error {
			return s.RemoveUser(ctx, "Alice")
		}, []Revocation{{User: "alice"}}},
		{"RemoveUser", "ErrNotFound", func(t *testing.T, s *Service) error {
			return ignore(s.RemoveUser(ctx, "nobody"), store.ErrNotFound)
		}, nil},
		{"Revoke", "User", func(t *testing.T, s *Service) error {
			_, err := s.Revoke(ctx, RevokeRequest{User: "Alice", All: true})
			return err
		}, []Revocation{{User: "alice"}}},
		{"Revoke", "JTI", func(t *testing.T, s *Service) error {
			_, err := s.Revoke(ctx, RevokeRequest{ID: "some-jti"})
			return err
		}, []Revocation{{JTI: "some-jti"}}},
		{"Revoke", "Session", func(t *testing.T, s *Service) error {
			p, err := s.Login(ctx, "alice", "password123", "")
			if err != nil {
				return err
			}
			_, err = s.Revoke(ctx, RevokeRequest{ID: p.SessionID})
			return err
		}, []Revocation{{Session: "$session"}}},
		{"Revoke", "ErrBadRequest", func(t *testing.T, s *Service) error {
			_, err := s.Revoke(ctx, RevokeRequest{ID: strings.Repeat("j", 40000)})
			return ignore(err, ErrBadRequest)
		}, nil},
		{"Revoke", "ErrNotFound", func(t *testing.T, s *Service) error {
			_, err := s.Revoke(ctx, RevokeRequest{ID: store.SessionPrefix + "gone"})
			return ignore(err, store.ErrNotFound)
		}, nil},
		{"Refresh", "Reuse", func(t *testing.T, s *Service) error {
			p, err := s.Login(ctx, "alice", "password123", "")
			if err != nil {
				return err
			}
			if _, err := s.Refresh(ctx, p.RefreshToken, ""); err != nil {
				return err
			}
			_, err = s.Refresh(ctx, p.RefreshToken, "")
			return ignore(err, store.ErrRefreshReused)
		}, []Revocation{{Session: "$session"}}},
		{"RetireKey", "OK", func(t *testing.T, s *Service) error {
			keys, _ := s.Keys(ctx)
			if _, err := s.RotateKey(ctx); err != nil {
				return err
			}
			_, err := s.RetireKey(ctx, keys[0].Kid)
			return err
		}, []Revocation{{Kid: "$kid"}}},
		{"RetireKey", "ErrKeyActive", func(t *testing.T, s *Service) error {
			keys, _ := s.Keys(ctx)
			_, err := s.RetireKey(ctx, keys[0].Kid)
			return ignore(err, ErrKeyActive)
		}, nil},
	}
	covered := map[string]bool{}
	for _, tc := range tests {
		covered[tc.method] = true
		t.Run(tc.method+"/"+tc.name, func(t *testing.T) {
			s, got := hooked(t, nil)
			sessions, _ := s.Sessions(ctx, "alice")
			keys, _ := s.Keys(ctx)
			if err := tc.call(t, s); err != nil {
				t.Fatal(err)
			}
			// Fill in the ids the call created.
			want := slices.Clone(tc.want)
			for i := range want {
				if want[i].Session == "$session" {
					after, _ := s.db.Sessions("alice")
					if len(after) > len(sessions) {
						t.Fatalf("session still live: %+v", after)
					}
					if len(*got) == 1 {
						want[i].Session = (*got)[0].Session // checked below against the deny list
					}
					if !s.Denied(want[i].Session) {
						t.Fatalf("hook named session %q, which is not denied", want[i].Session)
					}
				}
				if want[i].Kid == "$kid" {
					want[i].Kid = keys[0].Kid
				}
			}
			if !reflect.DeepEqual(*got, want) {
				t.Fatalf("OnRevoke calls = %+v, want %+v", *got, want)
			}
		})
	}
	for _, m := range revokingMethods {
		if !covered[m] {
			t.Errorf("revoking method %s has no case", m)
		}
	}
}

// Ensure the methods that end nothing never call the hook.
func TestRevocationHookQuiet(t *testing.T) {
	s, got := hooked(t, nil)
	if _, err := s.AddUser(ctx, AddUserRequest{Name: "carol", Password: "password123"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetRole(ctx, "alice", "admin"); err != nil {
		t.Fatal(err)
	}
	tok, err := s.IssueToken(ctx, "alice", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.InspectToken(ctx, tok.AccessToken); err != nil {
		t.Fatal(err)
	}
	p, err := s.Login(ctx, "alice", "password123", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Refresh(ctx, p.RefreshToken, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RotateKey(ctx); err != nil {
		t.Fatal(err)
	}
	if len(*got) != 0 {
		t.Fatalf("OnRevoke called by non-revoking methods: %+v", *got)
	}
}

func ignore(err, want error) error {
	if errors.Is(err, want) {
		return nil
	}
	if err == nil {
		return errors.New("no error, want " + want.Error())
	}
	return err
}

// Ensure access tokens from a login or a refresh carry the session's id,
// and stop verifying when the session ends (revoked or reused) while the
// user's other sessions' tokens keep working.
func TestSessionTokens(t *testing.T) {
	s, _ := newService(t, nil)
	mustAdd(t, s, "alice", "user")
	p, err := s.Login(ctx, "alice", "password123", "")
	if err != nil {
		t.Fatal(err)
	}
	other, _ := s.Login(ctx, "alice", "password123", "")
	c, err := s.tokens.Verify(p.AccessToken)
	if err != nil || c.Sid != p.SessionID || c.Sid == "" {
		t.Fatalf("login token: %+v, %v (session %s)", c, err, p.SessionID)
	}
	next, err := s.Refresh(ctx, p.RefreshToken, "")
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := s.tokens.Verify(next.AccessToken); c == nil || c.Sid != p.SessionID {
		t.Fatalf("refreshed token: %+v", c)
	}
	if _, err := s.Revoke(ctx, RevokeRequest{ID: p.SessionID}); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{p.AccessToken, next.AccessToken} {
		in, err := s.InspectToken(ctx, tok)
		if err != nil || in.Valid || in.Reason != string(auth.ReasonRevoked) {
			t.Fatalf("token of a revoked session: %+v, %v", in, err)
		}
	}
	if _, err := s.tokens.Verify(other.AccessToken); err != nil {
		t.Fatalf("the other session's token: %v", err)
	}
	issued, _ := s.IssueToken(ctx, "alice", 0)
	if c, err := s.tokens.Verify(issued.AccessToken); err != nil || c.Sid != "" {
		t.Fatalf("token issue: %+v, %v (want no sid)", c, err)
	}
}

// Ensure RetireKey stops a rotated-out key at once (its tokens: unknown
// key), lists it as retired, and refuses the active key, unknown kids and
// an operator secret.
func TestRetireKey(t *testing.T) {
	s, c := newService(t, nil)
	mustAdd(t, s, "alice", "user")
	old, _ := s.IssueToken(ctx, "alice", time.Hour)
	keys, _ := s.Keys(ctx)
	oldKid := keys[0].Kid
	if _, err := s.RetireKey(ctx, oldKid); !errors.Is(err, ErrKeyActive) {
		t.Fatalf("retire the active key: %v", err)
	}
	if code, status := ErrorKind(ErrKeyActive); code != "key_active" || status != 409 {
		t.Fatalf("ErrKeyActive maps to %s %d", code, status)
	}
	if _, err := s.RetireKey(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("retire an unknown key: %v", err)
	}
	if _, err := s.RetireKey(ctx, ""); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("retire without a kid: %v", err)
	}
	long := strings.Repeat("k", 10000)
	if _, err := s.RetireKey(ctx, long); !errors.Is(err, store.ErrNotFound) || strings.Contains(err.Error(), "kkkk") {
		t.Fatalf("retire a 10,000-byte kid: %v", err)
	}
	if _, err := s.RotateKey(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.tokens.Verify(old.AccessToken); err != nil {
		t.Fatalf("a rotated-out key must still verify: %v", err)
	}
	c.t = c.t.Add(time.Minute)
	k, err := s.RetireKey(ctx, oldKid)
	if err != nil || k.State != KeyRetired || k.Active || !k.Expires.Equal(c.t) {
		t.Fatalf("RetireKey = %+v, %v", k, err)
	}
	if _, err := s.tokens.Verify(old.AccessToken); auth.ReasonOf(err) != auth.ReasonUnknownKey {
		t.Fatalf("token of a retired key: %v, want unknown key", err)
	}
	keys, _ = s.Keys(ctx)
	if len(keys) != 2 || keys[0].State != KeyActive || keys[1].State != KeyRetired {
		t.Fatalf("keys = %+v", keys)
	}
	if fresh, _ := s.IssueToken(ctx, "alice", 0); fresh.AccessToken == "" {
		t.Fatal("no token after retiring")
	} else if _, err := s.tokens.Verify(fresh.AccessToken); err != nil {
		t.Fatalf("new token: %v", err)
	}

	ext, _ := newService(t, func(cfg *configs.Config) { cfg.JWTSecret = "0123456789abcdef0123456789abcdef" })
	keys, _ = ext.Keys(ctx)
	if _, err := ext.RetireKey(ctx, keys[0].Kid); !errors.Is(err, ErrExternalKey) {
		t.Fatalf("retire an operator secret: %v", err)
	}
}

// Ensure a login whose password check ran before a revocation committed
// starts no session after it: a passwd or `token revoke --user --all`
// cannot be outrun by a login in flight (its refresh token would otherwise
// outlive the revocation).
func TestLoginRacingRevocation(t *testing.T) {
	tests := []struct {
		name   string
		revoke func(s *Service) error
	}{
		{"Passwd", func(s *Service) error {
			_, err := s.SetPassword(ctx, "alice", "another-password")
			return err
		}},
		{"RevokeAll", func(s *Service) error {
			_, err := s.Revoke(ctx, RevokeRequest{User: "alice", All: true})
			return err
		}},
		{"Disable", func(s *Service) error {
			_, err := s.SetDisabled(ctx, "alice", true)
			return err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newService(t, nil)
			mustAdd(t, s, "alice", "user")
			s.afterAuth = func() {
				if err := tc.revoke(s); err != nil {
					t.Error(err)
				}
			}
			if p, err := s.Login(ctx, "alice", "password123", ""); !errors.Is(err, ErrInvalidCredentials) {
				t.Fatalf("Login racing %s = %+v, %v; want ErrInvalidCredentials", tc.name, p, err)
			}
			if ss, err := s.Sessions(ctx, "alice"); err != nil || len(ss) != 0 {
				t.Fatalf("sessions after the race: %+v, %v", ss, err)
			}
		})
	}
}
