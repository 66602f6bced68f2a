package store

import (
	"errors"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// refreshKeys counts the refresh records stored for session id.
func refreshKeys(t *testing.T, db *DB, id string) int {
	t.Helper()
	n := 0
	db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRefresh).ForEach(func(k, _ []byte) error {
			if strings.HasPrefix(string(k), id+"\x00") {
				n++
			}
			return nil
		})
	})
	return n
}

// Ensure a session rotates its refresh token, a spent one revokes the
// whole family, and the records are keyed so the family goes with it.
func TestSessions(t *testing.T) {
	c := newClock()
	db := mustOpen(t, c)
	db.CreateUser(User{Name: "alice"})
	if _, _, err := db.CreateSession("nobody", "127.0.0.1", time.Hour); !errors.Is(err, ErrNotFound) {
		t.Fatalf("session for an unknown user: %v", err)
	}
	s, first, err := db.CreateSession("Alice", "127.0.0.1", time.Hour)
	if err != nil || !strings.HasPrefix(s.ID, SessionPrefix) || !strings.HasPrefix(first, s.ID+".") || s.User != "alice" {
		t.Fatalf("CreateSession = %+v %q %v", s, first, err)
	}
	c.Add(time.Minute)
	s2, second, err := db.Refresh(first, "10.0.0.1", time.Hour)
	if err != nil || s2.ID != s.ID || second == first || s2.ClientAddr != "10.0.0.1" || !s2.LastUsed.Equal(c.Now()) {
		t.Fatalf("Refresh = %+v %q %v", s2, second, err)
	}
	for _, bad := range []string{"", "x", "nodot", "ses_x.y", "other.abc", first + "x"} {
		if _, _, err := db.Refresh(bad, "", time.Hour); !errors.Is(err, ErrRefreshInvalid) {
			t.Errorf("Refresh(%q) = %v, want ErrRefreshInvalid", bad, err)
		}
	}
	if _, _, err := db.Refresh(first, "", time.Hour); !errors.Is(err, ErrRefreshReused) {
		t.Fatalf("reuse: %v", err)
	}
	if _, _, err := db.Refresh(second, "", time.Hour); !errors.Is(err, ErrRefreshInvalid) {
		t.Fatalf("the family's newer token after reuse: %v", err)
	}
	if n := refreshKeys(t, db, s.ID); n != 0 {
		t.Fatalf("%d refresh records left of a revoked session", n)
	}
	if list, _ := db.Sessions("alice"); len(list) != 0 {
		t.Fatalf("sessions after reuse: %+v", list)
	}
}

// Ensure revoking a user's tokens, removing the user and RevokeSession end
// their sessions and only theirs.
func TestSessionRevocation(t *testing.T) {
	db := mustOpen(t, newClock())
	db.CreateUser(User{Name: "alice"})
	db.CreateUser(User{Name: "bob"})
	a, _, _ := db.CreateSession("alice", "", time.Hour)
	b, bobTok, _ := db.CreateSession("bob", "", time.Hour)
	if _, err := db.UpdateUser("alice", Change{RevokeTokens: true}); err != nil {
		t.Fatal(err)
	}
	if n := refreshKeys(t, db, a.ID); n != 0 {
		t.Fatalf("alice's tokens survive revocation: %d", n)
	}
	if _, _, err := db.Refresh(bobTok, "", time.Hour); err != nil {
		t.Fatalf("bob's session was hit: %v", err)
	}
	if _, err := db.RevokeSession(b.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.RevokeSession(b.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoke twice: %v", err)
	}
	if n := refreshKeys(t, db, b.ID); n != 0 {
		t.Fatalf("bob's tokens survive RevokeSession: %d", n)
	}
}

// Ensure PruneSessions removes expired sessions with their spent tokens
// and expired deny-list entries, and keeps live ones.
func TestPruneSessions(t *testing.T) {
	c := newClock()
	db := mustOpen(t, c)
	db.CreateUser(User{Name: "alice"})
	old, tok, _ := db.CreateSession("alice", "", time.Hour)
	for range 3 {
		_, tok, _ = db.Refresh(tok, "", time.Hour)
	}
	c.Add(30 * time.Minute)
	live, _, _ := db.CreateSession("alice", "", time.Hour)
	db.DenyToken("gone", c.Now().Add(time.Minute))
	db.DenyToken("kept", c.Now().Add(2*time.Hour))
	c.Add(45 * time.Minute) // old expired (1 h after its last refresh), live not
	n, err := db.PruneSessions()
	if err != nil || n != 1 {
		t.Fatalf("pruned %d, %v; want 1", n, err)
	}
	if refreshKeys(t, db, old.ID) != 0 || refreshKeys(t, db, live.ID) != 1 {
		t.Fatalf("records: old %d, live %d", refreshKeys(t, db, old.ID), refreshKeys(t, db, live.ID))
	}
	if db.Denied("gone") || !db.Denied("kept") {
		t.Fatalf("deny list after prune: gone %v kept %v", db.Denied("gone"), db.Denied("kept"))
	}
}

// Ensure a login that read the user before a revocation cannot start a
// session after it: CreateSessionAt refuses a moved token version and
// stores nothing, and starts one at the current version.
func TestCreateSessionAtVersion(t *testing.T) {
	db := mustOpen(t, newClock())
	before, err := db.CreateUser(User{Name: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	after, err := db.UpdateUser("alice", Change{RevokeTokens: true}) // passwd, revoke --all…
	if err != nil || after.TokenVersion == before.TokenVersion {
		t.Fatalf("UpdateUser = %+v, %v", after, err)
	}
	if _, _, err := db.CreateSessionAt("alice", before.TokenVersion, "", time.Hour); !errors.Is(err, ErrVersionChanged) {
		t.Fatalf("CreateSessionAt(stale version) = %v, want ErrVersionChanged", err)
	}
	if ss, err := db.Sessions("alice"); err != nil || len(ss) != 0 {
		t.Fatalf("sessions after a refused start = %+v, %v", ss, err)
	}
	if _, _, err := db.CreateSessionAt("alice", after.TokenVersion, "", time.Hour); err != nil {
		t.Fatalf("CreateSessionAt(current version) = %v", err)
	}
}

// Ensure UpdateUser with IfVersion changes nothing once the version moved
// (a login's rehash racing a passwd) and applies while it has not.
func TestUpdateUserIfVersion(t *testing.T) {
	db := mustOpen(t, newClock())
	old, _ := db.CreateUser(User{Name: "alice", Hash: "old"})
	fresh := "new"
	cur, err := db.UpdateUser("alice", Change{Hash: &fresh, RevokeTokens: true}) // passwd
	if err != nil {
		t.Fatal(err)
	}
	stale := "rehash-of-old"
	if _, err := db.UpdateUser("alice", Change{Hash: &stale, IfVersion: &old.TokenVersion}); !errors.Is(err, ErrVersionChanged) {
		t.Fatalf("UpdateUser(stale IfVersion) = %v, want ErrVersionChanged", err)
	}
	if u, _ := db.User("alice"); u.Hash != "new" {
		t.Fatalf("hash = %q after a refused rehash, want the new one", u.Hash)
	}
	again := "rehash-of-new"
	if u, err := db.UpdateUser("alice", Change{Hash: &again, IfVersion: &cur.TokenVersion}); err != nil || u.Hash != again {
		t.Fatalf("UpdateUser(current IfVersion) = %+v, %v", u, err)
	}
}
