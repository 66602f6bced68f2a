package api

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"github.com/chatctl/chatctl/admin"
	"github.com/chatctl/chatctl/auth"
	"github.com/chatctl/chatctl/store"
)

// forger makes tokens the way an attacker with more or less knowledge
// would: it knows the store's signing key where the attack needs it.
type forger struct {
	t      testing.TB
	key    store.Key
	issuer string
	now    time.Time
}

func (e *env) forger() *forger {
	e.t.Helper()
	if _, err := e.svc.Keys(bg); err != nil { // creates the first key
		e.t.Fatal(err)
	}
	keys, err := e.db.Keys()
	if err != nil || len(keys) == 0 {
		e.t.Fatalf("keys: %v %v", keys, err)
	}
	return &forger{t: e.t, key: keys[0], issuer: e.cfg.Token.Issuer, now: e.clock.Now()}
}

// claims returns valid claims for the user name of the store, which tests
// then spoil one at a time.
func (f *forger) claims(e *env, name string) jwt.MapClaims {
	u, err := e.db.User(name)
	if err != nil {
		f.t.Fatal(err)
	}
	return jwt.MapClaims{
		"sub": u.Name, "iss": f.issuer, "role": u.Role, "ver": u.TokenVersion,
		"iat": f.now.Unix(), "exp": f.now.Add(10 * time.Minute).Unix(),
		"jti": auth.RandomID(16),
	}
}

// sign signs claims with method and key, writing kid into the header.
func (f *forger) sign(method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	f.t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

// hs256 signs claims as a genuine token would be signed.
func (f *forger) hs256(claims jwt.MapClaims) string {
	return f.sign(jwt.SigningMethodHS256, f.key.Secret, f.key.Kid, claims)
}

func seg(v any) string {
	data, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(data)
}

// raw builds a token from a header and claims, with an HMAC-SHA256
// signature under secret (nil: empty signature).
func raw(header map[string]any, claims jwt.MapClaims, secret []byte) string {
	in := seg(header) + "." + seg(claims)
	if secret == nil {
		return in + "."
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(in))
	return in + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// tamper replaces the claims of a signed token, keeping its signature.
func tamper(t testing.TB, tok string, change func(map[string]any)) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	data, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	change(c)
	return parts[0] + "." + seg(c) + "." + parts[2]
}

// dialWS opens /ws with the Authorization header tok, or ?token=tok when
// inQuery is set.
func (e *env) dialWS(tok string, inQuery bool, header http.Header) (*websocket.Conn, response, error) {
	u := "ws" + strings.TrimPrefix(e.ts.URL, "http") + "/ws"
	if header == nil {
		header = http.Header{}
	}
	if inQuery {
		u += "?token=" + url.QueryEscape(tok)
	} else if tok != "" {
		header.Set("Authorization", "Bearer "+tok)
	}
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	conn, resp, err := d.Dial(u, header)
	var r response
	if resp != nil {
		r.status, r.header = resp.StatusCode, resp.Header
		if resp.Body != nil {
			r.body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		checkSpec(e.t, http.MethodGet, "/ws", r.status, r.header, r.body)
	}
	return conn, r, err
}

// wantWSRefused fails unless the upgrade was refused with the 401 JSON.
func (e *env) wantWSRefused(t *testing.T, tok string, inQuery bool, header http.Header) {
	t.Helper()
	conn, r, err := e.dialWS(tok, inQuery, header)
	if err == nil {
		conn.Close()
		t.Fatal("the WebSocket upgrade succeeded")
	}
	if !errors.Is(err, websocket.ErrBadHandshake) {
		t.Fatalf("dial: %v", err)
	}
	wantUnauthorized(t, r)
}

// Ensure every JWT attack of RFC 8725 is refused, on /users/me and on /ws,
// with the seed's 401 body and WWW-Authenticate: Bearer.
func TestTokenAttacks(t *testing.T) {
	e := newEnv(t, nil)
	e.addUser("alice", "")
	e.addUser("root", "admin")
	f := e.forger()
	valid := e.login("alice").AccessToken

	// The forger's own genuine token must pass, or the attacks below would
	// prove nothing.
	control := f.hs256(f.claims(e, "alice"))
	if r := e.call(http.MethodGet, "/users/me", control, nil); r.status != http.StatusOK {
		t.Fatalf("control token refused: %d %s", r.status, r.body)
	}
	conn, _, err := e.dialWS(control, true, nil)
	if err != nil {
		t.Fatalf("control token refused on /ws: %v", err)
	}
	conn.Close()

	spoil := func(change func(jwt.MapClaims)) jwt.MapClaims {
		c := f.claims(e, "alice")
		change(c)
		return c
	}
	otherSecret := make([]byte, 32)
	rand.Read(otherSecret)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	good := f.claims(e, "alice")
	asAdmin := spoil(func(c jwt.MapClaims) { c["role"] = "admin" })

	attacks := []struct {
		name string
		tok  string
	}{
		{"AlgNone", f.sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, f.key.Kid, asAdmin)},
		{"AlgNoneRaw", raw(map[string]any{"alg": "none", "typ": "JWT", "kid": f.key.Kid}, good, nil)},
		{"AlgNoneUpperCase", raw(map[string]any{"alg": "NONE", "kid": f.key.Kid}, good, nil)},
		{"HS256EmptySignature", raw(map[string]any{"alg": "HS256", "kid": f.key.Kid}, good, nil)},
		{"AlgHS512", f.sign(jwt.SigningMethodHS512, f.key.Secret, f.key.Kid, good)},
		{"AlgHS384", f.sign(jwt.SigningMethodHS384, f.key.Secret, f.key.Kid, good)},
		{"AlgRS256", f.sign(jwt.SigningMethodRS256, rsaKey, f.key.Kid, good)},
		// Key confusion: an RS256 header over an HMAC made with the secret.
		{"AlgRS256WithHMAC", raw(map[string]any{"alg": "RS256", "kid": f.key.Kid}, good, f.key.Secret)},
		{"UnknownKid", f.sign(jwt.SigningMethodHS256, f.key.Secret, "nope", good)},
		{"NoKid", f.sign(jwt.SigningMethodHS256, f.key.Secret, "", good)},
		{"OtherSecret", f.sign(jwt.SigningMethodHS256, otherSecret, f.key.Kid, good)},
		{"TamperedRole", tamper(t, valid, func(c map[string]any) { c["role"] = "admin" })},
		{"TamperedSubject", tamper(t, valid, func(c map[string]any) { c["sub"] = "root" })},
		{"TamperedExpiry", tamper(t, valid, func(c map[string]any) { c["exp"] = f.now.Add(1000 * time.Hour).Unix() })},
		{"Expired", f.hs256(spoil(func(c jwt.MapClaims) {
			c["iat"] = f.now.Add(-2 * time.Hour).Unix()
			c["exp"] = f.now.Add(-time.Hour).Unix()
		}))},
		{"ExpiredJustNow", f.hs256(spoil(func(c jwt.MapClaims) { c["exp"] = f.now.Add(-e.cfg.Token.Leeway - 2*time.Second).Unix() }))},
		{"NoExpiry", f.hs256(spoil(func(c jwt.MapClaims) { delete(c, "exp") }))},
		{"IssuedInFuture", f.hs256(spoil(func(c jwt.MapClaims) {
			c["iat"] = f.now.Add(time.Hour).Unix()
			c["exp"] = f.now.Add(2 * time.Hour).Unix()
		}))},
		{"NotBeforeInFuture", f.hs256(spoil(func(c jwt.MapClaims) { c["nbf"] = f.now.Add(time.Hour).Unix() }))},
		{"WrongIssuer", f.hs256(spoil(func(c jwt.MapClaims) { c["iss"] = "someone-else" }))},
		{"NoIssuer", f.hs256(spoil(func(c jwt.MapClaims) { delete(c, "iss") }))},
		{"NoSubject", f.hs256(spoil(func(c jwt.MapClaims) { delete(c, "sub") }))},
		{"NoJTI", f.hs256(spoil(func(c jwt.MapClaims) { delete(c, "jti") }))},
		{"NoIssuedAt", f.hs256(spoil(func(c jwt.MapClaims) { delete(c, "iat") }))},
		{"WrongVersion", f.hs256(spoil(func(c jwt.MapClaims) { c["ver"] = c["ver"].(uint64) + 1 }))},
		{"UnknownSubject", f.hs256(spoil(func(c jwt.MapClaims) { c["sub"] = "ghost" }))},
		{"Garbage", "a.b.c"},
		{"NotAJWT", "not-a-jwt"},
		{"TwoParts", valid[:strings.LastIndex(valid, ".")]},
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			e := e.on(t)
			wantUnauthorized(t, e.call(http.MethodGet, "/users/me", a.tok, nil))
			t.Run("WSHeader", func(t *testing.T) { e.wantWSRefused(t, a.tok, false, nil) })
			t.Run("WSQuery", func(t *testing.T) { e.wantWSRefused(t, a.tok, true, nil) })
		})
	}

	// Authorization headers that carry no usable bearer token.
	for _, tc := range []struct{ name, value string }{
		{"NoToken", ""},
		{"BearerOnly", "Bearer"},
		{"BearerSpace", "Bearer   "},
		{"Basic", "Basic YWxpY2U6cGFzc3dvcmQ="},
		{"OtherScheme", "Token " + valid},
		{"NoScheme", valid},
		{"TrailingJunk", "Bearer " + valid + " x"},
		{"TwoTokens", "Bearer " + valid + ",Bearer " + valid},
	} {
		t.Run("Header"+tc.name, func(t *testing.T) {
			e := e.on(t)
			h := map[string]string{}
			if tc.value != "" {
				h["Authorization"] = tc.value
			}
			wantUnauthorized(t, e.request(http.MethodGet, "/users/me", h, nil))
			wh := http.Header{}
			if tc.value != "" {
				wh.Set("Authorization", tc.value)
			}
			t.Run("WS", func(t *testing.T) { e.wantWSRefused(t, "", false, wh) })
		})
	}
}

// Ensure tokens stop working when their user is disabled, removed or gets
// a new password, when their jti is revoked through POST /admin/revoke, and
// when all of a user's tokens are revoked.
func TestTokenRevocation(t *testing.T) {
	e := newEnv(t, nil)
	e.addUser("root", "admin")
	rootTok := e.issue("root")
	for _, tc := range []struct {
		name   string
		revoke func(t *testing.T, name, tok string)
	}{
		{"Disabled", func(t *testing.T, name, _ string) {
			if _, err := e.svc.SetDisabled(bg, name, true); err != nil {
				t.Fatal(err)
			}
		}},
		{"DisabledThenEnabled", func(t *testing.T, name, _ string) {
			if _, err := e.svc.SetDisabled(bg, name, true); err != nil {
				t.Fatal(err)
			}
			if _, err := e.svc.SetDisabled(bg, name, false); err != nil {
				t.Fatal(err)
			}
		}},
		{"Removed", func(t *testing.T, name, _ string) {
			if err := e.svc.RemoveUser(bg, name); err != nil {
				t.Fatal(err)
			}
		}},
		{"RemovedAndRecreated", func(t *testing.T, name, _ string) {
			if err := e.svc.RemoveUser(bg, name); err != nil {
				t.Fatal(err)
			}
			e.addUser(name, "")
		}},
		{"NewPassword", func(t *testing.T, name, _ string) {
			if _, err := e.svc.SetPassword(bg, name, "another password"); err != nil {
				t.Fatal(err)
			}
		}},
		{"JTIRevokedByAdminAPI", func(t *testing.T, _, tok string) {
			_, claims, err := auth.Decode(tok)
			if err != nil {
				t.Fatal(err)
			}
			r := e.call(http.MethodPost, "/admin/revoke", rootTok, admin.RevokeRequest{ID: claims["jti"].(string)})
			if r.status != http.StatusOK || r.json(t)["kind"] != "token" {
				t.Fatalf("revoke = %d %s", r.status, r.body)
			}
		}},
		{"AllRevokedByAdminAPI", func(t *testing.T, name, _ string) {
			r := e.call(http.MethodPost, "/admin/revoke", rootTok, admin.RevokeRequest{User: name, All: true})
			if r.status != http.StatusOK || r.json(t)["kind"] != "user" {
				t.Fatalf("revoke = %d %s", r.status, r.body)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := e.on(t)
			name := strings.ToLower(tc.name)
			e.addUser(name, "")
			tok := e.login(name).AccessToken
			issued := e.issue(name)
			if r := e.call(http.MethodGet, "/users/me", tok, nil); r.status != http.StatusOK {
				t.Fatalf("before: %d %s", r.status, r.body)
			}
			tc.revoke(t, name, tok)
			wantUnauthorized(t, e.call(http.MethodGet, "/users/me", tok, nil))
			e.wantWSRefused(t, tok, false, nil)
			e.wantWSRefused(t, tok, true, nil)
			if tc.name != "JTIRevokedByAdminAPI" {
				wantUnauthorized(t, e.call(http.MethodGet, "/users/me", issued, nil))
			} else if r := e.call(http.MethodGet, "/users/me", issued, nil); r.status != http.StatusOK {
				t.Errorf("revoking one jti ended another token: %d %s", r.status, r.body)
			}
		})
	}
}

// Ensure a live WebSocket is closed with 4003 when its user is disabled
// through the admin API, and a page from another origin cannot open one.
func TestWSKickAndOrigin(t *testing.T) {
	e := newEnv(t, nil)
	e.addUser("root", "admin")
	e.addUser("alice", "")
	tok := e.issue("alice")

	t.Run("CrossOriginRefused", func(t *testing.T) {
		e := e.on(t)
		conn, r, err := e.dialWS(tok, true, http.Header{"Origin": {"https://evil.example"}})
		if err == nil {
			conn.Close()
			t.Fatal("cross-origin upgrade succeeded")
		}
		if r.status != http.StatusForbidden {
			t.Fatalf("status = %d, want 403; body %s", r.status, r.body)
		}
	})
	t.Run("SameOriginAllowed", func(t *testing.T) {
		e := e.on(t)
		conn, _, err := e.dialWS(tok, true, http.Header{"Origin": {e.ts.URL}})
		if err != nil {
			t.Fatal(err)
		}
		conn.Close()
	})
	t.Run("NotAnUpgrade", func(t *testing.T) {
		e := e.on(t)
		r := e.call(http.MethodGet, "/ws", tok, nil)
		if r.status != http.StatusBadRequest {
			t.Fatalf("status = %d, want 400; body %s", r.status, r.body)
		}
	})
	t.Run("KickedOnDisable", func(t *testing.T) {
		e := e.on(t)
		conn, _, err := e.dialWS(tok, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if err := conn.WriteJSON(map[string]any{"type": "ping"}); err != nil {
			t.Fatal(err)
		}
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		var pong map[string]any
		if err := conn.ReadJSON(&pong); err != nil || pong["type"] != "pong" {
			t.Fatalf("ping: %v %v", pong, err)
		}
		r := e.call(http.MethodPut, "/admin/users/alice/disabled", e.issue("root"), admin.DisabledRequest{Disabled: true})
		if r.status != http.StatusOK {
			t.Fatalf("disable: %d %s", r.status, r.body)
		}
		for {
			_, _, err := conn.ReadMessage()
			if err == nil {
				continue
			}
			if !websocket.IsCloseError(err, 4003) {
				t.Fatalf("read: %v, want close 4003", err)
			}
			break
		}
	})
}
