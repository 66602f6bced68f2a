package api

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chatctl/chatctl/admin"
	"github.com/chatctl/chatctl/configs"
	"github.com/chatctl/chatctl/store"
)

// auditCase is one admin action, done through an Admin (the Service on
// the store, or the remote Admin on the socket) or through the /admin API,
// and the one entry it must add. Expectations are regular expressions.
type auditCase struct {
	name                            string
	action, target, outcome, detail string
	before                          func() // setup that may add entries of its own
	viaAdmin                        func(ctx context.Context, a admin.Admin) error
	viaHTTP                         func(e *env, tok string) response
}

// auditCases runs in order on a store holding root (admin) and a room
// "general"; each case relies on the ones before it.
func auditCases(e *env) []auditCase {
	var jti, oldKid string
	issue := func() string {
		t, err := e.svc.IssueToken(bg, "carol", 0)
		if err != nil {
			e.t.Fatal(err)
		}
		return t.JTI
	}
	kid := func() string {
		keys, err := e.svc.Keys(bg)
		if err != nil {
			e.t.Fatal(err)
		}
		oldKid = keys[0].Kid
		return oldKid
	}
	return []auditCase{
		{"AddUser", admin.ActionUserAdd, "^carol$", "ok", "^role user$",
			nil,
			func(ctx context.Context, a admin.Admin) error {
				_, err := a.AddUser(ctx, admin.AddUserRequest{Name: "Carol", Password: testPassword})
				return err
			},
			func(e *env, tok string) response {
				return e.call(http.MethodPost, "/admin/users", tok, map[string]any{"name": "Carol", "password": testPassword})
			}},
		{"AddUserExists", admin.ActionUserAdd, "^carol$", "failed", "already exists",
			nil,
			func(ctx context.Context, a admin.Admin) error {
				_, err := a.AddUser(ctx, admin.AddUserRequest{Name: "carol", Password: testPassword})
				return err
			},
			func(e *env, tok string) response {
				return e.call(http.MethodPost, "/admin/users", tok, map[string]any{"name": "carol", "password": testPassword})
			}},
		{"SetPassword", admin.ActionUserPasswd, "^carol$", "ok", "^tokens revoked$",
			nil,
			func(ctx context.Context, a admin.Admin) error {
				_, err := a.SetPassword(ctx, "carol", "another password")
				return err
			},
			func(e *env, tok string) response {
				return e.call(http.MethodPut, "/admin/users/carol/password", tok, map[string]any{"password": "another password"})
			}},
		{"SetRole", admin.ActionUserRole, "^carol$", "ok", "^role admin$",
			nil,
			func(ctx context.Context, a admin.Admin) error {
				_, err := a.SetRole(ctx, "carol", "admin")
				return err
			},
			func(e *env, tok string) response {
				return e.call(http.MethodPut, "/admin/users/carol/role", tok, map[string]any{"role": "admin"})
			}},
		{"Disable", admin.ActionUserDisable, "^carol$", "ok", "^tokens revoked$",
			nil,
			func(ctx context.Context, a admin.Admin) error {
				_, err := a.SetDisabled(ctx, "carol", true)
				return err
			},
			func(e *env, tok string) response {
				return e.call(http.MethodPut, "/admin/users/carol/disabled", tok, map[string]any{"disabled": true})
			}},
		{"Enable", admin.ActionUserEnable, "^carol$", "ok", "^$",
			nil,
			func(ctx context.Context, a admin.Admin) error {
				_, err := a.SetDisabled(ctx, "carol", false)
				return err
			},
			func(e *env, tok string) response {
				return e.call(http.MethodPut, "/admin/users/carol/disabled", tok, map[string]any{"disabled": false})
			}},
		{"Unlock", admin.ActionUserUnlock, "^carol$", "ok", "^(cleared 0 counters|no server running: nothing to clear)$",
			nil,
			func(ctx context.Context, a admin.Admin) error {
				_, err := a.UnlockUser(ctx, "carol")
				return err
			},
			func(e *env, tok string) response {
				return e.call(http.MethodPost, "/admin/users/carol/unlock", tok, nil)
			}},
		{"IssueToken", admin.ActionTokenIssue, "^carol$", "ok", `^jti [\w-]+, expires \d{4}-`,
			nil,
			func(ctx context.Context, a admin.Admin) error {
				_, err := a.IssueToken(ctx, "carol", 0)
				return err
			},
			func(e *env, tok string) response {
				return e.call(http.MethodPost, "/admin/users/carol/tokens", tok, map[string]any{})
			}},
		{"RevokeUser", admin.ActionTokenRevoke, "^carol$", "ok", "^every token and session$",
			nil,
			func(ctx context.Context, a admin.Admin) error {
				_, err := a.Revoke(ctx, admin.RevokeRequest{User: "carol", All: true})
				return err
			},
			func(e *env, tok string) response {
				return e.call(http.MethodPost, "/admin/revoke", tok, map[string]any{"user": "carol", "all": true})
			}},
		{"RevokeJTI", admin.ActionTokenRevoke, `^[\w-]{16,}$`, "ok", "^token$",
			func() { jti = issue() },
			func(ctx context.Context, a admin.Admin) error {
				_, err := a.Revoke(ctx, admin.RevokeRequest{ID: jti})
				return err
			},
			func(e *env, tok string) response {
				return e.call(http.MethodPost, "/admin/revoke", tok, map[string]any{"id": jti})
			}},
		{"RotateKey", admin.ActionKeyRotate, `^\w+$`, "ok", "^$",
			nil,
			func(ctx context.Context, a admin.Admin) error {
				kid()
				_, err := a.RotateKey(ctx)
				return err
			},
			func(e *env, tok string) response {
				kid()
				return e.call(http.MethodPost, "/admin/keys/rotate", tok, nil)
			}},
		{"RetireKey", admin.ActionKeyRetire, `^\w+$`, "ok", "^$",
			nil,
			func(ctx context.Context, a admin.Admin) error {
				_, err := a.RetireKey(ctx, oldKid)
				return err
			},
			func(e *env, tok string) response {
				return e.call(http.MethodPost, "/admin/keys/"+oldKid+"/retire", tok, nil)
			}},
		{"RetireActiveKey", admin.ActionKeyRetire, `^\w+$`, "failed", "active signing key",
			nil,
			func(ctx context.Context, a admin.Admin) error {
				_, err := a.RetireKey(ctx, kid())
				return err
			},
			func(e *env, tok string) response {
				return e.call(http.MethodPost, "/admin/keys/"+kid()+"/retire", tok, nil)
			}},
		{"DeleteRoom", admin.ActionRoomDelete, "^general$", "ok", "^$",
			nil,
			func(ctx context.Context, a admin.Admin) error { return a.DeleteRoom(ctx, "general") },
			func(e *env, tok string) response { return e.call(http.MethodDelete, "/admin/rooms/general", tok, nil) }},
		{"RemoveUser", admin.ActionUserRemove, "^carol$", "ok", "^$",
			nil,
			func(ctx context.Context, a admin.Admin) error { return a.RemoveUser(ctx, "carol") },
			func(e *env, tok string) response { return e.call(http.MethodDelete, "/admin/users/carol", tok, nil) }},
		{"RemoveUnknown", admin.ActionUserRemove, "^nobody$", "failed", "not found",
			nil,
			func(ctx context.Context, a admin.Admin) error { return a.RemoveUser(ctx, "nobody") },
			func(e *env, tok string) response { return e.call(http.MethodDelete, "/admin/users/nobody", tok, nil) }},
		{"BadName", admin.ActionUserRole, `^"Bad\\x00Name"$`, "failed", "invalid username",
			nil,
			func(ctx context.Context, a admin.Admin) error {
				_, err := a.SetRole(ctx, "Bad\x00Name", "user")
				return err
			},
			func(e *env, tok string) response {
				return e.call(http.MethodPut, "/admin/users/"+url.PathEscape("Bad\x00Name")+"/role", tok, map[string]any{"role": "user"})
			}},
	}
}

// lastSeq returns the sequence number of the newest audit entry (0: none).
func lastSeq(t *testing.T, db *store.DB) uint64 {
	t.Helper()
	list, err := db.Audit(store.AuditQuery{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) == 0 {
		return 0
	}
	return list[0].Seq
}

// wantOneEntry fails unless exactly one entry came after seq, matching c
// and made by actor from from.
func wantOneEntry(t *testing.T, db *store.DB, seq uint64, c auditCase, actor, from string) {
	t.Helper()
	all, err := db.Audit(store.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var got []store.AuditEntry
	for _, e := range all {
		if e.Seq > seq {
			got = append(got, e)
		}
	}
	if len(got) != 1 {
		t.Fatalf("%d new entries, want 1: %+v", len(got), got)
	}
	e := got[0]
	check := func(field, value, pattern string) {
		if !regexp.MustCompile(pattern).MatchString(value) {
			t.Errorf("%s = %q, want a match for %s (entry %+v)", field, value, pattern, e)
		}
	}
	if e.Action != c.action || e.Actor != actor || e.From != from || e.Time.IsZero() {
		t.Errorf("entry %+v: want action %s by %s from %s", e, c.action, actor, from)
	}
	check("target", e.Target, c.target)
	check("outcome", e.Outcome, "^"+c.outcome+"$")
	check("detail", e.Detail, c.detail)
}

// newAuditEnv is a server with an admin root and a room "general".
func newAuditEnv(t *testing.T) *env {
	e := newEnv(t, nil)
	e.addUser("root", "admin")
	if _, err := e.db.AppendMessage(bg, "general", "root", "hello", time.Now()); err != nil {
		t.Fatal(err)
	}
	return e
}

// Ensure every admin action adds exactly one audit entry with who, what,
// on whom, from where and the outcome, whichever way it came: the CLI on
// the store (the Service; this OS user, "local"), the admin socket (the
// peer's OS user, "socket") or the /admin API (the admin, the client's
// address).
func TestAuditAdminActions(t *testing.T) {
	me := admin.OSUser(uint32(os.Geteuid()), true)
	paths := []struct {
		name        string
		actor, from string
		run         func(t *testing.T, e *env, tok string, c auditCase) error
	}{
		{"Service", me, admin.FromLocal, func(t *testing.T, e *env, _ string, c auditCase) error {
			return c.viaAdmin(bg, e.svc)
		}},
		{"Socket", me, admin.FromSocket, func(t *testing.T, e *env, _ string, c auditCase) error {
			r, _ := e.serveSocket(t)
			return c.viaAdmin(bg, r)
		}},
		{"HTTP", "root", "127.0.0.1", func(t *testing.T, e *env, tok string, c auditCase) error {
			r := e.on(t).viaHTTP(c, tok)
			if r.status >= 300 {
				return &httpError{r}
			}
			return nil
		}},
	}
	for _, p := range paths {
		t.Run(p.name, func(t *testing.T) {
			e := newAuditEnv(t)
			var tok string
			for _, c := range auditCases(e.on(t)) {
				t.Run(c.name, func(t *testing.T) {
					if c.before != nil {
						c.before()
					}
					// A fresh token each time: RetireKey ends the old one.
					tok = e.on(t).issue("root")
					seq := lastSeq(t, e.db)
					err := p.run(t, e, tok, c)
					if (err == nil) != (c.outcome == "ok") {
						t.Fatalf("call: %v, want outcome %s", err, c.outcome)
					}
					wantOneEntry(t, e.db, seq, c, p.actor, p.from)
				})
			}
			// Neither the password nor any token is anywhere in the file.
			data, err := os.ReadFile(e.cfg.DB)
			if err != nil {
				t.Fatal(err)
			}
			for _, secret := range []string{testPassword, "another password", tok} {
				if bytes.Contains(data, []byte(secret)) {
					t.Errorf("the store holds %q", secret)
				}
			}
		})
	}
}

// viaHTTP runs c's HTTP call.
func (e *env) viaHTTP(c auditCase, tok string) response { return c.viaHTTP(e, tok) }

// httpError is a failed /admin answer as an error.
type httpError struct{ r response }

func (h *httpError) Error() string { return string(h.r.body) }

// Ensure the socket records the peer's own OS user, not the server's idea
// of it: a connection whose credentials are unknown is "unknown".
func TestAuditSocketUnknownPeer(t *testing.T) {
	e := newAuditEnv(t)
	seq := lastSeq(t, e.db)
	req := httptest.NewRequest(http.MethodPost, "/admin/keys/rotate", nil)
	rec := httptest.NewRecorder()
	e.srv.SocketHandler().ServeHTTP(rec, req) // no SocketConnContext: no peer
	if rec.Code != http.StatusOK {
		t.Fatalf("rotate: %d %s", rec.Code, rec.Body)
	}
	wantOneEntry(t, e.db, seq, auditCase{action: admin.ActionKeyRotate, target: `^\w+$`, outcome: "ok", detail: "^$"}, "unknown", admin.FromSocket)
}

// Ensure logins (ok; failed for an unknown user, a wrong password, a
// disabled user, an invalid name), sign-ups, users an admin creates with
// POST /users and a reused refresh token are recorded once each, from the client's address, with the reason of a
// failure; the password and the tokens never reach the store.
func TestAuditAuthEvents(t *testing.T) {
	e := newEnv(t, func(c *configs.Config) { c.Signup = true; c.TrustedProxies = []string{"127.0.0.1/32"} })
	e.addUser("alice", "")
	e.addUser("dora", "")
	if _, err := e.svc.SetDisabled(bg, "dora", true); err != nil {
		t.Fatal(err)
	}
	me := admin.OSUser(uint32(os.Geteuid()), true)
	const wrong = "wrong password 4711"
	long := strings.Repeat("X", 5000) + "\x01"
	seq := lastSeq(t, e.db)

	ok := e.login("alice")
	for _, f := range []url.Values{
		loginForm("nobody", wrong),
		loginForm("alice", wrong),
		loginForm("dora", testPassword),
		loginForm(long, wrong),
	} {
		if r := e.postToken(f, "203.0.113.9"); r.status != http.StatusUnauthorized {
			t.Fatalf("login %s: %d", f.Get("username")[:5], r.status)
		}
	}
	next := e.refresh(ok.RefreshToken, "203.0.113.10")
	if next.status != http.StatusOK {
		t.Fatalf("refresh: %d %s", next.status, next.body)
	}
	if r := e.refresh(ok.RefreshToken, "203.0.113.11"); r.status != http.StatusBadRequest {
		t.Fatalf("reuse: %d %s", r.status, r.body)
	}
	if r := e.request(http.MethodPost, "/users", map[string]string{"X-Forwarded-For": "203.0.113.12"}, map[string]any{"username": "erin", "password": wrong}); r.status != http.StatusCreated {
		t.Fatalf("sign-up: %d %s", r.status, r.body)
	}
	e.addUser("root", "admin")
	if r := e.request(http.MethodPost, "/users", with(bearerHeader(e.issue("root")), "X-Forwarded-For", "203.0.113.13"), map[string]any{"username": "fred", "password": wrong, "role": "admin"}); r.status != http.StatusCreated {
		t.Fatalf("admin creates: %d %s", r.status, r.body)
	}

	want := []store.AuditEntry{
		{Action: admin.ActionLoginOK, Actor: "alice", From: "127.0.0.1", Outcome: "ok"},
		{Action: admin.ActionLoginFailed, Actor: "nobody", From: "203.0.113.9", Outcome: "failed", Detail: "unknown user"},
		{Action: admin.ActionLoginFailed, Actor: "alice", From: "203.0.113.9", Outcome: "failed", Detail: "wrong password"},
		{Action: admin.ActionLoginFailed, Actor: "dora", From: "203.0.113.9", Outcome: "failed", Detail: "user disabled"},
		{Action: admin.ActionLoginFailed, Actor: `"` + strings.Repeat("X", 64) + `…"`, From: "203.0.113.9", Outcome: "failed", Detail: "invalid username"},
		{Action: admin.ActionRefreshReuse, Actor: "alice", From: "203.0.113.11", Outcome: "failed"},
		{Action: admin.ActionUserSignup, Actor: "erin", From: "203.0.113.12", Target: "erin", Outcome: "ok", Detail: "role user"},
		{Action: admin.ActionUserAdd, Actor: me, From: admin.FromLocal, Target: "root", Outcome: "ok", Detail: "role admin"},
		{Action: admin.ActionTokenIssue, Actor: me, From: admin.FromLocal, Target: "root", Outcome: "ok"},
		{Action: admin.ActionUserAdd, Actor: "root", From: "203.0.113.13", Target: "fred", Outcome: "ok", Detail: "role admin"},
	}
	var got []store.AuditEntry
	// Logins are recorded asynchronously: wait for the writer.
	waitFor(t, "the audit entries", func() bool {
		all, err := e.db.Audit(store.AuditQuery{})
		if err != nil {
			t.Fatal(err)
		}
		got = got[:0]
		for _, x := range all {
			if x.Seq > seq {
				got = append(got, x)
			}
		}
		return len(got) >= len(want)
	})
	if len(got) != len(want) {
		t.Fatalf("%d entries, want %d: %+v", len(got), len(want), got)
	}
	// The asynchronous writer may commit in another order than the
	// requests ran; match by action and actor.
	for _, w := range want {
		found := false
		for _, g := range got {
			if g.Action == w.Action && g.Actor == w.Actor && g.From == w.From && g.Outcome == w.Outcome &&
				(w.Detail == "" || g.Detail == w.Detail) && (w.Target == "" || g.Target == w.Target) {
				found = true
			}
		}
		if !found {
			t.Errorf("no entry %+v in %+v", w, got)
		}
	}
	for _, g := range got {
		if g.Action == admin.ActionRefreshReuse && !strings.HasPrefix(g.Target, store.SessionPrefix) {
			t.Errorf("refresh reuse target = %q, want the session id", g.Target)
		}
	}
	data, err := os.ReadFile(e.cfg.DB)
	if err != nil {
		t.Fatal(err)
	}
	var tr tokenResponse
	next.into(t, &tr)
	for _, secret := range []string{testPassword, wrong, ok.AccessToken, ok.RefreshToken, tr.AccessToken, tr.RefreshToken, strings.Repeat("X", 65)} {
		if bytes.Contains(data, []byte(secret)) {
			t.Errorf("the store holds %.40q", secret)
		}
	}
}

// Ensure GET /admin/audit lists entries for admins only, filters them,
// and refuses bad parameters with 422; the metric of dropped entries is
// exported (0 here).
func TestAuditEndpoint(t *testing.T) {
	e := newAuditEnv(t)
	tok := e.issue("root")
	e.addUser("alice", "")
	if _, err := e.svc.RotateKey(bg); err != nil {
		t.Fatal(err)
	}
	var list []store.AuditEntry
	r := e.call(http.MethodGet, "/admin/audit", tok, nil)
	r.into(t, &list)
	if r.status != http.StatusOK || len(list) != 4 || list[0].Target != "root" || list[3].Action != admin.ActionKeyRotate {
		t.Fatalf("GET /admin/audit = %d %+v", r.status, list)
	}
	r = e.call(http.MethodGet, "/admin/audit?user=ALICE&action=user&limit=5&since="+url.QueryEscape(time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)), tok, nil)
	list = nil
	r.into(t, &list)
	if r.status != http.StatusOK || len(list) != 1 || list[0].Target != "alice" || list[0].Action != admin.ActionUserAdd {
		t.Fatalf("filtered = %d %+v", r.status, list)
	}
	r = e.call(http.MethodGet, "/admin/audit?limit=1", tok, nil)
	list = nil
	r.into(t, &list)
	if len(list) != 1 || list[0].Action != admin.ActionKeyRotate {
		t.Fatalf("limit 1 = %+v (want the newest)", list)
	}
	r = e.call(http.MethodGet, "/admin/audit?since="+url.QueryEscape(time.Now().Add(time.Hour).UTC().Format(time.RFC3339)), tok, nil)
	if r.status != http.StatusOK || string(bytes.TrimSpace(r.body)) != "[]" {
		t.Fatalf("nothing since = %d %s", r.status, r.body)
	}
	for _, q := range []string{"limit=0", "limit=10001", "limit=x", "since=yesterday", "user=" + strings.Repeat("u", 300)} {
		wantCode(t, e.call(http.MethodGet, "/admin/audit?"+q, tok, nil), http.StatusUnprocessableEntity, "bad_request")
	}
	wantUnauthorized(t, e.call(http.MethodGet, "/admin/audit", "", nil))
	if r := e.call(http.MethodGet, "/admin/audit", e.issue("alice"), nil); r.status != http.StatusForbidden {
		t.Fatalf("non-admin: %d", r.status)
	}
	if v, ok := e.scrape(t)["chatctl_audit_dropped_total"]; !ok || v != 0 {
		t.Fatalf("chatctl_audit_dropped_total = %v, %v", v, ok)
	}
}

// Ensure the remote Admin's Audit reads the same entries over the socket,
// with every filter carried.
func TestAuditRemote(t *testing.T) {
	e := newAuditEnv(t)
	e.addUser("alice", "")
	r, _ := e.serveSocket(t)
	all, err := r.Audit(bg, admin.AuditQuery{})
	if err != nil || len(all) != 2 {
		t.Fatalf("Audit = %+v, %v", all, err)
	}
	got, err := r.Audit(bg, admin.AuditQuery{User: "alice", Action: "user.add", Limit: 10, Since: all[0].Time})
	if err != nil || len(got) != 1 || got[0] != all[1] {
		t.Fatalf("filtered = %+v, %v", got, err)
	}
	if _, err := r.Audit(bg, admin.AuditQuery{Limit: -1}); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("limit -1: %v", err)
	}
}
