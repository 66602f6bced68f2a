package api

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chatctl/chatctl/configs"
	"github.com/chatctl/chatctl/web"
)

// Ensure GET / and GET /health answer exactly the bodies of SPEC §5.
func TestRootAndHealth(t *testing.T) {
	e := newEnv(t, nil)
	t.Run("Root", func(t *testing.T) {
		e := e.on(t)
		r := e.request(http.MethodGet, "/", nil, nil)
		wantBody(t, r, http.StatusOK, map[string]any{"message": "Welcome to the Real-time Chat API!"})
		if string(r.body) != `{"message":"Welcome to the Real-time Chat API!"}`+"\n" {
			t.Errorf("body = %q", r.body)
		}
	})
	t.Run("Health", func(t *testing.T) {
		e := e.on(t)
		wantBody(t, e.request(http.MethodGet, "/health", nil, nil), http.StatusOK, map[string]any{"status": "ok"})
	})
	t.Run("UnknownPathNotFound", func(t *testing.T) {
		e := e.on(t)
		wantBody(t, e.request(http.MethodGet, "/nope", nil, nil), http.StatusNotFound, map[string]any{"detail": "Not Found"})
	})
}

// Ensure /health answers 503 with a reason once the store is unusable.
func TestHealthStoreClosed(t *testing.T) {
	e := newEnv(t, nil)
	e.closeStore()
	r := e.request(http.MethodGet, "/health", nil, nil)
	if r.status != http.StatusServiceUnavailable {
		t.Fatalf("status = %d, want 503; body %s", r.status, r.body)
	}
	m := r.json(t)
	if m["status"] == "ok" {
		t.Errorf("status field = %v", m["status"])
	}
	if d, _ := m["detail"].(string); !strings.Contains(d, "store") {
		t.Errorf("detail = %q, want a reason naming the store", d)
	}
}

// Ensure the seed's walkthrough still works: a form login without
// grant_type, then GET /users/me with the bearer token.
func TestSeedWalkthrough(t *testing.T) {
	e := newEnv(t, nil)
	e.addUser("alice", "")
	before := e.clock.Now()

	r := e.postToken(loginForm("alice", testPassword), "")
	if r.status != http.StatusOK {
		t.Fatalf("POST /token = %d %s", r.status, r.body)
	}
	if got := r.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}
	m := r.json(t)
	for _, k := range []string{"access_token", "token_type", "expires_in", "refresh_token"} {
		if _, ok := m[k]; !ok {
			t.Errorf("token response lacks %q: %s", k, r.body)
		}
	}
	if m["token_type"] != "bearer" {
		t.Errorf("token_type = %v, want bearer", m["token_type"])
	}
	if m["expires_in"] != e.cfg.Token.TTL.Seconds() {
		t.Errorf("expires_in = %v, want %v", m["expires_in"], e.cfg.Token.TTL.Seconds())
	}
	tok, _ := m["access_token"].(string)
	if rt, _ := m["refresh_token"].(string); rt == "" || rt == tok {
		t.Errorf("refresh_token = %q", rt)
	}

	me := e.call(http.MethodGet, "/users/me", tok, nil)
	if me.status != http.StatusOK {
		t.Fatalf("GET /users/me = %d %s", me.status, me.body)
	}
	var body map[string]any
	me.into(t, &body)
	if len(body) != 4 || body["username"] != "alice" || body["message"] != "You are authenticated!" || body["role"] != "user" {
		t.Errorf("GET /users/me = %s", me.body)
	}
	created, err := time.Parse(time.RFC3339, body["created_at"].(string))
	if err != nil || created.Sub(before).Abs() > time.Second {
		t.Errorf("created_at = %v (%v), want about %v", body["created_at"], err, before)
	}

	t.Run("CaseInsensitiveName", func(t *testing.T) {
		e := e.on(t)
		r := e.postToken(loginForm("ALICE", testPassword), "")
		if r.status != http.StatusOK {
			t.Fatalf("login as ALICE = %d %s", r.status, r.body)
		}
	})
	t.Run("ExplicitPasswordGrant", func(t *testing.T) {
		e := e.on(t)
		f := loginForm("alice", testPassword)
		f.Set("grant_type", "password")
		if r := e.postToken(f, ""); r.status != http.StatusOK {
			t.Fatalf("grant_type=password = %d %s", r.status, r.body)
		}
	})
	t.Run("MultipartForm", func(t *testing.T) {
		e := e.on(t)
		body := "--XX\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\nalice\r\n" +
			"--XX\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\n" + testPassword + "\r\n--XX--\r\n"
		r := e.request(http.MethodPost, "/token", map[string]string{"Content-Type": "multipart/form-data; boundary=XX"}, body)
		if r.status != http.StatusOK {
			t.Fatalf("multipart login = %d %s", r.status, r.body)
		}
	})
}

// Ensure failed logins look the same for a wrong password and an unknown
// user, and malformed requests get 422 or 400 as SPEC §5 says.
func TestTokenErrors(t *testing.T) {
	e := newEnv(t, nil)
	e.addUser("alice", "")
	e.addUser("dora", "")
	if _, err := e.svc.SetDisabled(bg, "dora", true); err != nil {
		t.Fatal(err)
	}
	badCreds := map[string]any{"detail": "Incorrect username or password", "error": "invalid_grant", "error_description": "Incorrect username or password"}
	var bodies []string
	for _, tc := range []struct{ name, user, password string }{
		{"WrongPassword", "alice", "wrong password!"},
		{"UnknownUser", "nobody", testPassword},
		{"InvalidUsername", "-bad name-", testPassword},
		{"DisabledUser", "dora", testPassword},
		{"TooLongPassword", "alice", strings.Repeat("p", 73)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := e.on(t)
			r := e.postToken(loginForm(tc.user, tc.password), "")
			wantBody(t, r, http.StatusUnauthorized, badCreds)
			if got := r.header.Get("WWW-Authenticate"); got != "Bearer" {
				t.Errorf("WWW-Authenticate = %q, want Bearer", got)
			}
			if got := r.header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", got)
			}
			bodies = append(bodies, string(r.body))
		})
	}
	for _, b := range bodies[1:] {
		if b != bodies[0] {
			t.Errorf("failed-login bodies differ: %q vs %q", bodies[0], b)
		}
	}

	form := "application/x-www-form-urlencoded"
	tests := []struct {
		name        string
		contentType string
		body        string
		wantStatus  int
		wantError   string
		wantDetail  string
	}{
		{"MissingPassword", form, "username=alice", http.StatusUnprocessableEntity, "invalid_request", "password"},
		{"MissingUsername", form, "password=x", http.StatusUnprocessableEntity, "invalid_request", "username"},
		{"MissingBoth", form, "", http.StatusUnprocessableEntity, "invalid_request", "username, password"},
		{"EmptyPassword", form, "username=alice&password=", http.StatusUnprocessableEntity, "invalid_request", "password"},
		{"MissingRefreshToken", form, "grant_type=refresh_token", http.StatusUnprocessableEntity, "invalid_request", "refresh_token"},
		{"JSONBody", "application/json", `{"username":"alice","password":"` + testPassword + `"}`, http.StatusUnprocessableEntity, "invalid_request", "form fields"},
		{"NoContentType", "", "username=alice&password=" + url.QueryEscape(testPassword), http.StatusUnprocessableEntity, "invalid_request", "form fields"},
		{"UnsupportedGrant", form, "grant_type=client_credentials&username=alice&password=x", http.StatusBadRequest, "unsupported_grant_type", "grant_type"},
		// RFC 6749 §3.2: no parameter more than once, whichever it is.
		{"RepeatedUsername", form, "username=alice&username=bob&password=x", http.StatusBadRequest, "invalid_request", "more than once: username"},
		{"RepeatedPassword", form, "username=alice&password=" + url.QueryEscape(testPassword) + "&password=x", http.StatusBadRequest, "invalid_request", "password"},
		{"RepeatedGrantType", form, "grant_type=password&grant_type=refresh_token&username=alice&password=x", http.StatusBadRequest, "invalid_request", "grant_type"},
		{"RepeatedEmpty", form, "username=alice&password=x&scope=&scope=", http.StatusBadRequest, "invalid_request", "scope"},
		{"RepeatedRefreshToken", form, "grant_type=refresh_token&refresh_token=a&refresh_token=b", http.StatusBadRequest, "invalid_request", "refresh_token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := e.on(t)
			h := map[string]string{}
			if tc.contentType != "" {
				h["Content-Type"] = tc.contentType
			}
			r := e.request(http.MethodPost, "/token", h, tc.body)
			if r.status != tc.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", r.status, tc.wantStatus, r.body)
			}
			m := r.json(t)
			if m["error"] != tc.wantError {
				t.Errorf("error = %v, want %s", m["error"], tc.wantError)
			}
			if d, _ := m["detail"].(string); !strings.Contains(d, tc.wantDetail) {
				t.Errorf("detail = %q, want it to mention %q", d, tc.wantDetail)
			}
			if m["error_description"] != m["detail"] {
				t.Errorf("error_description = %v, want the detail %v", m["error_description"], m["detail"])
			}
		})
	}
	t.Run("EmptyScopeIgnored", func(t *testing.T) {
		// The seed's form (FastAPI's OAuth2PasswordRequestForm) sends an
		// empty scope by default: nothing requested, nothing reported.
		f := loginForm("alice", testPassword)
		f.Set("scope", "")
		r := e.on(t).postToken(f, "")
		if r.status != http.StatusOK {
			t.Fatalf("scope= : %d %s", r.status, r.body)
		}
		if _, ok := r.json(t)["scope"]; ok {
			t.Errorf("scope reported for an empty request: %s", r.body)
		}
	})
	t.Run("ScopeIgnoredAndReported", func(t *testing.T) {
		// RFC 6749 §3.3: chatctl has no scopes; a requested one is ignored
		// and the response says what was granted: nothing narrower.
		f := loginForm("alice", testPassword)
		f.Set("scope", "read write")
		r := e.on(t).postToken(f, "")
		if r.status != http.StatusOK {
			t.Fatalf("scope=read write: %d %s", r.status, r.body)
		}
		if sc, ok := r.json(t)["scope"]; !ok || sc != "" {
			t.Errorf("scope = %v (present %v), want \"\"", sc, ok)
		}
	})
	t.Run("RepeatedMultipart", func(t *testing.T) {
		body := "--XX\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\nalice\r\n" +
			"--XX\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\nbob\r\n" +
			"--XX\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\n" + testPassword + "\r\n--XX--\r\n"
		r := e.on(t).request(http.MethodPost, "/token", map[string]string{"Content-Type": "multipart/form-data; boundary=XX"}, body)
		if r.status != http.StatusBadRequest || r.json(t)["error"] != "invalid_request" {
			t.Fatalf("repeated multipart username = %d %s", r.status, r.body)
		}
	})
}

// Ensure bodies over http.max_body are refused with 413, JSON endpoints
// refuse other content types with 415, and JSON answers carry the
// security headers.
func TestBodyLimitsAndHeaders(t *testing.T) {
	e := newEnv(t, func(c *configs.Config) {
		c.HTTP.MaxBody = 1024
		c.Signup = true
	})
	e.addUser("root", "admin")
	adminTok := e.issue("root")
	big := strings.Repeat("x", 4096)

	t.Run("TokenTooLarge", func(t *testing.T) {
		e := e.on(t)
		r := e.postToken(url.Values{"username": {"alice"}, "password": {big}}, "")
		if r.status != http.StatusRequestEntityTooLarge {
			t.Fatalf("status = %d, want 413; body %s", r.status, r.body)
		}
	})
	t.Run("SignupTooLarge", func(t *testing.T) {
		e := e.on(t)
		r := e.call(http.MethodPost, "/users", "", map[string]string{"username": "bob", "password": big})
		if r.status != http.StatusRequestEntityTooLarge {
			t.Fatalf("status = %d, want 413; body %s", r.status, r.body)
		}
	})
	t.Run("AdminTooLarge", func(t *testing.T) {
		e := e.on(t)
		r := e.call(http.MethodPost, "/admin/users", adminTok, map[string]string{"name": "bob", "password": big})
		if r.status != http.StatusRequestEntityTooLarge {
			t.Fatalf("status = %d, want 413; body %s", r.status, r.body)
		}
	})
	t.Run("SignupWrongContentType", func(t *testing.T) {
		e := e.on(t)
		r := e.request(http.MethodPost, "/users", map[string]string{"Content-Type": "text/plain"}, `{"username":"bob","password":"`+testPassword+`"}`)
		if r.status != http.StatusUnsupportedMediaType {
			t.Fatalf("status = %d, want 415; body %s", r.status, r.body)
		}
		if _, ok := r.json(t)["detail"]; !ok {
			t.Errorf("415 without detail: %s", r.body)
		}
	})
	t.Run("AdminWrongContentType", func(t *testing.T) {
		e := e.on(t)
		h := with(bearerHeader(adminTok), "Content-Type", "application/x-www-form-urlencoded")
		r := e.request(http.MethodPost, "/admin/users", h, "name=bob&password=x")
		if r.status != http.StatusUnsupportedMediaType {
			t.Fatalf("status = %d, want 415; body %s", r.status, r.body)
		}
	})

	for _, tc := range []struct{ method, path string }{
		{http.MethodGet, "/"},
		{http.MethodGet, "/health"},
		{http.MethodGet, "/users/me"},
		{http.MethodPost, "/token"},
		{http.MethodGet, "/nope"},
		{http.MethodGet, "/admin/users"},
		{http.MethodGet, "/openapi.json"},
	} {
		t.Run("SecurityHeaders "+tc.method+" "+tc.path, func(t *testing.T) {
			e := e.on(t)
			r := e.request(tc.method, tc.path, nil, nil)
			want := map[string]string{
				"X-Content-Type-Options":  "nosniff",
				"X-Frame-Options":         "DENY",
				"Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
				"Referrer-Policy":         "no-referrer",
			}
			for k, v := range want {
				if got := r.header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
		})
	}
	t.Run("PagesHaveOwnCSP", func(t *testing.T) {
		e := e.on(t)
		for _, p := range []string{"/chat", "/docs"} {
			r := e.request(http.MethodGet, p, nil, nil)
			if r.status != http.StatusOK {
				t.Errorf("GET %s = %d", p, r.status)
			}
			if csp := r.header.Get("Content-Security-Policy"); csp != web.CSP {
				t.Errorf("GET %s: CSP = %q, want web.CSP", p, csp)
			}
			if r.header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("GET %s: no nosniff", p)
			}
		}
	})
}

// Ensure POST /users follows signup and roles: 403 without signup unless an
// admin asks, 201 with it, only admins choose the role admin, and
// validation errors carry their codes.
func TestCreateUser(t *testing.T) {
	closed := newEnv(t, nil) // signup: false, the default
	closed.addUser("root", "admin")
	closed.addUser("alice", "")
	rootTok, aliceTok := closed.issue("root"), closed.issue("alice")

	t.Run("SignupDisabled", func(t *testing.T) {
		closed := closed.on(t)
		r := closed.call(http.MethodPost, "/users", "", map[string]string{"username": "bob", "password": testPassword})
		wantBody(t, r, http.StatusForbidden, map[string]any{"detail": "Sign-up is disabled"})
		if _, err := closed.svc.User(bg, "bob"); err == nil {
			t.Error("bob was created")
		}
	})
	t.Run("SignupDisabledUserToken", func(t *testing.T) {
		closed := closed.on(t)
		r := closed.call(http.MethodPost, "/users", aliceTok, map[string]string{"username": "bob", "password": testPassword})
		if r.status != http.StatusForbidden {
			t.Fatalf("status = %d, want 403; body %s", r.status, r.body)
		}
	})
	t.Run("BadToken", func(t *testing.T) {
		closed := closed.on(t)
		r := closed.call(http.MethodPost, "/users", "garbage", map[string]string{"username": "bob", "password": testPassword})
		wantUnauthorized(t, r)
	})
	t.Run("AdminCreatesAdmin", func(t *testing.T) {
		closed := closed.on(t)
		r := closed.call(http.MethodPost, "/users", rootTok, map[string]string{"username": "Carol", "password": testPassword, "role": "admin"})
		if r.status != http.StatusCreated {
			t.Fatalf("status = %d, want 201; body %s", r.status, r.body)
		}
		m := r.json(t)
		if m["username"] != "carol" || m["role"] != "admin" {
			t.Errorf("created %s", r.body)
		}
		if strings.Contains(string(r.body), "$2") || strings.Contains(string(r.body), testPassword) {
			t.Errorf("answer leaks the password or hash: %s", r.body)
		}
		if u, err := closed.svc.User(bg, "carol"); err != nil || u.Role != "admin" {
			t.Errorf("stored carol = %+v, %v", u, err)
		}
	})

	open := newEnv(t, func(c *configs.Config) { c.Signup = true })
	open.addUser("root", "admin")
	openRoot := open.issue("root")
	t.Run("SignupEnabled", func(t *testing.T) {
		open := open.on(t)
		r := open.call(http.MethodPost, "/users", "", map[string]string{"username": "bob", "password": testPassword})
		if r.status != http.StatusCreated {
			t.Fatalf("status = %d, want 201; body %s", r.status, r.body)
		}
		if m := r.json(t); m["username"] != "bob" || m["role"] != "user" {
			t.Errorf("created %s", r.body)
		}
		open.login("bob") // the new account works
	})
	t.Run("SignupExplicitUserRole", func(t *testing.T) {
		open := open.on(t)
		r := open.call(http.MethodPost, "/users", "", map[string]string{"username": "bea", "password": testPassword, "role": "user"})
		if r.status != http.StatusCreated {
			t.Fatalf("status = %d, want 201; body %s", r.status, r.body)
		}
	})
	t.Run("SignupCannotChooseAdmin", func(t *testing.T) {
		open := open.on(t)
		r := open.call(http.MethodPost, "/users", "", map[string]string{"username": "mallory", "password": testPassword, "role": "admin"})
		if r.status != http.StatusForbidden {
			t.Fatalf("status = %d, want 403; body %s", r.status, r.body)
		}
		if _, err := open.svc.User(bg, "mallory"); err == nil {
			t.Error("mallory was created")
		}
	})
	t.Run("UserTokenCannotChooseAdmin", func(t *testing.T) {
		open := open.on(t)
		open.addUser("alice", "")
		r := open.call(http.MethodPost, "/users", open.issue("alice"), map[string]string{"username": "mallory", "password": testPassword, "role": "admin"})
		if r.status != http.StatusForbidden {
			t.Fatalf("status = %d, want 403; body %s", r.status, r.body)
		}
	})
	for _, tc := range []struct {
		name       string
		body       any
		wantStatus int
		wantCode   string
	}{
		{"ErrUserExists", map[string]string{"username": "BOB", "password": testPassword}, http.StatusConflict, "exists"},
		{"ErrBadUsername", map[string]string{"username": "-bad", "password": testPassword}, http.StatusUnprocessableEntity, "bad_username"},
		{"ErrEmptyUsername", map[string]string{"username": "", "password": testPassword}, http.StatusUnprocessableEntity, "bad_username"},
		{"ErrPasswordTooShort", map[string]string{"username": "eve", "password": "short"}, http.StatusUnprocessableEntity, "password_too_short"},
		{"ErrPasswordTooLong", map[string]string{"username": "eve", "password": strings.Repeat("p", 73)}, http.StatusUnprocessableEntity, "password_too_long"},
		{"ErrBadRole", map[string]any{"username": "eve", "password": testPassword, "role": "root"}, http.StatusUnprocessableEntity, "bad_role"},
		{"ErrUnknownField", map[string]any{"username": "eve", "password": testPassword, "hash": "$2b$04$x"}, http.StatusUnprocessableEntity, "bad_request"},
		{"ErrEmptyBody", "", http.StatusUnprocessableEntity, "bad_request"},
		{"ErrBadJSON", "{", http.StatusUnprocessableEntity, "bad_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			open := open.on(t)
			tok := ""
			if tc.wantCode == "bad_role" {
				tok = openRoot // only an admin gets as far as role validation
			}
			var h map[string]string
			if tok != "" {
				h = bearerHeader(tok)
			}
			h = with(h, "Content-Type", "application/json")
			r := open.request(http.MethodPost, "/users", h, tc.body)
			wantCode(t, r, tc.wantStatus, tc.wantCode)
		})
	}
}

// Ensure a wrong method on a known path is 405 with Allow, and an unknown
// path 404, both as JSON.
func TestMethodNotAllowed(t *testing.T) {
	e := newEnv(t, nil)
	for _, tc := range []struct {
		method, path string
		status       int
		allow        string
	}{
		{"GET", "/token", 405, "POST"},
		{"PUT", "/users/me", 405, "GET"},
		{"DELETE", "/admin/users", 405, "GET, POST"},
		{"GET", "/nope", 404, ""},
	} {
		req, _ := http.NewRequest(tc.method, e.ts.URL+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || resp.Header.Get("Allow") != tc.allow || !strings.Contains(string(body), `"detail"`) {
			t.Errorf("%s %s = %d Allow %q %s", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Allow"), body)
		}
	}
}
