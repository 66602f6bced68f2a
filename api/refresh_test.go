package api

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chatctl/chatctl/admin"
	"github.com/chatctl/chatctl/configs"
)

// wantInvalidGrant fails unless r is the 400 invalid_grant of /token.
func wantInvalidGrant(t *testing.T, r response) {
	t.Helper()
	if r.status != http.StatusBadRequest {
		t.Fatalf("status = %d, want 400; body %s", r.status, r.body)
	}
	if m := r.json(t); m["error"] != "invalid_grant" || m["detail"] == "" {
		t.Errorf("body = %s, want error invalid_grant with detail", r.body)
	}
	if got := r.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}
}

// Ensure grant_type=refresh_token rotates the refresh token, and that
// presenting a spent one revokes its whole family.
func TestRefreshRotation(t *testing.T) {
	e := newEnv(t, nil)
	e.addUser("alice", "")
	first := e.login("alice")

	r := e.refresh(first.RefreshToken, "")
	if r.status != http.StatusOK {
		t.Fatalf("refresh = %d %s", r.status, r.body)
	}
	if got := r.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}
	var second tokenResponse
	r.into(t, &second)
	if second.RefreshToken == "" || second.RefreshToken == first.RefreshToken {
		t.Fatalf("refresh token not rotated: %q", second.RefreshToken)
	}
	if second.TokenType != "bearer" || second.ExpiresIn != int64(e.cfg.Token.TTL.Seconds()) {
		t.Errorf("refresh answer = %+v", second)
	}
	if me := e.call(http.MethodGet, "/users/me", second.AccessToken, nil); me.status != http.StatusOK {
		t.Fatalf("refreshed access token refused: %d %s", me.status, me.body)
	}

	// The family lives on through a third token...
	r = e.refresh(second.RefreshToken, "")
	if r.status != http.StatusOK {
		t.Fatalf("second refresh = %d %s", r.status, r.body)
	}
	var third tokenResponse
	r.into(t, &third)

	// ...until a spent token comes back: then the newest one dies too.
	reuse := e.refresh(first.RefreshToken, "")
	wantInvalidGrant(t, reuse)
	wantInvalidGrant(t, e.refresh(third.RefreshToken, ""))
	wantInvalidGrant(t, e.refresh(second.RefreshToken, ""))
	if s, err := e.svc.Sessions(bg, "alice"); err != nil || len(s) != 0 {
		t.Errorf("sessions after reuse = %+v, %v", s, err)
	}

	t.Run("OtherSessionsSurvive", func(t *testing.T) {
		e := e.on(t)
		a, b := e.login("alice"), e.login("alice")
		e.refresh(a.RefreshToken, "")
		wantInvalidGrant(t, e.refresh(a.RefreshToken, "")) // reuse kills a's family
		if r := e.refresh(b.RefreshToken, ""); r.status != http.StatusOK {
			t.Fatalf("other session's refresh = %d %s", r.status, r.body)
		}
	})
	t.Run("UnknownToken", func(t *testing.T) {
		e := e.on(t)
		wantInvalidGrant(t, e.refresh("not-a-refresh-token", ""))
	})
	t.Run("AccessTokenIsNoRefreshToken", func(t *testing.T) {
		e := e.on(t)
		wantInvalidGrant(t, e.refresh(e.login("alice").AccessToken, ""))
	})
	t.Run("Expired", func(t *testing.T) {
		e := e.on(t)
		p := e.login("alice")
		e.clock.Add(e.cfg.Token.RefreshTTL + time.Second)
		defer e.clock.Add(-e.cfg.Token.RefreshTTL - time.Second)
		wantInvalidGrant(t, e.refresh(p.RefreshToken, ""))
	})
}

// Ensure passwd, disable, remove and revoke --all end a user's sessions,
// so their refresh tokens stop working.
func TestRefreshRevoked(t *testing.T) {
	e := newEnv(t, nil)
	e.addUser("root", "admin")
	rootTok := e.issue("root")
	for _, tc := range []struct {
		name   string
		revoke func(t *testing.T, name string)
	}{
		{"Passwd", func(t *testing.T, name string) {
			if _, err := e.svc.SetPassword(bg, name, "brand new password"); err != nil {
				t.Fatal(err)
			}
		}},
		{"PasswdByAdminAPI", func(t *testing.T, name string) {
			r := e.call(http.MethodPut, "/admin/users/"+name+"/password", rootTok, admin.PasswordRequest{Password: "brand new password"})
			if r.status != http.StatusOK {
				t.Fatalf("passwd = %d %s", r.status, r.body)
			}
		}},
		{"Disable", func(t *testing.T, name string) {
			if _, err := e.svc.SetDisabled(bg, name, true); err != nil {
				t.Fatal(err)
			}
		}},
		{"Remove", func(t *testing.T, name string) {
			if err := e.svc.RemoveUser(bg, name); err != nil {
				t.Fatal(err)
			}
		}},
		{"RevokeAll", func(t *testing.T, name string) {
			if _, err := e.svc.Revoke(bg, admin.RevokeRequest{User: name, All: true}); err != nil {
				t.Fatal(err)
			}
		}},
		{"RevokeSession", func(t *testing.T, name string) {
			s, err := e.svc.Sessions(bg, name)
			if err != nil || len(s) != 1 {
				t.Fatalf("sessions = %+v, %v", s, err)
			}
			r := e.call(http.MethodPost, "/admin/revoke", rootTok, admin.RevokeRequest{ID: s[0].ID})
			if r.status != http.StatusOK || r.json(t)["kind"] != "session" {
				t.Fatalf("revoke = %d %s", r.status, r.body)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := e.on(t)
			name := strings.ToLower(tc.name)
			e.addUser(name, "")
			p := e.login(name)
			tc.revoke(t, name)
			wantInvalidGrant(t, e.refresh(p.RefreshToken, ""))
		})
	}
}

// Ensure the sessions behind `chatctl token list` show each login with
// its client address, following refreshes.
func TestSessionsList(t *testing.T) {
	e := newEnv(t, func(c *configs.Config) { c.TrustedProxies = []string{"127.0.0.1/32", "::1/128"} })
	e.addUser("root", "admin")
	e.addUser("alice", "")
	rootTok := e.issue("root")

	r := e.postToken(loginForm("alice", testPassword), "203.0.113.7")
	if r.status != http.StatusOK {
		t.Fatalf("login = %d %s", r.status, r.body)
	}
	var p tokenResponse
	r.into(t, &p)

	list := func() []admin.SessionInfo {
		t.Helper()
		r := e.call(http.MethodGet, "/admin/users/alice/sessions", rootTok, nil)
		if r.status != http.StatusOK {
			t.Fatalf("sessions = %d %s", r.status, r.body)
		}
		var out []admin.SessionInfo
		r.into(t, &out)
		return out
	}
	s := list()
	if len(s) != 1 {
		t.Fatalf("sessions = %+v, want one", s)
	}
	if s[0].ClientAddr != "203.0.113.7" || s[0].Username != "alice" || s[0].ID == "" {
		t.Errorf("session = %+v", s[0])
	}
	if !s[0].ExpiresAt.Equal(s[0].CreatedAt.Add(e.cfg.Token.RefreshTTL)) {
		t.Errorf("session expiry %v, want created %v + refresh_ttl", s[0].ExpiresAt, s[0].CreatedAt)
	}

	e.clock.Add(time.Minute)
	if r := e.refresh(p.RefreshToken, "198.51.100.9"); r.status != http.StatusOK {
		t.Fatalf("refresh = %d %s", r.status, r.body)
	}
	s2 := list()
	if len(s2) != 1 || s2[0].ID != s[0].ID {
		t.Fatalf("sessions after refresh = %+v", s2)
	}
	if s2[0].ClientAddr != "198.51.100.9" || !s2[0].LastUsed.After(s[0].LastUsed) {
		t.Errorf("refresh not recorded: %+v", s2[0])
	}

	t.Run("EmptyIsArray", func(t *testing.T) {
		e := e.on(t)
		r := e.call(http.MethodGet, "/admin/users/root/sessions", rootTok, nil)
		if r.status != http.StatusOK || string(r.body) != "[]\n" {
			t.Errorf("sessions of root = %d %q", r.status, r.body)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		e := e.on(t)
		wantCode(t, e.call(http.MethodGet, "/admin/users/nobody/sessions", rootTok, nil), http.StatusNotFound, "not_found")
	})
}
