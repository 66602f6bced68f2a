package chat

import (
	"fmt"
	"testing"
)

// Ensure a TLS connection never gets the pool's raw descriptor (the pool
// would write unencrypted frames into the TLS stream) and that a chat over
// wss:// with the pool on delivers every message in order. Over plain TCP
// on Linux the same harness does give the pool its descriptor, so the
// check is not vacuous there.
func TestTLSConnUsesOwnWriter(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", useTLS), func(t *testing.T) {
			var opts []harnessOpt
			if useTLS {
				opts = append(opts, withTLS)
			}
			h := newHarness(t, Config{}, opts...) // write pool on
			alice, _ := h.join("alice", "r")
			bob, _ := h.join("bob", "r")
			h.hub.mu.Lock()
			for user, cs := range h.hub.users {
				for _, c := range cs {
					c.mu.Lock()
					raw := c.raw != nil
					c.mu.Unlock()
					if useTLS && raw {
						t.Errorf("%s: TLS connection has a raw descriptor for the pool", user)
					}
					if !useTLS && raw != rawWritesSupported {
						t.Errorf("%s: plain connection raw = %v, want %v", user, raw, rawWritesSupported)
					}
				}
			}
			h.hub.mu.Unlock()
			const n = 30
			for i := range n {
				alice.send(map[string]any{"type": "send", "room": "r", "text": fmt.Sprint(i)})
			}
			for i := range n {
				f := bob.expect("message")
				if f.Text != fmt.Sprint(i) {
					t.Fatalf("message %d: got %q", i, f.Text)
				}
			}
		})
	}
}
