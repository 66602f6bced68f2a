package store

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Ensure token versions are random: not a sequence one user's token could
// reveal the others' from, distinct, changed by every bump, and within the
// 53 bits a JSON number carries exactly.
func TestTokenVersionRandom(t *testing.T) {
	db := mustOpen(t, newClock())
	seen := map[uint64]bool{}
	var prev uint64
	for i := range 50 {
		u, err := db.CreateUser(User{Name: "u" + string(rune('a'+i%26)) + string(rune('a'+i/26))})
		if err != nil {
			t.Fatal(err)
		}
		v := u.TokenVersion
		if v == 0 || v >= maxVersion || seen[v] {
			t.Fatalf("version %d: zero, too large or repeated", v)
		}
		if prev != 0 && (v-prev < 1<<20 || prev-v < 1<<20) {
			// Chance 2^-32 per pair for random values; certain for a sequence.
			t.Fatalf("versions %d then %d are close: guessable", prev, v)
		}
		seen[v], prev = true, v
	}
	u, _ := db.User("uaa")
	for range 20 {
		nu, err := db.UpdateUser("uaa", Change{RevokeTokens: true})
		if err != nil || nu.TokenVersion == u.TokenVersion || nu.TokenVersion == 0 || nu.TokenVersion >= maxVersion {
			t.Fatalf("bump %d -> %d, %v", u.TokenVersion, nu.TokenVersion, err)
		}
		u = nu
	}
	admin := "admin"
	if nu, _ := db.UpdateUser("uaa", Change{Role: &admin}); nu.TokenVersion != u.TokenVersion {
		t.Fatal("a role change moved the token version")
	}
}

// Ensure a store written by an older binary, with sequence versions, keeps
// them (its tokens still verify) until the next bump makes them random.
func TestTokenVersionCompat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	c := newClock()
	db, err := Open(path, Options{Now: c.Now, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	err = db.bolt.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketUsers).Put([]byte("old"), []byte(`{"name":"old","hash":"x","role":"user","token_version":3,"created_at":"2025-01-01T00:00:00Z","updated_at":"2025-01-01T00:00:00Z"}`))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	db = mustOpenPath(t, path, c)
	u, err := db.User("old")
	if err != nil || u.TokenVersion != 3 {
		t.Fatalf("old user = %+v, %v", u, err)
	}
	u, err = db.UpdateUser("old", Change{RevokeTokens: true})
	if err != nil || u.TokenVersion == 3 || u.TokenVersion < 1<<20 {
		t.Fatalf("after bump: version %d, %v", u.TokenVersion, err)
	}
}

// Ensure ending a session, by RevokeSession or by reuse of a spent refresh
// token, puts its id on the deny list (so its access tokens are refused),
// in memory at once and in the file, until the session would have expired.
func TestSessionDenied(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	c := newClock()
	db, err := Open(path, Options{Now: c.Now, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	db.CreateUser(User{Name: "alice"})
	revoked, _, _ := db.CreateSession("alice", "", time.Hour)
	reused, first, _ := db.CreateSession("alice", "", time.Hour)
	live, _, _ := db.CreateSession("alice", "", time.Hour)
	if _, _, err := db.Refresh(first, "", 2*time.Hour); err != nil {
		t.Fatal(err)
	}
	if s, err := db.RevokeSession(revoked.ID); err != nil || s.ID != revoked.ID {
		t.Fatalf("RevokeSession = %+v, %v", s, err)
	}
	s, _, err := db.Refresh(first, "", time.Hour)
	if !errors.Is(err, ErrRefreshReused) || s.ID != reused.ID || s.User != "alice" {
		t.Fatalf("reuse = %+v, %v; want the session with ErrRefreshReused", s, err)
	}
	check := func(db *DB) {
		t.Helper()
		if !db.Denied(revoked.ID) || !db.Denied(reused.ID) || db.Denied(live.ID) {
			t.Fatalf("denied: revoked %v, reused %v, live %v", db.Denied(revoked.ID), db.Denied(reused.ID), db.Denied(live.ID))
		}
	}
	check(db)
	db.Close()
	db = mustOpenPath(t, path, c)
	check(db)
	// The reused session was refreshed for 2 h: its last access token may
	// live that long, so its entry outlives the revoked one's (1 h).
	c.Add(time.Hour + sessionDenyMargin + time.Second)
	if _, err := db.PruneSessions(); err != nil {
		t.Fatal(err)
	}
	if db.Denied(revoked.ID) || !db.Denied(reused.ID) {
		t.Fatalf("after 1 h: revoked %v (want pruned), reused %v (want kept)", db.Denied(revoked.ID), db.Denied(reused.ID))
	}
}

// Ensure RetireKey stops a rotated-out key verifying at once, keeps it
// listed until it would have expired, refuses the active key and unknown
// kids, and is idempotent.
func TestRetireKey(t *testing.T) {
	c := newClock()
	db := mustOpen(t, c)
	k1, _ := db.ActiveKey()
	db.NoteTTL(k1.Kid, time.Hour)
	if _, err := db.RetireKey(k1.Kid); !errors.Is(err, ErrKeyActive) {
		t.Fatalf("retire the active key: %v", err)
	}
	if _, err := db.RetireKey("nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("retire an unknown key: %v", err)
	}
	k2, _ := db.RotateKey()
	c.Add(time.Minute)
	k, err := db.RetireKey(k1.Kid)
	if err != nil || !k.RevokedAt.Equal(c.Now()) || k.Verifies(c.Now()) {
		t.Fatalf("RetireKey = %+v, %v", k, err)
	}
	again, err := db.RetireKey(k1.Kid)
	if err != nil || !again.RevokedAt.Equal(k.RevokedAt) {
		t.Fatalf("retire twice = %+v, %v", again, err)
	}
	keys, _ := db.Keys()
	if len(keys) != 2 || keys[0].Kid != k2.Kid || !keys[0].Verifies(c.Now()) || keys[1].Verifies(c.Now()) || keys[1].RevokedAt.IsZero() {
		t.Fatalf("keys = %+v", keys)
	}
	c.Add(time.Hour + retiredGrace)
	if _, err := db.RetireKey(k1.Kid); !errors.Is(err, ErrNotFound) {
		t.Fatalf("retire an expired key: %v", err)
	}
	if keys, _ := db.Keys(); len(keys) != 1 {
		t.Fatalf("an expired retired key is still listed: %+v", keys)
	}
}
