package storetest

import (
	"errors"
	"sync"
	"time"

	"github.com/chatctl/chatctl/store"
)

// userCases: users (create, read, update, delete, token versions).
var userCases = []Case{
	{"UserCreateAndRead", func(e *Env) {
		u, err := e.S.CreateUser(store.User{Name: "alice", Hash: "$2a$10$x", Role: "admin"})
		e.must(err)
		if u.TokenVersion == 0 || u.CreatedAt.IsZero() {
			e.Fatalf("created user %+v: want a token version and a creation time", u)
		}
		if _, err := e.S.CreateUser(store.User{Name: "ALICE", Hash: "h", Role: "user"}); !errors.Is(err, store.ErrUserExists) {
			e.Fatalf("second alice: got %v, want ErrUserExists", err)
		}
		got, err := e.Handle().User("Alice")
		e.must(err)
		if got.Name != "alice" || got.Role != "admin" || got.Hash != "$2a$10$x" || got.TokenVersion != u.TokenVersion {
			e.Fatalf("read back %+v, want %+v", got, u)
		}
		if _, err := e.S.User("bob"); !errors.Is(err, store.ErrNotFound) {
			e.Fatalf("unknown user: got %v, want ErrNotFound", err)
		}
	}},
	{"UserNamesLowerCase", func(e *Env) {
		u, err := e.S.CreateUser(store.User{Name: "Alice", Hash: "h", Role: "user"})
		e.must(err)
		if u.Name != "alice" || !u.CreatedAt.Equal(e.Clock.Now()) || !u.UpdatedAt.Equal(e.Clock.Now()) {
			e.Fatalf("created %+v, want name alice and times %v", u, e.Clock.Now())
		}
		got, err := e.S.User("ALICE")
		e.must(err)
		if got != u {
			e.Fatalf("User(ALICE) = %+v, want %+v", got, u)
		}
	}},
	{"UserNotFound", func(e *Env) {
		if _, err := e.S.User("bob"); !errors.Is(err, store.ErrNotFound) {
			e.Fatalf("User: %v, want ErrNotFound", err)
		}
		if _, err := e.S.UpdateUser("bob", store.Change{}); !errors.Is(err, store.ErrNotFound) {
			e.Fatalf("UpdateUser: %v, want ErrNotFound", err)
		}
		if err := e.S.DeleteUser("bob"); !errors.Is(err, store.ErrNotFound) {
			e.Fatalf("DeleteUser: %v, want ErrNotFound", err)
		}
	}},
	{"UserUpdate", func(e *Env) {
		before, err := e.S.CreateUser(store.User{Name: "alice", Hash: "h1", Role: "user"})
		e.must(err)
		e.Clock.Add(time.Minute)
		dis, role, hash := true, "admin", "h2"
		u, err := e.S.UpdateUser("ALICE", store.Change{Disabled: &dis, Role: &role, Hash: &hash, RevokeTokens: true})
		e.must(err)
		if !u.Disabled || u.Role != "admin" || u.Hash != "h2" || u.TokenVersion == before.TokenVersion || u.TokenVersion == 0 ||
			!u.UpdatedAt.Equal(e.Clock.Now()) || !u.CreatedAt.Equal(before.CreatedAt) {
			e.Fatalf("update = %+v (before %+v)", u, before)
		}
		// Another process sees the change.
		if got, err := e.Handle().User("alice"); err != nil || got != u {
			e.Fatalf("other handle reads %+v, %v; want %+v", got, err, u)
		}
		u2, err := e.S.UpdateUser("alice", store.Change{})
		e.must(err)
		if u2.TokenVersion != u.TokenVersion {
			e.Fatal("a change without RevokeTokens changed the token version")
		}
		en := false
		u3, err := e.Handle().UpdateUser("alice", store.Change{Disabled: &en})
		e.must(err)
		if got, err := e.S.User("alice"); err != nil || got.Disabled || got != u3 || got.TokenVersion != u.TokenVersion {
			e.Fatalf("after enable on another handle: %+v, %v; want %+v", got, err, u3)
		}
	}},
	{"UserIfVersion", func(e *Env) {
		old, err := e.S.CreateUser(store.User{Name: "alice", Hash: "old"})
		e.must(err)
		fresh := "new"
		cur, err := e.S.UpdateUser("alice", store.Change{Hash: &fresh, RevokeTokens: true}) // passwd
		e.must(err)
		stale := "rehash-of-old"
		if _, err := e.S.UpdateUser("alice", store.Change{Hash: &stale, IfVersion: &old.TokenVersion}); !errors.Is(err, store.ErrVersionChanged) {
			e.Fatalf("UpdateUser(stale IfVersion) = %v, want ErrVersionChanged", err)
		}
		if u, _ := e.S.User("alice"); u.Hash != "new" {
			e.Fatalf("hash = %q after a refused rehash, want the new one", u.Hash)
		}
		again := "rehash-of-new"
		if u, err := e.S.UpdateUser("alice", store.Change{Hash: &again, IfVersion: &cur.TokenVersion}); err != nil || u.Hash != again {
			e.Fatalf("UpdateUser(current IfVersion) = %+v, %v", u, err)
		}
	}},
	{"UserVersionsNeverReused", func(e *Env) {
		old, err := e.S.CreateUser(store.User{Name: "alice"})
		e.must(err)
		e.must(e.S.DeleteUser("Alice"))
		if _, err := e.Handle().User("alice"); !errors.Is(err, store.ErrNotFound) {
			e.Fatalf("removed user still read: %v", err)
		}
		u, err := e.S.CreateUser(store.User{Name: "alice"})
		e.must(err)
		if u.TokenVersion == old.TokenVersion {
			e.Fatalf("re-created user got version %d, old was %d", u.TokenVersion, old.TokenVersion)
		}
	}},
	{"UserList", func(e *Env) {
		if users, err := e.S.Users(); err != nil || len(users) != 0 {
			e.Fatalf("empty store: %+v, %v", users, err)
		}
		for _, n := range []string{"carol", "Alice", "bob"} {
			_, err := e.S.CreateUser(store.User{Name: n, Role: "user"})
			e.must(err)
		}
		users, err := e.Handle().Users()
		e.must(err)
		if len(users) != 3 || users[0].Name != "alice" || users[1].Name != "bob" || users[2].Name != "carol" {
			e.Fatalf("Users = %+v", users)
		}
	}},
	{"UserDeleteEndsSessions", func(e *Env) {
		_, err := e.S.CreateUser(store.User{Name: "alice"})
		e.must(err)
		_, tok, err := e.S.CreateSession("alice", "", time.Hour)
		e.must(err)
		e.must(e.S.DeleteUser("alice"))
		if _, _, err := e.S.Refresh(tok, "", time.Hour); !errors.Is(err, store.ErrRefreshInvalid) {
			e.Fatalf("refresh of a removed user's session: %v, want ErrRefreshInvalid", err)
		}
		_, err = e.S.CreateUser(store.User{Name: "alice"})
		e.must(err)
		if ss, err := e.S.Sessions("alice"); err != nil || len(ss) != 0 {
			e.Fatalf("a re-created user inherits sessions: %+v, %v", ss, err)
		}
	}},
	{"UserReadsCoherent", func(e *Env) {
		// Readers racing a writer never see a value older than the last
		// write once it returned, on the writer's handle.
		_, err := e.S.CreateUser(store.User{Name: "alice", Role: "user"})
		e.must(err)
		done := make(chan struct{})
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-done:
						return
					default:
						e.S.User("alice")
					}
				}
			}()
		}
		for i := range 30 {
			role := []string{"admin", "user"}[i%2]
			if _, err := e.S.UpdateUser("alice", store.Change{Role: &role}); err != nil {
				close(done)
				wg.Wait()
				e.Fatal(err)
			}
			if u, _ := e.S.User("alice"); u.Role != role {
				close(done)
				wg.Wait()
				e.Fatalf("after write %d read role %q, want %q", i, u.Role, role)
			}
		}
		close(done)
		wg.Wait()
		e.must(e.S.DeleteUser("alice"))
		if _, err := e.S.User("alice"); !errors.Is(err, store.ErrNotFound) {
			e.Fatalf("deleted user still served: %v", err)
		}
	}},
}

// keyCases: signing keys (first key, rotation, retirement).
var keyCases = []Case{
	{"KeyFirstAndRotate", func(e *Env) {
		if keys, err := e.S.Keys(); err != nil || len(keys) != 0 {
			e.Fatalf("empty store: %+v, %v", keys, err)
		}
		k1, err := e.S.ActiveKey()
		e.must(err)
		if len(k1.Secret) != store.KeySize || k1.Kid == "" || !k1.Active() || !k1.CreatedAt.Equal(e.Clock.Now()) {
			e.Fatalf("ActiveKey = %+v", k1)
		}
		if again, err := e.Handle().ActiveKey(); err != nil || again.Kid != k1.Kid || string(again.Secret) != string(k1.Secret) {
			e.Fatalf("ActiveKey again = %+v, %v; want %s", again, err, k1.Kid)
		}
		e.must(e.S.NoteTTL(k1.Kid, time.Hour))
		e.must(e.S.NoteTTL(k1.Kid, time.Minute)) // not a new maximum: kept at 1 h
		e.Clock.Add(time.Minute)
		k2, err := e.S.RotateKey()
		e.must(err)
		if k2.Kid == k1.Kid || !k2.Active() {
			e.Fatalf("RotateKey = %+v", k2)
		}
		keys, err := e.S.Keys()
		e.must(err)
		if len(keys) != 2 || keys[0].Kid != k2.Kid || !keys[0].Active() || keys[1].Kid != k1.Kid || keys[1].Active() {
			e.Fatalf("keys after rotation: %+v", keys)
		}
		if keys[1].MaxTTL != time.Hour || !keys[1].RetiredAt.Equal(e.Clock.Now()) {
			e.Fatalf("retired key %+v: want MaxTTL 1h, retired now", keys[1])
		}
		if want := e.Clock.Now().Add(time.Hour + 5*time.Minute); !keys[1].Expires().Equal(want) || !keys[1].Verifies(e.Clock.Now()) {
			e.Fatalf("retired key expires %v, want %v", keys[1].Expires(), want)
		}
		if k, err := e.S.ActiveKey(); err != nil || k.Kid != k2.Kid {
			e.Fatalf("ActiveKey after rotation = %+v, %v", k, err)
		}
		e.Clock.Add(time.Hour + 5*time.Minute)
		keys, err = e.S.Keys()
		e.must(err)
		if len(keys) != 1 || keys[0].Kid != k2.Kid {
			e.Fatalf("expired key still listed: %+v", keys)
		}
		k3, err := e.S.RotateKey()
		e.must(err)
		keys, err = e.S.Keys()
		e.must(err)
		if len(keys) != 2 || keys[0].Kid != k3.Kid || keys[1].Kid != k2.Kid {
			e.Fatalf("keys after the second rotation: %+v", keys)
		}
		if err := e.S.NoteTTL("nope", time.Hour); !errors.Is(err, store.ErrNotFound) {
			e.Fatalf("NoteTTL unknown kid: %v", err)
		}
	}},
	{"KeyActiveRace", func(e *Env) {
		// Processes racing to make the first key all get the same one.
		const each = 4
		handles := []store.Store{e.S, e.Handle()}
		kids := make(chan string, each*len(handles))
		var wg sync.WaitGroup
		for _, h := range handles {
			for range each {
				wg.Add(1)
				go func() {
					defer wg.Done()
					k, err := h.ActiveKey()
					if err != nil {
						e.Error(err)
						return
					}
					kids <- k.Kid
				}()
			}
		}
		wg.Wait()
		close(kids)
		first := ""
		for kid := range kids {
			if first == "" {
				first = kid
			}
			if kid != first {
				e.Fatalf("ActiveKey returned %s and %s", first, kid)
			}
		}
		keys, err := e.S.Keys()
		e.must(err)
		if len(keys) != 1 || keys[0].Kid != first {
			e.Fatalf("keys after the race: %+v, want only %s", keys, first)
		}
	}},
	{"KeyRotateRace", func(e *Env) {
		// Concurrent rotations on two processes all succeed and leave one
		// active key.
		_, err := e.S.ActiveKey()
		e.must(err)
		handles := []store.Store{e.S, e.Handle()}
		var wg sync.WaitGroup
		for _, h := range handles {
			for range 3 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := h.RotateKey(); err != nil {
						e.Error(err)
					}
				}()
			}
		}
		wg.Wait()
		keys, err := e.S.Keys()
		e.must(err)
		active := 0
		for _, k := range keys {
			if k.Active() {
				active++
			}
		}
		if len(keys) != 7 || active != 1 || !keys[0].Active() {
			e.Fatalf("after 6 rotations: %d keys, %d active: %+v", len(keys), active, keys)
		}
	}},
	{"KeyRotationSeenByOtherHandle", func(e *Env) {
		other := e.Handle()
		k1, err := other.ActiveKey()
		e.must(err)
		k2, err := e.S.RotateKey()
		e.must(err)
		keys, err := other.Keys()
		e.must(err)
		if len(keys) != 2 || keys[0].Kid != k2.Kid || keys[1].Kid != k1.Kid || string(keys[0].Secret) != string(k2.Secret) {
			e.Fatalf("other handle's keys after rotation: %+v", keys)
		}
		if k, err := other.ActiveKey(); err != nil || k.Kid != k2.Kid {
			e.Fatalf("other handle's ActiveKey = %+v, %v; want %s", k, err, k2.Kid)
		}
	}},
	{"KeyRetire", func(e *Env) {
		k1, err := e.S.ActiveKey()
		e.must(err)
		e.must(e.S.NoteTTL(k1.Kid, time.Hour))
		if _, err := e.S.RetireKey(k1.Kid); !errors.Is(err, store.ErrKeyActive) {
			e.Fatalf("retire the active key: %v, want ErrKeyActive", err)
		}
		if _, err := e.S.RetireKey("nope"); !errors.Is(err, store.ErrNotFound) {
			e.Fatalf("retire an unknown key: %v, want ErrNotFound", err)
		}
		_, err = e.S.RotateKey()
		e.must(err)
		e.Clock.Add(time.Minute)
		r, err := e.Handle().RetireKey(k1.Kid)
		e.must(err)
		if r.Kid != k1.Kid || !r.RevokedAt.Equal(e.Clock.Now()) || r.Verifies(e.Clock.Now()) {
			e.Fatalf("retired key = %+v", r)
		}
		keys, err := e.S.Keys()
		e.must(err)
		if len(keys) != 2 || keys[1].Kid != k1.Kid || !keys[1].RevokedAt.Equal(r.RevokedAt) || keys[1].Verifies(e.Clock.Now()) {
			e.Fatalf("keys after retire: %+v", keys)
		}
		e.Clock.Add(time.Minute)
		again, err := e.S.RetireKey(k1.Kid)
		e.must(err)
		if !again.RevokedAt.Equal(r.RevokedAt) {
			e.Fatalf("retiring twice moved RevokedAt from %v to %v", r.RevokedAt, again.RevokedAt)
		}
		e.Clock.Add(2 * time.Hour)
		if _, err := e.S.RetireKey(k1.Kid); !errors.Is(err, store.ErrNotFound) {
			e.Fatalf("retire an expired key: %v, want ErrNotFound", err)
		}
	}},
}
