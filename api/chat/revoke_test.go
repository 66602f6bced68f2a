package chat

import (
	"testing"
	"time"
)

// authAs swaps in token on c with an auth frame and waits for the ack.
func (c *wsClient) authAs(token string) {
	c.t.Helper()
	c.send(map[string]any{"type": "auth", "token": token, "ref": "auth"})
	if f := c.expect("ack"); f.Ref != "auth" {
		c.t.Fatalf("auth ack = %+v", f)
	}
}

// Ensure Revoke closes with 4003 exactly the connections whose current
// token it names, by jti, by session or by signing key (across users),
// and that after an auth frame the swapped-in token is what counts.
func TestRevokeByToken(t *testing.T) {
	h := newHarness(t, Config{})
	exp := time.Now().Add(time.Hour)
	h.auth.add("a1", Identity{User: "alice", Expires: exp, JTI: "j1", Session: "s1", Kid: "k1"})
	h.auth.add("a2", Identity{User: "alice", Expires: exp, JTI: "j2", Session: "s2", Kid: "k2"})
	h.auth.add("a3", Identity{User: "alice", Expires: exp, JTI: "j3", Session: "s3", Kid: "k2"})
	h.auth.add("a4", Identity{User: "alice", Expires: exp, JTI: "j4", Session: "s4", Kid: "k2"})
	h.auth.add("b1", Identity{User: "bob", Expires: exp, JTI: "jb", Kid: "k1"})
	conn := func(user, token string) *wsClient {
		c := h.dial(user, time.Time{})
		c.authAs(token)
		return c
	}
	a1, a2, b1 := conn("alice", "a1"), conn("alice", "a2"), conn("bob", "b1")
	swapped := conn("alice", "a3")
	swapped.authAs("a4")

	h.hub.Revoke(Revoked{JTI: "nope", Session: "", Kid: ""})
	h.hub.Revoke(Revoked{Session: "s9"})
	h.hub.Revoke(Revoked{JTI: "j3"}) // swapped out: no longer this socket's token
	for _, c := range []*wsClient{a1, a2, b1, swapped} {
		c.ping()
	}

	h.hub.Revoke(Revoked{JTI: "j2"})
	a2.expectClose(CloseRevoked)
	a1.ping()

	h.hub.Revoke(Revoked{Session: "s4"})
	swapped.expectClose(CloseRevoked)

	h.hub.Revoke(Revoked{Kid: "k1"}) // alice's a1 and bob's b1
	a1.expectClose(CloseRevoked)
	b1.expectClose(CloseRevoked)
	eventually(t, "every connection to unregister", func() bool { return h.hub.Conns() == 0 })
}

// Ensure a send after the token's expiry is refused at once with
// token_expired (nothing stored, no ack), by the hub's clock, without
// waiting for the sweep; after an auth frame with a fresh token it works.
func TestSendAfterExpiry(t *testing.T) {
	// A long grace and ping period: the sweep would warn only much later.
	// The token expires in an hour of real time, and the hub's clock is
	// past that already.
	exp := time.Now().Add(time.Hour)
	late := newHarness(t, Config{ExpiryGrace: time.Hour, PingInterval: time.Hour, PongTimeout: 2 * time.Hour})
	late.hub.now = func() time.Time { return exp.Add(time.Second) } // before any connection exists
	late.auth.add("fresh", Identity{User: "alice", Expires: exp.Add(time.Hour)})
	lc := late.dial("alice", exp)
	lc.send(map[string]any{"type": "join", "room": "general"})
	lc.expect("joined")
	lc.send(map[string]any{"type": "send", "room": "general", "text": "too late", "ref": "s2"})
	lc.expectError(CodeTokenExpired, "s2")
	lc.ping() // handled in order: the send above was refused, not queued
	if ms, _ := late.store.MessagesBefore("general", 0, 10); len(ms) != 0 {
		t.Fatalf("stored after expiry: %+v", ms)
	}
	lc.authAs("fresh")
	lc.send(map[string]any{"type": "send", "room": "general", "text": "renewed", "ref": "s3"})
	if f := lc.skipUntil("ack"); f.Ref != "s3" {
		t.Fatalf("ack = %+v", f)
	}
}
