package api

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/chatctl/chatctl/admin"
	"github.com/chatctl/chatctl/auth"
)

// openWS dials /ws with tok and round-trips a ping, so the hub has
// registered the connection when it returns.
func (e *env) openWS(t *testing.T, tok string) *websocket.Conn {
	t.Helper()
	conn, r, err := e.dialWS(tok, false, nil)
	if err != nil {
		t.Fatalf("dial: %v (%d %s)", err, r.status, r.body)
	}
	t.Cleanup(func() { conn.Close() })
	wantAlive(t, conn)
	return conn
}

// wantAlive fails unless conn answers a protocol ping.
func wantAlive(t *testing.T, conn *websocket.Conn) {
	t.Helper()
	if err := conn.WriteJSON(map[string]any{"type": "ping", "ref": "alive"}); err != nil {
		t.Fatalf("ping: %v", err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		var f map[string]any
		if err := conn.ReadJSON(&f); err != nil {
			t.Fatalf("connection ended: %v", err)
		}
		if f["type"] == "pong" && f["ref"] == "alive" {
			return
		}
	}
}

// wantClosed fails unless conn is closed with code. The revoking call
// has returned already, and the hub requested the close before it did, so
// only the writer's scheduling stands between the two (SPEC: within 1 s).
func wantClosed(t *testing.T, conn *websocket.Conn, code int) time.Duration {
	t.Helper()
	start := time.Now()
	conn.SetReadDeadline(start.Add(5 * time.Second))
	for {
		_, _, err := conn.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != code {
			t.Fatalf("connection ended with %v, want close %d", err, code)
		}
		return time.Since(start)
	}
}

// claimsOf decodes tok's claims without checking them.
func claimsOf(t *testing.T, tok string) map[string]any {
	t.Helper()
	_, c, err := auth.Decode(tok)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Ensure every kind of revocation that ends one token, a session's tokens
// or a key's tokens closes exactly the sockets opened (or re-authenticated)
// with them with 4003, and makes /users/me answer 401, whichever path made
// it: the /admin API, the admin socket the CLI uses, or a reused refresh
// token on /token.
func TestRevocationClosesSockets(t *testing.T) {
	e := newEnv(t, nil)
	e.addUser("root", "admin")
	e.addUser("alice", "")
	root := e.issue("root")
	remote, _ := e.serveSocket(t)

	// Each case returns the token a victim socket uses, the token of a
	// socket of the same user that must survive, and the revocation.
	type revocation func(t *testing.T)
	tests := []struct {
		name  string
		setup func(t *testing.T) (victim, survivor string, revoke revocation)
	}{
		{"JTIByAdminAPI", func(t *testing.T) (string, string, revocation) {
			victim := e.issue("alice")
			return victim, e.issue("alice"), func(t *testing.T) {
				r := e.call(http.MethodPost, "/admin/revoke", root, admin.RevokeRequest{ID: claimsOf(t, victim)["jti"].(string)})
				if r.status != http.StatusOK {
					t.Fatalf("revoke: %d %s", r.status, r.body)
				}
			}
		}},
		{"JTIBySocket", func(t *testing.T) (string, string, revocation) {
			victim := e.issue("alice")
			return victim, e.issue("alice"), func(t *testing.T) {
				if _, err := remote.Revoke(bg, admin.RevokeRequest{ID: claimsOf(t, victim)["jti"].(string)}); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{"SessionBySocket", func(t *testing.T) (string, string, revocation) {
			victim := e.login("alice").AccessToken
			return victim, e.login("alice").AccessToken, func(t *testing.T) {
				sid, _ := claimsOf(t, victim)["sid"].(string)
				if sid == "" {
					t.Fatal("a token from /token has no sid claim")
				}
				if _, err := remote.Revoke(bg, admin.RevokeRequest{ID: sid}); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{"SessionByRefreshReuse", func(t *testing.T) (string, string, revocation) {
			first := e.login("alice")
			r := e.refresh(first.RefreshToken, "")
			if r.status != http.StatusOK {
				t.Fatalf("refresh: %d %s", r.status, r.body)
			}
			var next tokenResponse
			r.into(t, &next)
			return next.AccessToken, e.login("alice").AccessToken, func(t *testing.T) {
				wantInvalidGrant(t, e.refresh(first.RefreshToken, ""))
				t.Cleanup(func() {
					// Every access token of the session ends, not only the newest.
					wantUnauthorized(t, e.call(http.MethodGet, "/users/me", first.AccessToken, nil))
				})
			}
		}},
		{"KeyRetireByAdminAPI", func(t *testing.T) (string, string, revocation) {
			victim := e.issue("alice")
			if _, err := e.svc.RotateKey(bg); err != nil {
				t.Fatal(err)
			}
			return victim, e.issue("alice"), func(t *testing.T) {
				r := e.call(http.MethodPost, "/admin/keys/"+kidOf(t, victim)+"/retire", e.issue("root"), nil)
				if r.status != http.StatusOK || r.json(t)["state"] != "retired" {
					t.Fatalf("retire: %d %s", r.status, r.body)
				}
			}
		}},
		{"KeyRetireBySocket", func(t *testing.T) (string, string, revocation) {
			victim := e.issue("alice")
			if _, err := remote.RotateKey(bg); err != nil {
				t.Fatal(err)
			}
			return victim, e.issue("alice"), func(t *testing.T) {
				if k, err := remote.RetireKey(bg, kidOf(t, victim)); err != nil || k.State != admin.KeyRetired {
					t.Fatalf("RetireKey = %+v, %v", k, err)
				}
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := e.on(t)
			victim, survivor, revoke := tc.setup(t)
			vc := e.openWS(t, victim)
			sc := e.openWS(t, survivor)
			revoke(t)
			d := wantClosed(t, vc, 4003)
			t.Logf("closed %v after the revocation returned", d)
			wantAlive(t, sc)
			wantUnauthorized(t, e.call(http.MethodGet, "/users/me", victim, nil))
			e.wantWSRefused(t, victim, false, nil)
			if r := e.call(http.MethodGet, "/users/me", survivor, nil); r.status != http.StatusOK {
				t.Fatalf("the surviving token was refused: %d %s", r.status, r.body)
			}
		})
	}
}

// Ensure a token swapped in with an auth frame is the one revocation
// matches: revoking it closes the socket.
func TestRevocationFollowsAuthFrame(t *testing.T) {
	e := newEnv(t, nil)
	e.addUser("alice", "")
	conn := e.openWS(t, e.issue("alice"))
	fresh := e.login("alice").AccessToken
	if err := conn.WriteJSON(map[string]any{"type": "auth", "token": fresh, "ref": "a"}); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	var ack map[string]any
	if err := conn.ReadJSON(&ack); err != nil || ack["type"] != "ack" {
		t.Fatalf("auth: %v %v", ack, err)
	}
	if _, err := e.svc.Revoke(bg, admin.RevokeRequest{ID: claimsOf(t, fresh)["sid"].(string)}); err != nil {
		t.Fatal(err)
	}
	wantClosed(t, conn, 4003)
}

// kidOf returns the kid in tok's header.
func kidOf(t *testing.T, tok string) string {
	t.Helper()
	h, _, err := auth.Decode(tok)
	if err != nil {
		t.Fatal(err)
	}
	return h["kid"].(string)
}

// Ensure a revocation that lands while a /ws upgrade is between its token
// check and the hub's registering the connection still closes it: the
// hub's scan cannot see the connection yet, so the handler checks again.
func TestRevocationDuringUpgrade(t *testing.T) {
	e := newEnv(t, nil)
	e.addUser("alice", "")
	tok := e.issue("alice")
	jti := claimsOf(t, tok)["jti"].(string)
	hook := func() {
		if _, err := e.svc.Revoke(bg, admin.RevokeRequest{ID: jti}); err != nil {
			t.Error(err)
		}
	}
	e.srv.beforeServe.Store(&hook)
	conn, r, err := e.dialWS(tok, false, nil)
	if err != nil {
		t.Fatalf("dial: %v (%d %s)", err, r.status, r.body)
	}
	defer conn.Close()
	wantClosed(t, conn, 4003)
}
