package api

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatctl/chatctl/admin"
	"github.com/chatctl/chatctl/auth"
	"github.com/chatctl/chatctl/configs"
	"github.com/chatctl/chatctl/store"
)

// concrete fills the {name} of a route pattern and splits off the method.
func concrete(pattern string) (method, path string) {
	method, path, _ = strings.Cut(pattern, " ")
	return method, strings.ReplaceAll(path, "{name}", "somebody")
}

// Ensure every /admin route refuses a missing token (401) and a
// non-admin's token (403), including an admin demoted after issue.
func TestAdminRequiresAdmin(t *testing.T) {
	e := newEnv(t, nil)
	e.addUser("alice", "")
	e.addUser("demoted", "admin")
	userTok, demotedTok := e.issue("alice"), e.issue("demoted")
	if _, err := e.svc.SetRole(bg, "demoted", auth.RoleUser); err != nil {
		t.Fatal(err)
	}
	for _, rt := range e.srv.adminRouteTable() {
		method, path := concrete(rt.pattern)
		t.Run(rt.pattern, func(t *testing.T) {
			e := e.on(t)
			wantUnauthorized(t, e.request(method, path, nil, nil))
			for _, tok := range []string{userTok, demotedTok} {
				r := e.call(method, path, tok, nil)
				wantBody(t, r, http.StatusForbidden, map[string]any{"detail": "Admin role required"})
			}
		})
	}
}

// Ensure an admin's token works on every /admin route, and errors carry
// their codes.
func TestAdminAPI(t *testing.T) {
	e := newEnv(t, nil)
	e.addUser("root", "admin")
	e.addUser("alice", "")
	tok := e.issue("root")
	call := func(method, path string, body any) response { return e.call(method, path, tok, body) }

	t.Run("Users", func(t *testing.T) {
		r := call(http.MethodGet, "/admin/users", nil)
		var users []admin.UserInfo
		r.into(t, &users)
		if r.status != http.StatusOK || len(users) != 2 || users[0].Username != "alice" || users[1].Role != "admin" {
			t.Fatalf("users = %d %s", r.status, r.body)
		}
		if strings.Contains(string(r.body), "$2") {
			t.Errorf("user list leaks hashes: %s", r.body)
		}
	})
	t.Run("AddUser", func(t *testing.T) {
		r := call(http.MethodPost, "/admin/users", admin.AddUserRequest{Name: "Carol", Password: testPassword})
		var res admin.AddUserResult
		r.into(t, &res)
		if r.status != http.StatusCreated || !res.Created || res.User.Username != "carol" || res.User.Role != "user" {
			t.Fatalf("add = %d %s", r.status, r.body)
		}
		r = call(http.MethodPost, "/admin/users", admin.AddUserRequest{Name: "carol", Password: testPassword, IgnoreExists: true})
		r.into(t, &res)
		if r.status != http.StatusOK || res.Created {
			t.Errorf("add --ignore-exists = %d %s", r.status, r.body)
		}
		wantCode(t, call(http.MethodPost, "/admin/users", admin.AddUserRequest{Name: "CAROL", Password: testPassword}), http.StatusConflict, "exists")
		wantCode(t, call(http.MethodPost, "/admin/users", admin.AddUserRequest{Name: "x y", Password: testPassword}), http.StatusUnprocessableEntity, "bad_username")
		wantCode(t, call(http.MethodPost, "/admin/users", admin.AddUserRequest{Name: "dan", Password: "short"}), http.StatusUnprocessableEntity, "password_too_short")
		wantCode(t, call(http.MethodPost, "/admin/users", admin.AddUserRequest{Name: "dan", Password: strings.Repeat("p", 73)}), http.StatusUnprocessableEntity, "password_too_long")
		wantCode(t, call(http.MethodPost, "/admin/users", admin.AddUserRequest{Name: "dan", Hash: "$2b$nope"}), http.StatusUnprocessableEntity, "bad_hash")
		wantCode(t, call(http.MethodPost, "/admin/users", admin.AddUserRequest{Name: "dan", Role: "root", Password: testPassword}), http.StatusUnprocessableEntity, "bad_role")
		wantCode(t, call(http.MethodPost, "/admin/users", `{"name":"dan","pasword":"typo in field"}`), http.StatusUnprocessableEntity, "bad_request")
	})
	t.Run("AddUserHash", func(t *testing.T) {
		e := e.on(t)
		hash, err := auth.HashPassword("imported password", 8, 4)
		if err != nil {
			t.Fatal(err)
		}
		r := call(http.MethodPost, "/admin/users", admin.AddUserRequest{Name: "imported", Hash: hash})
		if r.status != http.StatusCreated {
			t.Fatalf("import = %d %s", r.status, r.body)
		}
		if r := e.postToken(loginForm("imported", "imported password"), ""); r.status != http.StatusOK {
			t.Errorf("login with imported hash = %d %s", r.status, r.body)
		}
	})
	t.Run("User", func(t *testing.T) {
		r := call(http.MethodGet, "/admin/users/ALICE", nil)
		if r.status != http.StatusOK || r.json(t)["username"] != "alice" {
			t.Fatalf("user = %d %s", r.status, r.body)
		}
		wantCode(t, call(http.MethodGet, "/admin/users/nobody", nil), http.StatusNotFound, "not_found")
	})
	t.Run("SetPassword", func(t *testing.T) {
		e := e.on(t)
		r := call(http.MethodPut, "/admin/users/carol/password", admin.PasswordRequest{Password: "a new password"})
		if r.status != http.StatusOK || r.json(t)["username"] != "carol" {
			t.Fatalf("passwd = %d %s", r.status, r.body)
		}
		if r := e.postToken(loginForm("carol", "a new password"), ""); r.status != http.StatusOK {
			t.Errorf("login with new password = %d %s", r.status, r.body)
		}
		wantCode(t, call(http.MethodPut, "/admin/users/carol/password", admin.PasswordRequest{Password: "short"}), http.StatusUnprocessableEntity, "password_too_short")
		wantCode(t, call(http.MethodPut, "/admin/users/nobody/password", admin.PasswordRequest{Password: testPassword}), http.StatusNotFound, "not_found")
		wantCode(t, call(http.MethodPut, "/admin/users/carol/password", nil), http.StatusUnprocessableEntity, "password_too_short")
	})
	t.Run("SetRole", func(t *testing.T) {
		e := e.on(t)
		r := call(http.MethodPut, "/admin/users/carol/role", admin.RoleRequest{Role: "admin"})
		if r.status != http.StatusOK || r.json(t)["role"] != "admin" {
			t.Fatalf("role = %d %s", r.status, r.body)
		}
		// The new role applies to carol's existing tokens at once.
		if r := e.call(http.MethodGet, "/admin/users", e.issue("carol"), nil); r.status != http.StatusOK {
			t.Errorf("promoted carol: %d %s", r.status, r.body)
		}
		call(http.MethodPut, "/admin/users/carol/role", admin.RoleRequest{Role: "user"})
		wantCode(t, call(http.MethodPut, "/admin/users/carol/role", admin.RoleRequest{Role: "root"}), http.StatusUnprocessableEntity, "bad_role")
		wantCode(t, call(http.MethodPut, "/admin/users/nobody/role", admin.RoleRequest{Role: "user"}), http.StatusNotFound, "not_found")
	})
	t.Run("SetDisabledAndIssue", func(t *testing.T) {
		e := e.on(t)
		r := call(http.MethodPut, "/admin/users/carol/disabled", admin.DisabledRequest{Disabled: true})
		if r.status != http.StatusOK || r.json(t)["disabled"] != true {
			t.Fatalf("disable = %d %s", r.status, r.body)
		}
		wantCode(t, call(http.MethodPost, "/admin/users/carol/tokens", nil), http.StatusConflict, "user_disabled")
		r = call(http.MethodPut, "/admin/users/carol/disabled", admin.DisabledRequest{Disabled: false})
		if r.status != http.StatusOK || r.json(t)["disabled"] != false {
			t.Fatalf("enable = %d %s", r.status, r.body)
		}
		r = call(http.MethodPost, "/admin/users/carol/tokens", admin.IssueRequest{TTL: admin.Duration(5 * time.Minute)})
		var it admin.IssuedToken
		r.into(t, &it)
		if r.status != http.StatusOK || it.ExpiresIn != 300 || it.JTI == "" || it.Username != "carol" || it.TokenType != "bearer" {
			t.Fatalf("issue = %d %s", r.status, r.body)
		}
		if !it.ExpiresAt.Equal(e.clock.Now().Add(5 * time.Minute)) {
			t.Errorf("expires_at = %v, want now + 5m", it.ExpiresAt)
		}
		if me := e.call(http.MethodGet, "/users/me", it.AccessToken, nil); me.status != http.StatusOK {
			t.Errorf("issued token refused: %d %s", me.status, me.body)
		}
		r = call(http.MethodPost, "/admin/users/carol/tokens", nil) // no body: token.ttl
		if r.status != http.StatusOK || r.json(t)["expires_in"] != e.cfg.Token.TTL.Seconds() {
			t.Errorf("issue without body = %d %s", r.status, r.body)
		}
		wantCode(t, call(http.MethodPost, "/admin/users/nobody/tokens", nil), http.StatusNotFound, "not_found")
		wantCode(t, call(http.MethodPost, "/admin/users/carol/tokens", `{"ttl":"soon"}`), http.StatusUnprocessableEntity, "bad_request")
		wantCode(t, call(http.MethodPut, "/admin/users/nobody/disabled", admin.DisabledRequest{Disabled: true}), http.StatusNotFound, "not_found")
	})
	t.Run("SessionsInspectRevoke", func(t *testing.T) {
		e := e.on(t)
		r := e.postToken(loginForm("carol", "a new password"), "")
		var p tokenResponse
		r.into(t, &p)
		r = call(http.MethodGet, "/admin/users/carol/sessions", nil)
		var ss []admin.SessionInfo
		r.into(t, &ss)
		if r.status != http.StatusOK || len(ss) != 1 || ss[0].ClientAddr == "" {
			t.Fatalf("sessions = %d %s", r.status, r.body)
		}

		r = call(http.MethodPost, "/admin/tokens/inspect", admin.InspectRequest{Token: p.AccessToken})
		var in admin.Inspection
		r.into(t, &in)
		if r.status != http.StatusOK || !in.Valid || in.Claims["sub"] != "carol" || in.Header["alg"] != "HS256" || in.Header["kid"] == nil {
			t.Fatalf("inspect = %d %s", r.status, r.body)
		}
		jti, _ := in.Claims["jti"].(string)
		r = call(http.MethodPost, "/admin/tokens/inspect", admin.InspectRequest{Token: "a.b"})
		r.into(t, &in)
		if r.status != http.StatusOK || in.Valid || in.Reason != string(auth.ReasonMalformed) {
			t.Errorf("inspect garbage = %d %s", r.status, r.body)
		}

		r = call(http.MethodPost, "/admin/revoke", admin.RevokeRequest{ID: jti})
		if r.status != http.StatusOK || r.json(t)["kind"] != "token" {
			t.Fatalf("revoke jti = %d %s", r.status, r.body)
		}
		r = call(http.MethodPost, "/admin/tokens/inspect", admin.InspectRequest{Token: p.AccessToken})
		r.into(t, &in)
		if in.Valid || in.Reason != string(auth.ReasonRevoked) {
			t.Errorf("inspect revoked = %s", r.body)
		}
		r = call(http.MethodPost, "/admin/revoke", admin.RevokeRequest{ID: ss[0].ID})
		if r.status != http.StatusOK || r.json(t)["kind"] != "session" {
			t.Fatalf("revoke session = %d %s", r.status, r.body)
		}
		wantInvalidGrant(t, e.refresh(p.RefreshToken, ""))
		r = call(http.MethodPost, "/admin/revoke", admin.RevokeRequest{User: "carol", All: true})
		if r.status != http.StatusOK || r.json(t)["kind"] != "user" || r.json(t)["username"] != "carol" {
			t.Fatalf("revoke all = %d %s", r.status, r.body)
		}
		wantCode(t, call(http.MethodPost, "/admin/revoke", admin.RevokeRequest{}), http.StatusUnprocessableEntity, "bad_request")
		wantCode(t, call(http.MethodPost, "/admin/revoke", nil), http.StatusUnprocessableEntity, "bad_request")
		wantCode(t, call(http.MethodPost, "/admin/revoke", admin.RevokeRequest{User: "carol"}), http.StatusUnprocessableEntity, "bad_request")
		wantCode(t, call(http.MethodPost, "/admin/revoke", admin.RevokeRequest{ID: "ses_nope"}), http.StatusNotFound, "not_found")
		wantCode(t, call(http.MethodPost, "/admin/revoke", admin.RevokeRequest{User: "nobody", All: true}), http.StatusNotFound, "not_found")
	})
	t.Run("Rooms", func(t *testing.T) {
		e := e.on(t)
		r := call(http.MethodGet, "/admin/rooms", nil)
		if r.status != http.StatusOK || string(r.body) != "[]\n" {
			t.Fatalf("rooms = %d %q, want an empty array", r.status, r.body)
		}
		if _, err := e.db.AppendMessage(bg, "general", "alice", "hi", e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		r = call(http.MethodGet, "/admin/rooms", nil)
		var rooms []admin.RoomInfo
		r.into(t, &rooms)
		if len(rooms) != 1 || rooms[0].Name != "general" || rooms[0].Messages != 1 || rooms[0].LastID != 1 {
			t.Fatalf("rooms = %s", r.body)
		}
		r = call(http.MethodDelete, "/admin/rooms/general", nil)
		if r.status != http.StatusOK || r.json(t)["deleted"] != true {
			t.Fatalf("delete room = %d %s", r.status, r.body)
		}
		wantCode(t, call(http.MethodDelete, "/admin/rooms/general", nil), http.StatusNotFound, "not_found")
	})
	t.Run("KeysRotate", func(t *testing.T) {
		e := e.on(t)
		before := e.issue("alice")
		r := call(http.MethodGet, "/admin/keys", nil)
		var keys []admin.KeyInfo
		r.into(t, &keys)
		if r.status != http.StatusOK || len(keys) != 1 || !keys[0].Active || keys[0].Source != "store" {
			t.Fatalf("keys = %d %s", r.status, r.body)
		}
		if strings.Contains(strings.ToLower(string(r.body)), "secret") {
			t.Errorf("key list shows secrets: %s", r.body)
		}
		r = call(http.MethodPost, "/admin/keys/rotate", nil)
		var k admin.KeyInfo
		r.into(t, &k)
		if r.status != http.StatusOK || !k.Active || k.Kid == keys[0].Kid {
			t.Fatalf("rotate = %d %s", r.status, r.body)
		}
		r = call(http.MethodGet, "/admin/keys", nil)
		r.into(t, &keys)
		if len(keys) != 2 || keys[0].Kid != k.Kid || keys[1].Active || keys[1].Expires.IsZero() {
			t.Errorf("keys after rotate = %s", r.body)
		}
		// A rotated-out key still verifies; new tokens use the new key.
		if me := e.call(http.MethodGet, "/users/me", before, nil); me.status != http.StatusOK {
			t.Errorf("token of the retired key refused: %d %s", me.status, me.body)
		}
		h, _, err := auth.Decode(e.issue("alice"))
		if err != nil || h["kid"] != k.Kid {
			t.Errorf("new token kid = %v, want %s (%v)", h["kid"], k.Kid, err)
		}
	})
	t.Run("RemoveUser", func(t *testing.T) {
		r := call(http.MethodDelete, "/admin/users/carol", nil)
		if r.status != http.StatusOK || r.json(t)["removed"] != true {
			t.Fatalf("remove = %d %s", r.status, r.body)
		}
		wantCode(t, call(http.MethodDelete, "/admin/users/carol", nil), http.StatusNotFound, "not_found")
		wantCode(t, call(http.MethodGet, "/admin/users/carol", nil), http.StatusNotFound, "not_found")
	})
}

// Ensure rotation is refused with code external_key when the operator
// supplies the secret.
func TestAdminRotateExternalKey(t *testing.T) {
	e := newEnv(t, func(c *configs.Config) { c.JWTSecret = strings.Repeat("k", 40) })
	e.addUser("root", "admin")
	tok := e.issue("root")
	wantCode(t, e.call(http.MethodPost, "/admin/keys/rotate", tok, nil), http.StatusConflict, "external_key")
	r := e.call(http.MethodGet, "/admin/keys", tok, nil)
	if r.status != http.StatusOK || strings.Contains(string(r.body), strings.Repeat("k", 40)) {
		t.Errorf("keys = %d %s", r.status, r.body)
	}
}

// socketDir is a short temporary folder: Unix socket paths are limited to
// about 100 bytes, and t.TempDir() paths can be longer.
func socketDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "chatctl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// serveSocket serves e's admin socket handler at a new Unix socket and
// returns the remote Admin for it.
func (e *env) serveSocket(t *testing.T) (*admin.Remote, string) {
	t.Helper()
	path := filepath.Join(socketDir(t), "admin.sock")
	ln, err := listenSocket(path)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: e.srv.SocketHandler(), ConnContext: e.srv.SocketConnContext}
	done := make(chan struct{})
	go func() {
		defer close(done)
		hs.Serve(ln)
	}()
	t.Cleanup(func() {
		hs.Close()
		<-done
	})
	r, err := admin.Dial(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, path
}

// Ensure the admin socket offers the CLI's Admin: the remote Admin adds,
// lists, issues, inspects, revokes and rotates, and needs no token.
func TestAdminSocket(t *testing.T) {
	e := newEnv(t, nil)
	r, path := e.serveSocket(t)

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || fi.Mode()&os.ModeSocket == 0 {
		t.Errorf("socket mode = %v, want a socket with 0600", fi.Mode())
	}

	res, err := r.AddUser(bg, admin.AddUserRequest{Name: "Alice", Password: testPassword, Role: "admin"})
	if err != nil || !res.Created || res.User.Username != "alice" || res.User.Role != "admin" {
		t.Fatalf("AddUser = %+v, %v", res, err)
	}
	res, err = r.AddUser(bg, admin.AddUserRequest{Name: "alice", Password: testPassword, IgnoreExists: true})
	if err != nil || res.Created {
		t.Errorf("AddUser IgnoreExists = %+v, %v", res, err)
	}
	users, err := r.Users(bg)
	if err != nil || len(users) != 1 || users[0].Username != "alice" {
		t.Fatalf("Users = %+v, %v", users, err)
	}
	if u, err := r.User(bg, "ALICE"); err != nil || u.Username != "alice" {
		t.Errorf("User = %+v, %v", u, err)
	}

	it, err := r.IssueToken(bg, "alice", 10*time.Minute)
	if err != nil || it.ExpiresIn != 600 || it.JTI == "" {
		t.Fatalf("IssueToken = %+v, %v", it, err)
	}
	if me := e.call(http.MethodGet, "/users/me", it.AccessToken, nil); me.status != http.StatusOK {
		t.Fatalf("token issued over the socket refused by HTTP: %d %s", me.status, me.body)
	}
	in, err := r.InspectToken(bg, it.AccessToken)
	if err != nil || !in.Valid || in.Claims["jti"] != it.JTI {
		t.Fatalf("InspectToken = %+v, %v", in, err)
	}

	p := e.login("alice")
	sessions, err := r.Sessions(bg, "alice")
	if err != nil || len(sessions) != 1 {
		t.Fatalf("Sessions = %+v, %v", sessions, err)
	}
	rv, err := r.Revoke(bg, admin.RevokeRequest{ID: it.JTI})
	if err != nil || rv.Kind != "token" {
		t.Fatalf("Revoke jti = %+v, %v", rv, err)
	}
	wantUnauthorized(t, e.call(http.MethodGet, "/users/me", it.AccessToken, nil))
	if rv, err := r.Revoke(bg, admin.RevokeRequest{ID: sessions[0].ID}); err != nil || rv.Kind != "session" {
		t.Fatalf("Revoke session = %+v, %v", rv, err)
	}
	wantInvalidGrant(t, e.refresh(p.RefreshToken, ""))

	keys, err := r.Keys(bg)
	if err != nil || len(keys) != 1 {
		t.Fatalf("Keys = %+v, %v", keys, err)
	}
	k, err := r.RotateKey(bg)
	if err != nil || !k.Active || k.Kid == keys[0].Kid {
		t.Fatalf("RotateKey = %+v, %v", k, err)
	}
	if u, err := r.SetRole(bg, "alice", "user"); err != nil || u.Role != "user" {
		t.Errorf("SetRole = %+v, %v", u, err)
	}
	if u, err := r.SetDisabled(bg, "alice", true); err != nil || !u.Disabled {
		t.Errorf("SetDisabled = %+v, %v", u, err)
	}
	if _, err := r.SetPassword(bg, "alice", "another password"); err != nil {
		t.Errorf("SetPassword: %v", err)
	}
	if rooms, err := r.Rooms(bg); err != nil || rooms == nil || len(rooms) != 0 {
		t.Errorf("Rooms = %#v, %v", rooms, err)
	}
	if err := r.RemoveUser(bg, "alice"); err != nil {
		t.Errorf("RemoveUser: %v", err)
	}
	if _, err := r.User(bg, "alice"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("User after RemoveUser: %v", err)
	}
}

// Ensure errors over the socket match the same sentinels as the local
// Service, so the CLI reacts the same whether or not a server runs.
func TestAdminSocketErrors(t *testing.T) {
	e := newEnv(t, nil)
	r, _ := e.serveSocket(t)
	e.addUser("alice", "")
	e.addUser("dora", "")
	if _, err := e.svc.SetDisabled(bg, "dora", true); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		call    func(a admin.Admin) error
		wantErr error
	}{
		{"ErrUserExists", func(a admin.Admin) error {
			_, err := a.AddUser(bg, admin.AddUserRequest{Name: "ALICE", Password: testPassword})
			return err
		}, store.ErrUserExists},
		{"ErrBadUsername", func(a admin.Admin) error {
			_, err := a.AddUser(bg, admin.AddUserRequest{Name: "-x", Password: testPassword})
			return err
		}, auth.ErrBadUsername},
		{"ErrPasswordTooShort", func(a admin.Admin) error {
			_, err := a.AddUser(bg, admin.AddUserRequest{Name: "bob", Password: "short"})
			return err
		}, auth.ErrPasswordTooShort},
		{"ErrPasswordTooLong", func(a admin.Admin) error {
			_, err := a.AddUser(bg, admin.AddUserRequest{Name: "bob", Password: strings.Repeat("x", 73)})
			return err
		}, auth.ErrPasswordTooLong},
		{"ErrPasswordTooLongPasswd", func(a admin.Admin) error {
			_, err := a.SetPassword(bg, "alice", strings.Repeat("x", 73))
			return err
		}, auth.ErrPasswordTooLong},
		{"ErrBadHash", func(a admin.Admin) error {
			_, err := a.AddUser(bg, admin.AddUserRequest{Name: "bob", Hash: "$2b$nope"})
			return err
		}, auth.ErrBadHash},
		{"ErrBadRole", func(a admin.Admin) error {
			_, err := a.SetRole(bg, "alice", "root")
			return err
		}, auth.ErrBadRole},
		{"ErrNotFoundUser", func(a admin.Admin) error {
			_, err := a.User(bg, "nobody")
			return err
		}, store.ErrNotFound},
		{"ErrNotFoundRemove", func(a admin.Admin) error { return a.RemoveUser(bg, "nobody") }, store.ErrNotFound},
		{"ErrNotFoundIssue", func(a admin.Admin) error {
			_, err := a.IssueToken(bg, "nobody", 0)
			return err
		}, store.ErrNotFound},
		{"ErrNotFoundSessions", func(a admin.Admin) error {
			_, err := a.Sessions(bg, "nobody")
			return err
		}, store.ErrNotFound},
		{"ErrNotFoundSession", func(a admin.Admin) error {
			_, err := a.Revoke(bg, admin.RevokeRequest{ID: "ses_nope"})
			return err
		}, store.ErrNotFound},
		{"ErrNotFoundRoom", func(a admin.Admin) error { return a.DeleteRoom(bg, "nope") }, store.ErrNotFound},
		{"ErrUserDisabled", func(a admin.Admin) error {
			_, err := a.IssueToken(bg, "dora", 0)
			return err
		}, admin.ErrUserDisabled},
		{"ErrBadRequest", func(a admin.Admin) error {
			_, err := a.Revoke(bg, admin.RevokeRequest{})
			return err
		}, admin.ErrBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := e.on(t)
			local := tc.call(e.svc)
			if !errors.Is(local, tc.wantErr) {
				t.Fatalf("local: %v, want %v", local, tc.wantErr)
			}
			remote := tc.call(r)
			if !errors.Is(remote, tc.wantErr) {
				t.Fatalf("remote: %v, want %v", remote, tc.wantErr)
			}
			if remote.Error() != local.Error() {
				t.Errorf("remote message %q, local %q", remote, local)
			}
		})
	}
}

// Ensure a handler run on the hash pool never outlives the request: when
// the client gives up, hashing still waits for the handler, which would
// otherwise write to a ResponseWriter after ServeHTTP returned (net/http
// recycles its buffers by then).
func TestHashingWaitsForHandler(t *testing.T) {
	e := newEnv(t, nil)
	var returned, wroteAfterReturn atomic.Bool
	started, innerDone := make(chan struct{}), make(chan struct{})
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(innerDone)
		close(started)
		<-r.Context().Done()
		// Give a hashing that does not wait every chance to return first.
		deadline := time.Now().Add(200 * time.Millisecond)
		for !returned.Load() && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		wroteAfterReturn.Store(returned.Load())
	})
	h := e.srv.hashing(inner)
	outer := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		returned.Store(true)
	})
	ts := httptest.NewServer(outer)
	defer ts.Close()

	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	<-started
	conn.Close() // the client gives up; the server cancels r.Context()
	select {
	case <-innerDone:
	case <-time.After(5 * time.Second):
		t.Fatal("the pooled handler did not finish")
	}
	if wroteAfterReturn.Load() {
		t.Error("hashing returned while its handler was still running")
	}
}

// Ensure a request with both a password and a hash is the caller's
// mistake (422 bad_request), not an internal error.
func TestAddUserPasswordAndHash(t *testing.T) {
	e := newEnv(t, nil)
	e.addUser("root", "admin")
	hash, err := auth.HashPassword(testPassword, 8, 4)
	if err != nil {
		t.Fatal(err)
	}
	r := e.call(http.MethodPost, "/admin/users", e.issue("root"), admin.AddUserRequest{Name: "bob", Password: testPassword, Hash: hash})
	wantCode(t, r, http.StatusUnprocessableEntity, "bad_request")
	if _, err := e.svc.AddUser(bg, admin.AddUserRequest{Name: "bob", Password: testPassword, Hash: hash}); !errors.Is(err, admin.ErrBadRequest) {
		t.Errorf("local AddUser: %v, want ErrBadRequest", err)
	}
}
