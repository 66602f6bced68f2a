package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/chatctl/chatctl/store"
)

// accessCases: access rules, private rooms and read markers (SPEC §8).
var accessCases = []Case{
	{"AccessRulesSetListReset", func(e *Env) {
		s := e.S
		if rs, err := s.AccessRules(); err != nil || len(rs) != 0 {
			e.Fatalf("new store: rules %v, %v; want none", rs, err)
		}
		e.must(s.SetAccessRule(store.AccessRule{User: "Bob", Pattern: "ops-*", Perm: "read-only"}))
		e.must(s.SetAccessRule(store.AccessRule{User: "*", Pattern: "ops-*", Perm: "deny"}))
		e.must(s.SetAccessRule(store.AccessRule{User: "bob", Pattern: "general", Perm: "deny"}))
		// Same user and pattern: replaced, not added.
		e.must(s.SetAccessRule(store.AccessRule{User: "bob", Pattern: "ops-*", Perm: "read-write"}))
		want := []store.AccessRule{
			{User: "*", Pattern: "ops-*", Perm: "deny"},
			{User: "bob", Pattern: "general", Perm: "deny"},
			{User: "bob", Pattern: "ops-*", Perm: "read-write"},
		}
		rs, err := e.Handle().AccessRules()
		e.must(err)
		if !reflect.DeepEqual(rs, want) {
			e.Fatalf("rules %v, want %v", rs, want)
		}
		n, err := s.ResetAccess("bob", "general")
		e.must(err)
		if n != 1 {
			e.Fatalf("reset bob general removed %d, want 1", n)
		}
		if n, _ := s.ResetAccess("bob", "nope"); n != 0 {
			e.Fatalf("reset of a missing rule removed %d", n)
		}
		e.must(s.SetAccessRule(store.AccessRule{User: "bobby", Pattern: "x", Perm: "deny"}))
		n, err = s.ResetAccess("BOB", "")
		e.must(err)
		if n != 1 {
			e.Fatalf("reset bob removed %d, want 1 (bobby's rule is not bob's)", n)
		}
		rs, err = s.AccessRules()
		e.must(err)
		want = []store.AccessRule{{User: "*", Pattern: "ops-*", Perm: "deny"}, {User: "bobby", Pattern: "x", Perm: "deny"}}
		if !reflect.DeepEqual(rs, want) {
			e.Fatalf("after reset: %v, want %v", rs, want)
		}
	}},
	{"PrivateRoomsMembers", func(e *Env) {
		s := e.S
		e.must(s.CreatePrivateRoom("ops", []string{"Carol", "alice", "alice"}))
		if err := s.CreatePrivateRoom("ops", nil); !errors.Is(err, store.ErrRoomExists) {
			e.Fatalf("create twice: %v, want ErrRoomExists", err)
		}
		e.must(s.CreatePrivateRoom("empty", nil))
		e.must(s.SetMember("ops", "Bob", true))
		e.must(s.SetMember("ops", "bob", true)) // twice: no error, no duplicate
		e.must(s.SetMember("ops", "carol", false))
		if err := s.SetMember("ops", "carol", false); !errors.Is(err, store.ErrNotFound) {
			e.Fatalf("kick a non-member: %v, want ErrNotFound", err)
		}
		if err := s.SetMember("public", "bob", true); !errors.Is(err, store.ErrNotFound) {
			e.Fatalf("add to a room that is not private: %v, want ErrNotFound", err)
		}
		ps, err := e.Handle().PrivateRooms()
		e.must(err)
		want := []store.PrivateRoom{{Name: "empty", Members: []string{}}, {Name: "ops", Members: []string{"alice", "bob"}}}
		if !reflect.DeepEqual(ps, want) {
			e.Fatalf("private rooms %#v, want %#v", ps, want)
		}
	}},
	{"DeletePrivateRoom", func(e *Env) {
		// A private room is deleted whole, history or not; a room that is
		// neither private nor has history is not found.
		e.must(e.S.CreatePrivateRoom("staff", []string{"alice", "bob"}))
		e.must(e.S.CreatePrivateRoom("quiet", []string{"alice"}))
		if _, err := e.S.AppendMessage(context.Background(), "staff", "alice", "hi", e.Clock.Now()); err != nil {
			e.Fatal(err)
		}
		e.must(e.S.DeleteRoom("staff"))
		e.must(e.Handle().DeleteRoom("quiet"))
		rooms, err := e.S.PrivateRooms()
		e.must(err)
		if len(rooms) != 0 {
			e.Fatalf("private rooms after deleting both: %+v", rooms)
		}
		if ms, _ := e.S.MessagesAfter("staff", 0, 10); len(ms) != 0 {
			e.Fatalf("history after delete: %+v", ms)
		}
		for _, name := range []string{"staff", "nowhere"} {
			if err := e.S.DeleteRoom(name); !errors.Is(err, store.ErrNotFound) {
				e.Errorf("delete %s again: %v, want ErrNotFound", name, err)
			}
		}
		// Created again, the room starts public with no members.
		if m, err := e.S.AppendMessage(context.Background(), "staff", "carol", "new", e.Clock.Now()); err != nil || m.ID != 1 {
			e.Fatalf("append after delete: %+v %v", m, err)
		}
	}},
	{"ReadMarkersNeverBackwards", func(e *Env) {
		s := e.S
		m, err := s.SetReadMarker("Alice", "general", 5)
		e.must(err)
		if m != (store.ReadMark{ID: 5, Moved: true}) {
			e.Fatalf("first marker %+v", m)
		}
		if m, _ = s.SetReadMarker("alice", "general", 3); m != (store.ReadMark{ID: 5}) {
			e.Fatalf("lower id: %+v, want 5 unmoved", m)
		}
		if m, _ = s.SetReadMarker("alice", "general", 5); m != (store.ReadMark{ID: 5}) {
			e.Fatalf("same id: %+v, want 5 unmoved", m)
		}
		if m, _ = s.SetReadMarker("alice", "general", 9); m != (store.ReadMark{ID: 9, Moved: true}) {
			e.Fatalf("higher id: %+v", m)
		}
		_, err = s.SetReadMarker("alice", "@alice+bob", 2)
		e.must(err)
		_, err = s.SetReadMarker("bob", "general", 1)
		e.must(err)
		got, err := e.Handle().ReadMarkers("ALICE")
		e.must(err)
		if want := map[string]uint64{"general": 9, "@alice+bob": 2}; !reflect.DeepEqual(got, want) {
			e.Fatalf("alice's markers %v, want %v", got, want)
		}
		if got, err := s.ReadMarkers("nobody"); err != nil || got == nil || len(got) != 0 {
			e.Fatalf("markers of a user without any: %v, %v; want an empty map", got, err)
		}
	}},
}

func init() {
	accessCases = append(accessCases, Case{"DeclaredNames", func(e *Env) {
		s := e.S
		if got, err := s.Declared("users"); err != nil || got == nil || len(got) != 0 {
			e.Fatalf("nothing declared: %v, %v; want an empty list", got, err)
		}
		e.must(s.SetDeclared("users", []string{"bob", "alice", "bob"}))
		e.must(s.SetDeclared("access", []string{"x"}))
		got, err := e.Handle().Declared("users")
		e.must(err)
		if !reflect.DeepEqual(got, []string{"alice", "bob"}) {
			e.Fatalf("declared users %v", got)
		}
		e.must(s.SetDeclared("users", nil))
		if got, _ := s.Declared("users"); len(got) != 0 {
			e.Fatalf("after clearing: %v", got)
		}
		if got, _ := s.Declared("access"); !reflect.DeepEqual(got, []string{"x"}) {
			e.Fatalf("declared access %v", got)
		}
	}})
}

func init() {
	accessCases = append(accessCases, Case{"AccessChangesInFeed", func(e *Env) {
		// Another process's server must learn of rule and membership
		// changes (it keeps them in memory): kinds access and members.
		w, ok := e.Handle().(store.Watcher)
		if !e.Shared() || !ok {
			e.Skip("one process per store: changes need no feed")
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var mu sync.Mutex
		seen := map[string][]string{}
		go func() {
			_ = w.Watch(ctx, 10*time.Millisecond, func(kind, key string) {
				mu.Lock()
				seen[kind] = append(seen[kind], key)
				mu.Unlock()
			})
		}()
		// Watch starts at the feed's head once it runs: repeat each
		// change (a new one each time) until it shows.
		waitFor := func(kind, key string, change func(i int)) {
			e.Helper()
			deadline := time.Now().Add(10 * time.Second)
			for i := 0; ; i++ {
				change(i)
				for end := time.Now().Add(100 * time.Millisecond); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
					mu.Lock()
					got := slices.Contains(seen[kind], key)
					mu.Unlock()
					if got {
						return
					}
				}
				if time.Now().After(deadline) {
					e.Fatalf("no %s change for %s in the feed: %v", kind, key, seen)
				}
			}
		}
		waitFor(store.ChangeAccess, "bob", func(i int) {
			e.must(e.S.SetAccessRule(store.AccessRule{User: "Bob", Pattern: fmt.Sprintf("r%d", i), Perm: "deny"}))
		})
		waitFor(store.ChangeMembers, "board", func(i int) {
			if i == 0 {
				e.must(e.S.CreatePrivateRoom("board", nil))
			}
			e.must(e.S.SetMember("board", fmt.Sprintf("u%d", i), true))
		})
		mu.Lock()
		seen = map[string][]string{}
		mu.Unlock()
		waitFor(store.ChangeAccess, "*", func(int) {
			e.must(e.S.SetAccessRule(store.AccessRule{User: "*", Pattern: "x", Perm: "deny"}))
			_, err := e.S.ResetAccess("*", "x")
			e.must(err)
		})
	}})
}
