package storetest

import (
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/chatctl/chatctl/store"
)

// sessionCases: refresh sessions and the deny list.
var sessionCases = []Case{
	{"SessionRotateAndReuse", func(e *Env) {
		_, err := e.S.CreateUser(store.User{Name: "alice"})
		e.must(err)
		if _, _, err := e.S.CreateSession("nobody", "127.0.0.1", time.Hour); !errors.Is(err, store.ErrNotFound) {
			e.Fatalf("session for an unknown user: %v, want ErrNotFound", err)
		}
		s, first, err := e.S.CreateSession("Alice", "127.0.0.1", time.Hour)
		e.must(err)
		if !strings.HasPrefix(s.ID, store.SessionPrefix) || !strings.HasPrefix(first, s.ID+".") || s.User != "alice" ||
			!s.CreatedAt.Equal(e.Clock.Now()) || !s.ExpiresAt.Equal(e.Clock.Now().Add(time.Hour)) || s.ClientAddr != "127.0.0.1" {
			e.Fatalf("CreateSession = %+v %q", s, first)
		}
		e.Clock.Add(time.Minute)
		s2, second, err := e.Handle().Refresh(first, "10.0.0.1", 2*time.Hour)
		e.must(err)
		if s2.ID != s.ID || second == first || !strings.HasPrefix(second, s.ID+".") || s2.ClientAddr != "10.0.0.1" ||
			!s2.LastUsed.Equal(e.Clock.Now()) || !s2.ExpiresAt.Equal(e.Clock.Now().Add(2*time.Hour)) || !s2.CreatedAt.Equal(s.CreatedAt) {
			e.Fatalf("Refresh = %+v %q", s2, second)
		}
		if list, err := e.S.Sessions("ALICE"); err != nil || len(list) != 1 || list[0] != s2 {
			e.Fatalf("Sessions = %+v, %v; want [%+v]", list, err, s2)
		}
		for _, bad := range []string{"", "x", "nodot", "ses_x.y", "other.abc", first + "x", s.ID + "."} {
			if _, _, err := e.S.Refresh(bad, "", time.Hour); !errors.Is(err, store.ErrRefreshInvalid) {
				e.Errorf("Refresh(%q) = %v, want ErrRefreshInvalid", bad, err)
			}
		}
		if e.S.Denied(s.ID) {
			e.Fatal("a live session is denied")
		}
		got, _, err := e.S.Refresh(first, "", time.Hour)
		if !errors.Is(err, store.ErrRefreshReused) || got.ID != s.ID || got.User != "alice" {
			e.Fatalf("reuse: %+v, %v; want the session with ErrRefreshReused", got, err)
		}
		if _, _, err := e.S.Refresh(second, "", time.Hour); !errors.Is(err, store.ErrRefreshInvalid) {
			e.Fatalf("the family's newer token after reuse: %v, want ErrRefreshInvalid", err)
		}
		if _, _, err := e.S.Refresh(first, "", time.Hour); !errors.Is(err, store.ErrRefreshInvalid) {
			e.Fatalf("the spent token once the family ended: %v, want ErrRefreshInvalid", err)
		}
		if list, err := e.S.Sessions("alice"); err != nil || len(list) != 0 {
			e.Fatalf("sessions after reuse: %+v, %v", list, err)
		}
		if !e.S.Denied(s.ID) || !e.Handle().Denied(s.ID) {
			e.Fatal("a session ended by reuse is not denied")
		}
	}},
	{"SessionRefreshExpired", func(e *Env) {
		_, err := e.S.CreateUser(store.User{Name: "alice"})
		e.must(err)
		_, tok, err := e.S.CreateSession("alice", "", time.Hour)
		e.must(err)
		e.Clock.Add(time.Hour)
		if _, _, err := e.S.Refresh(tok, "", time.Hour); !errors.Is(err, store.ErrRefreshInvalid) {
			e.Fatalf("refresh at expiry: %v, want ErrRefreshInvalid", err)
		}
		if list, err := e.S.Sessions("alice"); err != nil || len(list) != 0 {
			e.Fatalf("expired sessions listed: %+v, %v", list, err)
		}
	}},
	{"SessionListOrder", func(e *Env) {
		_, err := e.S.CreateUser(store.User{Name: "alice"})
		e.must(err)
		_, err = e.S.CreateUser(store.User{Name: "bob"})
		e.must(err)
		var want []string
		for i := range 3 {
			s, _, err := e.S.CreateSession("alice", "", time.Duration(3-i)*time.Hour)
			e.must(err)
			want = append(want, s.ID)
			e.Clock.Add(time.Minute)
		}
		_, _, err = e.S.CreateSession("bob", "", time.Hour)
		e.must(err)
		list, err := e.Handle().Sessions("alice")
		e.must(err)
		if len(list) != 3 || list[0].ID != want[0] || list[1].ID != want[1] || list[2].ID != want[2] {
			e.Fatalf("Sessions = %+v, want ids %v oldest first", list, want)
		}
		e.Clock.Add(time.Hour) // the third (1 h, started 2 min in) has expired
		list, err = e.S.Sessions("alice")
		e.must(err)
		if len(list) != 2 || list[0].ID != want[0] || list[1].ID != want[1] {
			e.Fatalf("Sessions after one expired = %+v", list)
		}
	}},
	{"SessionRevocation", func(e *Env) {
		_, err := e.S.CreateUser(store.User{Name: "alice"})
		e.must(err)
		_, err = e.S.CreateUser(store.User{Name: "bob"})
		e.must(err)
		a, aliceTok, err := e.S.CreateSession("alice", "", time.Hour)
		e.must(err)
		b, bobTok, err := e.S.CreateSession("bob", "", time.Hour)
		e.must(err)
		_, err = e.Handle().UpdateUser("alice", store.Change{RevokeTokens: true})
		e.must(err)
		if _, _, err := e.S.Refresh(aliceTok, "", time.Hour); !errors.Is(err, store.ErrRefreshInvalid) {
			e.Fatalf("alice's token survives revocation: %v", err)
		}
		if list, _ := e.S.Sessions("alice"); len(list) != 0 {
			e.Fatalf("alice's sessions survive revocation: %+v", list)
		}
		if _, err := e.S.RevokeSession(a.ID); !errors.Is(err, store.ErrNotFound) {
			e.Fatalf("revoke a session ended by the user's revocation: %v, want ErrNotFound", err)
		}
		_, bobTok, err = e.S.Refresh(bobTok, "", time.Hour)
		if err != nil {
			e.Fatalf("bob's session was hit: %v", err)
		}
		got, err := e.S.RevokeSession(b.ID)
		e.must(err)
		if got.ID != b.ID || got.User != "bob" {
			e.Fatalf("RevokeSession = %+v", got)
		}
		if _, err := e.Handle().RevokeSession(b.ID); !errors.Is(err, store.ErrNotFound) {
			e.Fatalf("revoke twice: %v, want ErrNotFound", err)
		}
		if _, _, err := e.S.Refresh(bobTok, "", time.Hour); !errors.Is(err, store.ErrRefreshInvalid) {
			e.Fatalf("bob's token survives RevokeSession: %v", err)
		}
		if !e.S.Denied(b.ID) || !e.Handle().Denied(b.ID) {
			e.Fatal("a revoked session is not denied")
		}
		if e.S.Denied(a.ID) {
			e.Fatal("a session ended by a version change is denied (the version does that)")
		}
	}},
	{"SessionCreateAtVersion", func(e *Env) {
		before, err := e.S.CreateUser(store.User{Name: "alice"})
		e.must(err)
		after, err := e.Handle().UpdateUser("alice", store.Change{RevokeTokens: true}) // passwd, revoke --all…
		e.must(err)
		if after.TokenVersion == before.TokenVersion {
			e.Fatal("RevokeTokens kept the version")
		}
		if _, _, err := e.S.CreateSessionAt("alice", before.TokenVersion, "", time.Hour); !errors.Is(err, store.ErrVersionChanged) {
			e.Fatalf("CreateSessionAt(stale version) = %v, want ErrVersionChanged", err)
		}
		if ss, err := e.S.Sessions("alice"); err != nil || len(ss) != 0 {
			e.Fatalf("sessions after a refused start = %+v, %v", ss, err)
		}
		if _, _, err := e.S.CreateSessionAt("nobody", 1, "", time.Hour); !errors.Is(err, store.ErrNotFound) {
			e.Fatalf("CreateSessionAt(unknown user) = %v, want ErrNotFound", err)
		}
		s, _, err := e.S.CreateSessionAt("Alice", after.TokenVersion, "", time.Hour)
		e.must(err)
		if ss, err := e.S.Sessions("alice"); err != nil || len(ss) != 1 || ss[0].ID != s.ID {
			e.Fatalf("sessions after a start at the current version = %+v, %v", ss, err)
		}
	}},
	{"SessionRefreshRace", func(e *Env) {
		// 16 refreshes of one token on two processes: exactly one wins;
		// the others find it spent (reuse, which ends the family) or the
		// family gone.
		_, err := e.S.CreateUser(store.User{Name: "alice"})
		e.must(err)
		s, tok, err := e.S.CreateSession("alice", "", time.Hour)
		e.must(err)
		handles := []store.Store{e.S, e.Handle()}
		type result struct {
			next string
			err  error
		}
		results := make(chan result, 16)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, next, err := handles[i%2].Refresh(tok, "", time.Hour)
				results <- result{next, err}
			}()
		}
		close(start)
		wg.Wait()
		close(results)
		var won []string
		reused := 0
		for r := range results {
			switch {
			case r.err == nil:
				won = append(won, r.next)
			case errors.Is(r.err, store.ErrRefreshReused):
				reused++
			case errors.Is(r.err, store.ErrRefreshInvalid):
			default:
				e.Errorf("refresh: %v", r.err)
			}
		}
		if len(won) != 1 || reused == 0 {
			e.Fatalf("%d winners and %d reuses of 16, want exactly 1 and at least 1", len(won), reused)
		}
		if _, _, err := e.S.Refresh(won[0], "", time.Hour); !errors.Is(err, store.ErrRefreshInvalid) {
			e.Fatalf("the winner's token after the reuse: %v, want ErrRefreshInvalid", err)
		}
		if ss, err := e.Handle().Sessions("alice"); err != nil || len(ss) != 0 {
			e.Fatalf("sessions after the race: %+v, %v", ss, err)
		}
		if !e.Handle().Denied(s.ID) {
			e.Fatal("the raced session is not denied")
		}
	}},
	{"DenyToken", func(e *Env) {
		if e.S.Denied("jti-1") {
			e.Fatal("denied before DenyToken")
		}
		e.must(e.S.DenyToken("jti-1", e.Clock.Now().Add(time.Hour)))
		e.must(e.S.DenyToken("jti-1", e.Clock.Now().Add(time.Hour))) // twice is fine
		if !e.S.Denied("jti-1") || e.S.Denied("jti-2") {
			e.Fatalf("Denied: jti-1 %v, jti-2 %v", e.S.Denied("jti-1"), e.S.Denied("jti-2"))
		}
		if !e.Handle().Denied("jti-1") {
			e.Fatal("another process does not see the denied jti")
		}
	}},
	{"SessionPrune", func(e *Env) {
		_, err := e.S.CreateUser(store.User{Name: "alice"})
		e.must(err)
		old, tok, err := e.S.CreateSession("alice", "", time.Hour)
		e.must(err)
		for range 3 {
			_, tok, err = e.S.Refresh(tok, "", time.Hour)
			e.must(err)
		}
		e.Clock.Add(30 * time.Minute)
		live, liveTok, err := e.S.CreateSession("alice", "", time.Hour)
		e.must(err)
		e.must(e.S.DenyToken("gone", e.Clock.Now().Add(time.Minute)))
		e.must(e.S.DenyToken("kept", e.Clock.Now().Add(2*time.Hour)))
		e.Clock.Add(45 * time.Minute) // old expired (1 h after its last refresh), live not
		n, err := e.S.PruneSessions()
		e.must(err)
		if n != 1 {
			e.Fatalf("pruned %d sessions, want 1 (%s)", n, old.ID)
		}
		if list, err := e.S.Sessions("alice"); err != nil || len(list) != 1 || list[0].ID != live.ID {
			e.Fatalf("sessions after prune: %+v, %v", list, err)
		}
		if _, _, err := e.S.Refresh(liveTok, "", time.Hour); err != nil {
			e.Fatalf("the live session after prune: %v", err)
		}
		if e.S.Denied("gone") || !e.S.Denied("kept") {
			e.Fatalf("deny list after prune: gone %v, kept %v", e.S.Denied("gone"), e.S.Denied("kept"))
		}
		other := e.Handle()
		if other.Denied("gone") || !other.Denied("kept") {
			e.Fatalf("another process after prune: gone %v, kept %v", other.Denied("gone"), other.Denied("kept"))
		}
		if n, err := e.S.PruneSessions(); err != nil || n != 0 {
			e.Fatalf("second prune: %d, %v", n, err)
		}
	}},
}
