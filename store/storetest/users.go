package storetest

import (
	"errors"

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
}

// keyCases: signing keys (first key, rotation, retirement).
var keyCases = []Case{}
