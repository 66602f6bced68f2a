package store

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

type boltTx = bolt.Tx

// clock is a settable test clock.
type clock struct{ t time.Time }

func (c *clock) Now() time.Time      { return c.t }
func (c *clock) Add(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock               { return &clock{t: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)} }
func mustOpen(tb testing.TB, c *clock) *DB {
	return mustOpenPath(tb, filepath.Join(tb.TempDir(), "c.db"), c)
}

// mustOpenPath opens a store and registers a cleanup that checks the file's
// consistency and closes it.
func mustOpenPath(tb testing.TB, path string, c *clock) *DB {
	tb.Helper()
	db, err := Open(path, Options{Now: c.Now, NoSync: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := db.Check(); err != nil {
			tb.Errorf("consistency check: %v", err)
		}
		db.Close()
	})
	return db
}

// Ensure Open creates the folder and a 0600 file with the current schema.
func TestOpenCreates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "c.db")
	db := mustOpenPath(t, path, newClock())
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	if v, err := db.Schema(); err != nil || v != SchemaVersion {
		t.Errorf("schema %d, %v", v, err)
	}
}

// Ensure a second Open of a held file fails fast with ErrLocked naming it.
func TestOpenLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	mustOpenPath(t, path, newClock())
	start := time.Now()
	_, err := Open(path, Options{Timeout: 200 * time.Millisecond})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "another chatctl holds it") {
		t.Fatalf("err = %v, want ErrLocked naming %s", err, path)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %s", d)
	}
}

// Ensure bad files give clear errors.
func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.db")
	os.WriteFile(garbage, []byte(strings.Repeat("not a database ", 2000)), 0o600)
	notDir := filepath.Join(dir, "file")
	os.WriteFile(notDir, []byte("x"), 0o600)
	tests := []struct {
		name, path string
		is         error
		want       string
	}{
		{"ErrCorrupt", garbage, ErrCorrupt, "not a chatctl database"},
		{"ErrParentIsFile", filepath.Join(notDir, "c.db"), nil, "not a directory"},
		{"ErrIsFolder", dir, nil, "is a folder"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(tc.path, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.path) {
				t.Fatalf("err = %v, want %q naming the file", err, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("err = %v, want %v", err, tc.is)
			}
		})
	}
}

// Ensure a file from a newer chatctl is refused rather than misread.
func TestOpenNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.bolt.Update(func(tx *boltTx) error { return tx.Bucket(bucketMeta).Put(keySchema, []byte("99")) })
	db.Close()
	if _, err := Open(path, Options{}); !errors.Is(err, ErrNewerSchema) {
		t.Fatalf("err = %v, want ErrNewerSchema", err)
	}
}

// Ensure users round-trip and names are case-insensitive.
func TestUsers(t *testing.T) {
	c := newClock()
	db := mustOpen(t, c)
	t.Run("OK", func(t *testing.T) {
		u, err := db.CreateUser(User{Name: "Alice", Hash: "h", Role: "admin"})
		if err != nil {
			t.Fatal(err)
		}
		if u.Name != "alice" || u.TokenVersion == 0 || !u.CreatedAt.Equal(c.Now()) {
			t.Fatalf("created %+v", u)
		}
		got, err := db.User("ALICE")
		if err != nil || got.Hash != "h" || got.Role != "admin" {
			t.Fatalf("User = %+v, %v", got, err)
		}
	})
	t.Run("ErrUserExists", func(t *testing.T) {
		if _, err := db.CreateUser(User{Name: "alice"}); !errors.Is(err, ErrUserExists) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		if _, err := db.User("bob"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("err = %v", err)
		}
		if _, err := db.UpdateUser("bob", Change{}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("err = %v", err)
		}
		if err := db.DeleteUser("bob"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("Update", func(t *testing.T) {
		before, _ := db.User("alice")
		c.Add(time.Minute)
		dis := true
		u, err := db.UpdateUser("alice", Change{Disabled: &dis, RevokeTokens: true})
		if err != nil || !u.Disabled || u.TokenVersion == before.TokenVersion || !u.UpdatedAt.Equal(c.Now()) {
			t.Fatalf("update = %+v, %v", u, err)
		}
		u2, _ := db.UpdateUser("alice", Change{})
		if u2.TokenVersion != u.TokenVersion {
			t.Fatal("a change without RevokeTokens changed the token version")
		}
	})
	t.Run("VersionsNeverReused", func(t *testing.T) {
		old, _ := db.User("alice")
		if err := db.DeleteUser("alice"); err != nil {
			t.Fatal(err)
		}
		u, _ := db.CreateUser(User{Name: "alice"})
		if u.TokenVersion == old.TokenVersion {
			t.Fatalf("re-created user got version %d, old was %d", u.TokenVersion, old.TokenVersion)
		}
	})
	t.Run("List", func(t *testing.T) {
		db.CreateUser(User{Name: "bob"})
		users, err := db.Users()
		if err != nil || len(users) != 2 || users[0].Name != "alice" || users[1].Name != "bob" {
			t.Fatalf("Users = %+v, %v", users, err)
		}
	})
}

// Ensure keys are generated once, rotate, and retired keys live exactly
// as long as the tokens they signed.
func TestKeys(t *testing.T) {
	c := newClock()
	db := mustOpen(t, c)
	k1, err := db.ActiveKey()
	if err != nil || len(k1.Secret) != KeySize || k1.Kid == "" {
		t.Fatalf("ActiveKey = %+v, %v", k1, err)
	}
	if again, _ := db.ActiveKey(); again.Kid != k1.Kid {
		t.Fatal("ActiveKey generated a second key")
	}
	if err := db.NoteTTL(k1.Kid, time.Hour); err != nil {
		t.Fatal(err)
	}
	c.Add(time.Minute)
	k2, err := db.RotateKey()
	if err != nil || k2.Kid == k1.Kid {
		t.Fatalf("RotateKey = %+v, %v", k2, err)
	}
	keys, _ := db.Keys()
	if len(keys) != 2 || keys[0].Kid != k2.Kid || !keys[0].Active() || keys[1].Active() {
		t.Fatalf("keys after rotation: %+v", keys)
	}
	if want := c.Now().Add(time.Hour + retiredGrace); !keys[1].Expires().Equal(want) {
		t.Fatalf("retired key expires %v, want %v", keys[1].Expires(), want)
	}
	c.Add(time.Hour + retiredGrace)
	keys, _ = db.Keys()
	if len(keys) != 1 || keys[0].Kid != k2.Kid {
		t.Fatalf("expired key still listed: %+v", keys)
	}
	if _, err := db.RotateKey(); err != nil {
		t.Fatal(err)
	}
	var stored int
	db.bolt.View(func(tx *boltTx) error { stored = tx.Bucket(bucketKeys).Stats().KeyN; return nil })
	if stored != 2 {
		t.Fatalf("%d keys stored, want the expired one deleted", stored)
	}
	if err := db.NoteTTL("nope", time.Hour); !errors.Is(err, ErrNotFound) {
		t.Fatalf("NoteTTL unknown kid: %v", err)
	}
}

// BenchmarkUserLookup measures one user read, the store part of a full
// token verification.
func BenchmarkUserLookup(b *testing.B) {
	db := mustOpen(b, newClock())
	for _, n := range []string{"alice", "bob", "carol"} {
		db.CreateUser(User{Name: n, Hash: "$2b$12$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234", Role: "user"})
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := db.User("bob"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUserLookupUncached measures the same read without the cache:
// one bbolt read transaction and a JSON decode.
func BenchmarkUserLookupUncached(b *testing.B) {
	db := mustOpen(b, newClock())
	db.CreateUser(User{Name: "bob", Hash: "$2b$12$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234", Role: "user"})
	b.ReportAllocs()
	for b.Loop() {
		var u User
		if err := db.bolt.View(func(tx *bolt.Tx) error { return getUser(tx, "bob", &u) }); err != nil {
			b.Fatal(err)
		}
	}
}

// Ensure the user cache never serves a value older than the last write,
// even with readers racing the writer.
func TestUserCacheCoherent(t *testing.T) {
	db := mustOpen(t, newClock())
	db.CreateUser(User{Name: "alice", Role: "user"})
	if u, _ := db.User("alice"); u.Role != "user" {
		t.Fatal(u)
	}
	done := make(chan struct{})
	for range 4 {
		go func() {
			for {
				select {
				case <-done:
					return
				default:
					db.User("alice")
				}
			}
		}()
	}
	for i := range 50 {
		role := []string{"admin", "user"}[i%2]
		if _, err := db.UpdateUser("alice", Change{Role: &role}); err != nil {
			t.Fatal(err)
		}
		if u, _ := db.User("alice"); u.Role != role {
			t.Fatalf("after write %d read role %q, want %q", i, u.Role, role)
		}
	}
	close(done)
	db.DeleteUser("alice")
	if _, err := db.User("alice"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted user still served: %v", err)
	}
}
