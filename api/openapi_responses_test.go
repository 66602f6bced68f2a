package api

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/chatctl/chatctl/configs"
)

// checkerDoc is a small OpenAPI document for testing the checks
// themselves.
const checkerDoc = `{
  "openapi": "3.1.0",
  "paths": {
    "/things/{id}": {
      "get": {
        "operationId": "getThing",
        "responses": {
          "200": {
            "description": "A thing",
            "headers": {"X-Count": {"schema": {"type": "integer"}}, "X-Kind": {"required": true, "schema": {"type": "string", "pattern": "^k"}}},
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}}
          },
          "404": {"$ref": "#/components/responses/NotFound"}
        }
      }
    },
    "/things/new": {
      "get": {"operationId": "newThing", "responses": {"204": {"description": "Nothing"}}}
    },
    "/odd": {
      "get": {"operationId": "odd", "responses": {"200": {"description": "Odd", "content": {"application/json": {"schema": {"type": "array", "uniqueItems": true}}}}}}
    }
  },
  "components": {
    "responses": {
      "NotFound": {"description": "No such thing", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    },
    "schemas": {
      "Error": {"type": "object", "properties": {"detail": {"type": "string"}}, "required": ["detail"]},
      "Thing": {
        "type": "object",
        "properties": {
          "id": {"type": "integer"},
          "name": {"type": ["string", "null"]},
          "at": {"type": "string", "format": "date-time"},
          "tags": {"type": "array", "items": {"type": "string"}},
          "kind": {"enum": ["a", "b"]},
          "meta": {"type": "object"}
        },
        "required": ["id"]
      }
    }
  }
}`

// Ensure the response checks find what they must: a status, media type,
// header or body the description does not allow, and a schema keyword
// they do not know; and pass what the description allows.
func TestSpecChecks(t *testing.T) {
	s, err := newAPISpec([]byte(checkerDoc))
	if err != nil {
		t.Fatal(err)
	}
	jsonH := func(kv ...string) http.Header {
		h := http.Header{"Content-Type": {"application/json"}, "X-Kind": {"kind"}}
		for i := 0; i+1 < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	for _, tc := range []struct {
		name, path string
		status     int
		header     http.Header
		body       string
		want       string // a problem containing this; "" for none
	}{
		{"valid", "/things/1", 200, jsonH("X-Count", "3"), `{"id":1,"name":null,"at":"2026-11-30T12:00:00Z","tags":["x"],"kind":"a","meta":{"any":1}}`, ""},
		{"missing required", "/things/1", 200, jsonH(), `{"name":"x"}`, `required property "id" is missing`},
		{"wrong type", "/things/1", 200, jsonH(), `{"id":"1"}`, "is not of type integer"},
		{"not an integer", "/things/1", 200, jsonH(), `{"id":1.5}`, "is not of type integer"},
		{"null where an object", "/things/1", 200, jsonH(), `{"id":1,"meta":null}`, "body.meta: null is not of type object"},
		{"undocumented property", "/things/1", 200, jsonH(), `{"id":1,"secret":"x"}`, `property "secret" is not documented`},
		{"bad date-time", "/things/1", 200, jsonH(), `{"id":1,"at":"yesterday"}`, "RFC 3339"},
		{"not in enum", "/things/1", 200, jsonH(), `{"id":1,"kind":"c"}`, "is not one of"},
		{"bad item", "/things/1", 200, jsonH(), `{"id":1,"tags":[1]}`, "body.tags[0]: 1 is not of type string"},
		{"not JSON", "/things/1", 200, jsonH(), `{"id":`, "is not JSON"},
		{"undocumented media type", "/things/1", 200, http.Header{"Content-Type": {"text/plain"}, "X-Kind": {"k"}}, `hi`, "Content-Type text/plain is not documented"},
		{"header not an integer", "/things/1", 200, jsonH("X-Count", "many"), `{"id":1}`, `header X-Count: "many" is not an integer`},
		{"header against its pattern", "/things/1", 200, jsonH("X-Kind", "zzz"), `{"id":1}`, `does not match ^k`},
		{"required header missing", "/things/1", 200, http.Header{"Content-Type": {"application/json"}}, `{"id":1}`, "header X-Kind is required"},
		{"referenced response", "/things/1", 404, jsonH(), `{"detail":"no"}`, ""},
		{"referenced response, bad body", "/things/1", 404, jsonH(), `{}`, `required property "detail"`},
		{"undocumented status", "/things/1", 418, jsonH(), `{"detail":"teapot"}`, "status 418 is not documented"},
		{"undocumented 5xx is an Error", "/things/1", 500, jsonH(), `{"detail":"Internal error"}`, ""},
		{"undocumented 5xx, not an Error", "/things/1", 500, http.Header{"Content-Type": {"text/plain"}}, `oops`, "Content-Type text/plain is not documented"},
		{"literal path wins, no content", "/things/new", 204, http.Header{}, ``, ""},
		{"body where no content is documented", "/things/new", 204, http.Header{}, `x`, "no content is documented"},
		{"unknown keyword", "/odd", 200, jsonH(), `[1,1]`, `schema keyword "uniqueItems" is not supported`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op := s.operation(http.MethodGet, tc.path)
			if op == nil {
				t.Fatalf("no operation for %s", tc.path)
			}
			problems := s.checkResponse(op, tc.status, tc.header, []byte(tc.body))
			switch {
			case tc.want == "" && len(problems) > 0:
				t.Errorf("problems %q, want none", problems)
			case tc.want != "" && !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tc.want) }):
				t.Errorf("problems %q, want one containing %q", problems, tc.want)
			}
		})
	}
	for _, tc := range []struct{ method, path, want string }{
		{"GET", "/things/7", "GET /things/{id}"},
		{"GET", "/things/new", "GET /things/new"},
		{"GET", "/things/", ""},
		{"GET", "/things/7/x", ""},
		{"POST", "/things/7", ""},
	} {
		got := ""
		if op := s.operation(tc.method, tc.path); op != nil {
			got = op.key()
		}
		if got != tc.want {
			t.Errorf("operation(%s %s) = %q, want %q", tc.method, tc.path, got, tc.want)
		}
	}
}

// Ensure every operation of /openapi.json answers as described, in
// success and in its documented errors: each request below goes through
// env.request (or dialWS), which checks the status, media type, headers
// and body against the operation's description; this test checks that
// each got the status it aimed at and that a documented operation served
// it. Admin JSON endpoints also answer 413 and 415 as documented, and
// /admin/tokens/inspect leaves out header and claims of a token it cannot
// decode instead of sending null.
func TestOpenAPIResponses(t *testing.T) {
	e := newEnv(t, func(c *configs.Config) { c.HTTP.MaxBody = 2048 })
	spec, err := theSpec()
	if err != nil {
		t.Fatal(err)
	}
	e.addUser("root", "admin")
	e.addUser("alice", "")
	e.addUser("erin", "")
	admin, user := e.issue("root"), e.issue("alice")
	e.login("alice") // a session, for the sessions and revoke cases
	if _, err := e.db.AppendMessage(bg, "general", "alice", "hi", e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	var sessions []map[string]any
	e.call(http.MethodGet, "/admin/users/alice/sessions", admin, nil).into(t, &sessions)
	if len(sessions) != 1 {
		t.Fatalf("alice has %d sessions, want 1", len(sessions))
	}
	huge := `{"name":"` + strings.Repeat("a", 4096) + `"}`
	text := map[string]string{"Content-Type": "text/plain"}
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	withTok := func(tok string, h map[string]string) map[string]string {
		return with(h, "Authorization", "Bearer "+tok)
	}

	type tcase struct {
		method, path string
		header       map[string]string
		body         any
		want         int
	}
	var cases []tcase
	add := func(method, path, tok string, body any, want int) {
		var h map[string]string
		if tok != "" {
			h = bearerHeader(tok)
		}
		cases = append(cases, tcase{method, path, h, body, want})
	}
	addH := func(method, path string, h map[string]string, body any, want int) {
		cases = append(cases, tcase{method, path, h, body, want})
	}

	// Public.
	add("GET", "/", "", nil, 200)
	add("GET", "/health", "", nil, 200)
	add("GET", "/ready", "", nil, 200)
	addH("POST", "/token", form, "username=alice&password=correct+horse+battery", 200)
	addH("POST", "/token", form, "username=alice&password=wrong-password", 401)
	addH("POST", "/token", form, "username=alice", 422)
	addH("POST", "/token", form, "grant_type=refresh_token&refresh_token=nonsense", 400)
	addH("POST", "/token", form, "username="+strings.Repeat("a", 4096), 413)
	add("GET", "/users/me", user, nil, 200)
	add("GET", "/users/me", "", nil, 401)
	add("POST", "/users", admin, map[string]any{"username": "carol", "password": testPassword}, 201)
	add("POST", "/users", "", map[string]any{"username": "dan", "password": testPassword}, 403)
	add("POST", "/users", admin, map[string]any{"username": "carol", "password": testPassword}, 409)
	add("POST", "/users", "not-a-token", map[string]any{"username": "dan", "password": testPassword}, 401)
	addH("POST", "/users", withTok(admin, text), `{"username":"dan"}`, 415)
	add("POST", "/users", admin, map[string]any{"username": "-bad", "password": testPassword}, 422)
	addH("POST", "/users", withTok(admin, map[string]string{"Content-Type": "application/json"}), huge, 413)
	add("GET", "/ws", "", nil, 401)
	add("GET", "/ws", user, nil, 400)
	addH("GET", "/ws", withTok(user, map[string]string{"Origin": "https://evil.example"}), nil, 403)
	add("GET", "/openapi.json", "", nil, 200)
	add("GET", "/asyncapi.json", "", nil, 200)
	add("GET", "/metrics", "", nil, 200)
	add("GET", "/docs", "", nil, 200)
	add("GET", "/chat", "", nil, 200)

	// Admin: the JSON endpoints with their errors, 413 and 415 included.
	add("GET", "/admin/users", admin, nil, 200)
	add("GET", "/admin/users", "", nil, 401)
	add("GET", "/admin/users", user, nil, 403)
	add("POST", "/admin/users", admin, map[string]any{"name": "dave", "password": testPassword}, 201)
	add("POST", "/admin/users", admin, map[string]any{"name": "dave", "password": testPassword, "ignore_exists": true}, 200)
	add("POST", "/admin/users", admin, map[string]any{"name": "dave", "password": testPassword}, 409)
	add("POST", "/admin/users", admin, "{", 422)
	addH("POST", "/admin/users", withTok(admin, text), `{"name":"x"}`, 415)
	addH("POST", "/admin/users", withTok(admin, map[string]string{"Content-Type": "application/json"}), huge, 413)
	add("GET", "/admin/users/alice", admin, nil, 200)
	add("GET", "/admin/users/nobody", admin, nil, 404)
	add("GET", "/admin/users/-bad", admin, nil, 422)
	add("DELETE", "/admin/users/-bad", admin, nil, 422)
	add("GET", "/admin/users/-bad/sessions", admin, nil, 422)
	add("PUT", "/admin/users/dave/password", admin, map[string]any{"password": testPassword + "!"}, 200)
	add("PUT", "/admin/users/dave/password", admin, map[string]any{"password": "short"}, 422)
	add("PUT", "/admin/users/nobody/password", admin, map[string]any{"password": testPassword}, 404)
	addH("PUT", "/admin/users/dave/password", withTok(admin, text), `{}`, 415)
	addH("PUT", "/admin/users/dave/password", withTok(admin, map[string]string{"Content-Type": "application/json"}), huge, 413)
	add("PUT", "/admin/users/dave/role", admin, map[string]any{"role": "admin"}, 200)
	add("PUT", "/admin/users/dave/role", admin, map[string]any{"role": "god"}, 422)
	add("PUT", "/admin/users/nobody/role", admin, map[string]any{"role": "user"}, 404)
	addH("PUT", "/admin/users/dave/role", withTok(admin, text), `{}`, 415)
	add("PUT", "/admin/users/dave/disabled", admin, map[string]any{"disabled": true}, 200)
	add("PUT", "/admin/users/nobody/disabled", admin, map[string]any{"disabled": true}, 404)
	add("PUT", "/admin/users/dave/disabled", admin, `{"disabled":"yes"}`, 422)
	addH("PUT", "/admin/users/dave/disabled", withTok(admin, text), `{}`, 415)
	add("POST", "/admin/users/alice/tokens", admin, map[string]any{"ttl": "10m"}, 200)
	add("POST", "/admin/users/dave/tokens", admin, map[string]any{}, 409)
	add("POST", "/admin/users/alice/tokens", admin, map[string]any{"ttl": "100000h"}, 422)
	add("POST", "/admin/users/nobody/tokens", admin, map[string]any{}, 404)
	addH("POST", "/admin/users/alice/tokens", withTok(admin, text), `{}`, 415)
	add("GET", "/admin/users/alice/sessions", admin, nil, 200)
	add("GET", "/admin/users/nobody/sessions", admin, nil, 404)
	add("POST", "/admin/revoke", admin, map[string]any{"id": sessions[0]["id"]}, 200)
	add("POST", "/admin/revoke", admin, map[string]any{"id": "ses_nonexistent"}, 404)
	add("POST", "/admin/revoke", admin, map[string]any{"id": "some-jti"}, 200)
	add("POST", "/admin/revoke", admin, map[string]any{"user": "erin", "all": true}, 200)
	add("POST", "/admin/revoke", admin, map[string]any{}, 422)
	addH("POST", "/admin/revoke", withTok(admin, text), `{}`, 415)
	add("POST", "/admin/tokens/inspect", admin, map[string]any{"token": user}, 200)
	add("POST", "/admin/tokens/inspect", admin, map[string]any{"token": "not.a.token"}, 200)
	add("POST", "/admin/tokens/inspect", admin, `{"token":`, 422)
	addH("POST", "/admin/tokens/inspect", withTok(admin, text), `{}`, 415)
	addH("POST", "/admin/tokens/inspect", withTok(admin, map[string]string{"Content-Type": "application/json"}), huge, 413)
	add("GET", "/admin/rooms", admin, nil, 200)
	add("GET", "/rooms", user, nil, 200)
	add("GET", "/rooms", "", nil, 401)
	add("POST", "/admin/rooms", admin, map[string]any{"name": "board", "private": true, "members": []string{"alice"}}, 201)
	add("POST", "/admin/rooms", admin, map[string]any{"name": "board", "private": true}, 409)
	add("POST", "/admin/rooms", admin, map[string]any{"name": "x", "private": true, "members": []string{"nobody"}}, 404)
	add("POST", "/admin/rooms", admin, map[string]any{"name": "x"}, 422)
	add("POST", "/admin/rooms", user, map[string]any{"name": "x", "private": true}, 403)
	addH("POST", "/admin/rooms", withTok(admin, text), `{}`, 415)
	addH("POST", "/admin/rooms", withTok(admin, map[string]string{"Content-Type": "application/json"}), huge, 413)
	add("GET", "/admin/rooms/board/members", admin, nil, 200)
	add("GET", "/admin/rooms/general/members", admin, nil, 404)
	add("GET", "/admin/rooms/@alice+alice/members", admin, nil, 422)
	add("PUT", "/admin/rooms/board/members/erin", admin, nil, 200)
	add("PUT", "/admin/rooms/board/members/nobody", admin, nil, 404)
	add("PUT", "/admin/rooms/board/members/-bad", admin, nil, 422)
	add("DELETE", "/admin/rooms/board/members/erin", admin, nil, 200)
	add("DELETE", "/admin/rooms/board/members/erin", admin, nil, 404)
	add("GET", "/admin/access", admin, nil, 200)
	add("PUT", "/admin/access", admin, map[string]any{"user": "*", "pattern": "ops-*", "permission": "deny"}, 200)
	add("PUT", "/admin/access", admin, map[string]any{"user": "nobody", "pattern": "ops-*", "permission": "deny"}, 404)
	add("PUT", "/admin/access", admin, map[string]any{"user": "alice", "pattern": "a*b", "permission": "deny"}, 422)
	addH("PUT", "/admin/access", withTok(admin, text), `{}`, 415)
	addH("PUT", "/admin/access", withTok(admin, map[string]string{"Content-Type": "application/json"}), huge, 413)
	add("POST", "/admin/access/reset", admin, map[string]any{"user": "*", "pattern": "ops-*"}, 200)
	add("POST", "/admin/access/reset", admin, map[string]any{"user": "nobody"}, 404)
	add("POST", "/admin/access/reset", admin, map[string]any{"user": "alice", "pattern": "**"}, 422)
	addH("POST", "/admin/access/reset", withTok(admin, text), `{}`, 415)
	addH("POST", "/admin/access/reset", withTok(admin, map[string]string{"Content-Type": "application/json"}), huge, 413)
	add("DELETE", "/admin/rooms/general", admin, nil, 200)
	add("DELETE", "/admin/rooms/general", admin, nil, 404)
	add("GET", "/admin/keys", admin, nil, 200)
	add("POST", "/admin/keys/rotate", admin, nil, 200)
	add("POST", "/admin/keys/rotate", admin, map[string]any{"force": true}, 422)
	addH("POST", "/admin/keys/rotate", withTok(admin, text), `{}`, 415)
	add("POST", "/admin/keys/nokid/retire", admin, nil, 404)
	add("POST", "/admin/users/alice/unlock", admin, nil, 200)
	add("POST", "/admin/users/nobody/unlock", admin, nil, 404)
	add("POST", "/admin/users/alice/unlock", user, nil, 403)
	add("DELETE", "/admin/users/dave", admin, nil, 200)
	add("DELETE", "/admin/users/dave", admin, nil, 404)

	for _, c := range cases {
		if spec.operation(c.method, c.path) == nil {
			t.Errorf("%s %s: no operation of /openapi.json serves it", c.method, c.path)
			continue
		}
		r := e.request(c.method, c.path, c.header, c.body)
		if r.status != c.want {
			t.Errorf("%s %s = %d, want %d; body %s", c.method, c.path, r.status, c.want, truncate(r.body))
		}
		if c.path == "/admin/tokens/inspect" && c.want == 200 {
			m := r.json(t)
			_, hasHeader := m["header"]
			if valid, _ := m["valid"].(bool); valid != hasHeader {
				t.Errorf("inspect: valid %v but header present %v: %s", valid, hasHeader, r.body)
			}
		}
	}

	// Key retirement: the rotated-out key retires (200); the active one
	// cannot (409). A fresh admin token, signed by the active key.
	admin = e.issue("root")
	var keys []map[string]any
	e.call(http.MethodGet, "/admin/keys", admin, nil).into(t, &keys)
	for _, k := range keys {
		want := http.StatusOK
		if k["state"] == "active" {
			want = http.StatusConflict
		}
		if r := e.call(http.MethodPost, "/admin/keys/"+k["kid"].(string)+"/retire", admin, nil); r.status != want {
			t.Errorf("retire %v key: %d, want %d; %s", k["state"], r.status, want, truncate(r.body))
		}
	}

	// The upgrade itself: 101, checked by dialWS. (alice's login session
	// was revoked above, so the issued token.)
	conn, r, err := e.dialWS(e.issue("alice"), false, nil)
	if err != nil {
		t.Fatalf("dial /ws: %v (%d %s)", err, r.status, r.body)
	}
	conn.Close()
	if r.status != http.StatusSwitchingProtocols {
		t.Errorf("/ws upgrade = %d, want 101", r.status)
	}
}

// Ensure every operation of /openapi.json has a unique operationId and
// declares its security itself (an empty list for public operations), so
// that no operation inherits a requirement by accident.
func TestOpenAPIOperationIDs(t *testing.T) {
	spec, err := theSpec()
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, op := range spec.ops {
		if op.id == "" {
			t.Errorf("%s has no operationId", op.key())
		} else if other, dup := ids[op.id]; dup {
			t.Errorf("%s and %s share the operationId %q", other, op.key(), op.id)
		}
		ids[op.id] = op.key()
		if _, ok := op.op["security"]; !ok {
			t.Errorf("%s declares no security (public operations say \"security\": [])", op.key())
		}
	}
}
