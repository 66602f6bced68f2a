package pg

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatctl/chatctl/internal/pgtest"
	"github.com/chatctl/chatctl/store"
)

// start is the clock of these tests.
var start = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// clock is a settable clock, safe for concurrent use.
type clock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// openURL opens a handle on url, closed at cleanup.
func openURL(t *testing.T, url string, now func() time.Time) *DB {
	t.Helper()
	db, err := Open(context.Background(), url, Options{Access: store.Create, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// changes returns the change feed after seq, as "kind key" lines.
func changes(t *testing.T, db *DB, after int64) ([]string, int64) {
	t.Helper()
	rows, err := db.pool.Query(context.Background(), `SELECT seq, kind, key FROM changes WHERE seq > $1 ORDER BY seq`, after)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var kind, key string
		if err := rows.Scan(&after, &kind, &key); err != nil {
			t.Fatal(err)
		}
		out = append(out, kind+" "+key)
	}
	return out, after
}

// Ensure every write other processes must act on appends its change, in
// its transaction, and refused writes append none.
func TestChangeFeedRows(t *testing.T) {
	c := &clock{t: start}
	db := openURL(t, pgtest.URL(t), c.Now)
	var seq int64
	expect := func(what string, want ...string) {
		t.Helper()
		var got []string
		got, seq = changes(t, db, seq)
		if strings.Join(got, ", ") != strings.Join(want, ", ") {
			t.Fatalf("%s: changes %q, want %q", what, got, want)
		}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err := db.CreateUser(store.User{Name: "Alice", Role: "user"})
	must(err)
	expect("create")
	role, dis, en, hash := "admin", true, false, "h"
	_, err = db.UpdateUser("ALICE", store.Change{Role: &role})
	must(err)
	expect("role", "user alice")
	_, err = db.UpdateUser("alice", store.Change{Hash: &hash})
	must(err)
	expect("hash without revoke", "user alice")
	_, err = db.UpdateUser("alice", store.Change{Disabled: &dis})
	must(err)
	expect("disable", "user.revoke alice")
	_, err = db.UpdateUser("alice", store.Change{Disabled: &en})
	must(err)
	expect("enable", "user alice")
	_, err = db.UpdateUser("alice", store.Change{Hash: &hash, RevokeTokens: true})
	must(err)
	expect("passwd", "user.revoke alice")
	stale := uint64(1)
	if _, err := db.UpdateUser("alice", store.Change{Role: &role, IfVersion: &stale}); !errors.Is(err, store.ErrVersionChanged) {
		t.Fatal(err)
	}
	expect("refused update")

	must(db.DenyToken("jti-1", c.Now().Add(time.Hour)))
	expect("deny", "jti jti-1")
	s, tok, err := db.CreateSession("alice", "", time.Hour)
	must(err)
	expect("session start")
	_, _, err = db.Refresh(tok, "", time.Hour)
	must(err)
	expect("refresh")
	if _, _, err := db.Refresh(tok, "", time.Hour); !errors.Is(err, store.ErrRefreshReused) {
		t.Fatal(err)
	}
	expect("reuse", "session "+s.ID)
	s2, _, err := db.CreateSession("alice", "", time.Hour)
	must(err)
	_, err = db.RevokeSession(s2.ID)
	must(err)
	expect("revoke session", "session "+s2.ID)

	k1, err := db.ActiveKey()
	must(err)
	expect("first key", "key "+k1.Kid)
	_, err = db.ActiveKey()
	must(err)
	expect("active key read")
	k2, err := db.RotateKey()
	must(err)
	expect("rotate", "key "+k2.Kid)
	_, err = db.RetireKey(k1.Kid)
	must(err)
	expect("retire", "key "+k1.Kid)
	_, err = db.RetireKey(k1.Kid)
	must(err)
	expect("retire again")
	must(db.NoteTTL(k2.Kid, time.Hour))
	expect("note ttl")

	must(db.DeleteUser("alice"))
	expect("remove", "user.revoke alice")
}

// Ensure User serves from memory only while the feed is watched, and
// applyChange drops what another process changed; without watching,
// every read sees the database.
func TestUserCacheWatching(t *testing.T) {
	c := &clock{t: start}
	url := pgtest.URL(t)
	a, b := openURL(t, url, c.Now), openURL(t, url, c.Now)
	if _, err := a.CreateUser(store.User{Name: "alice", Role: "user"}); err != nil {
		t.Fatal(err)
	}
	role := func(db *DB) string {
		t.Helper()
		u, err := db.User("Alice")
		if err != nil {
			t.Fatal(err)
		}
		return u.Role
	}
	set := func(db *DB, r string) {
		t.Helper()
		if _, err := db.UpdateUser("alice", store.Change{Role: &r}); err != nil {
			t.Fatal(err)
		}
	}
	// Not watching: another process's write is seen at once.
	set(b, "admin")
	if got := role(a); got != "admin" {
		t.Fatalf("not watching: role %q, want admin", got)
	}
	// Watching: cached until the change reaches applyChange.
	a.watching.Store(true)
	role(a)
	set(b, "user")
	if got := role(a); got != "admin" {
		t.Fatalf("watching: role %q before the change was applied; the cache is not used", got)
	}
	a.applyChange("user", "alice")
	if got := role(a); got != "user" {
		t.Fatalf("after applyChange(user): role %q, want user", got)
	}
	dis := true
	if _, err := b.UpdateUser("alice", store.Change{Disabled: &dis, RevokeTokens: true}); err != nil {
		t.Fatal(err)
	}
	a.applyChange("user.revoke", "alice")
	if u, _ := a.User("alice"); !u.Disabled {
		t.Fatal("after applyChange(user.revoke): still enabled")
	}
	// Own writes update the cache without the feed.
	set(a, "admin")
	if got := role(a); got != "admin" {
		t.Fatalf("own write: role %q, want admin", got)
	}
	// Watching stops: the cache goes, reads see the database again.
	set(b, "user")
	a.watching.Store(false)
	if got := role(a); got != "user" {
		t.Fatalf("after watching stopped: role %q, want user", got)
	}
	if a.users.n.Load() != 0 {
		t.Fatal("cache kept while not watching")
	}
	if err := b.DeleteUser("alice"); err != nil {
		t.Fatal(err)
	}
	a.watching.Store(true)
	if _, err := a.User("alice"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("removed user: %v", err)
	}
}

// Ensure applyChange puts ids other processes denied on this handle's
// in-memory list, which Denied reads without a query.
func TestApplyChangeDenies(t *testing.T) {
	c := &clock{t: start}
	url := pgtest.URL(t)
	a, b := openURL(t, url, c.Now), openURL(t, url, c.Now)
	if a.Denied("jti-1") {
		t.Fatal("denied before anything") // and the list is loaded now
	}
	if err := b.DenyToken("jti-1", c.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.CreateUser(store.User{Name: "alice"}); err != nil {
		t.Fatal(err)
	}
	s, _, err := b.CreateSession("alice", "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.RevokeSession(s.ID); err != nil {
		t.Fatal(err)
	}
	if a.Denied("jti-1") || a.Denied(s.ID) {
		t.Fatal("Denied queried the database after its first load")
	}
	a.applyChange("jti", "jti-1")
	a.applyChange("session", s.ID)
	a.applyChange("jti", "never-denied") // a pruned entry: nothing to add
	if !a.Denied("jti-1") || !a.Denied(s.ID) || a.Denied("never-denied") {
		t.Fatalf("after applyChange: jti %v, session %v, unknown %v", a.Denied("jti-1"), a.Denied(s.ID), a.Denied("never-denied"))
	}
	exp, _ := a.denied.ids.Load(s.ID)
	if want := s.ExpiresAt.Add(store.SessionDenyMargin); !exp.(time.Time).Equal(want) {
		t.Fatalf("session denied until %v, want %v", exp, want)
	}
	// Prune drops entries that expired, from memory too.
	c.Add(2 * time.Hour)
	if _, err := a.PruneSessions(); err != nil {
		t.Fatal(err)
	}
	if a.Denied("jti-1") {
		t.Fatal("expired entry still denied after prune")
	}
}

// Ensure keys whose tokens have all expired are deleted by the next
// rotation, and racing first-key creators leave exactly one row.
func TestKeyRows(t *testing.T) {
	c := &clock{t: start}
	url := pgtest.URL(t)
	handles := []*DB{openURL(t, url, c.Now), openURL(t, url, c.Now), openURL(t, url, c.Now)}
	var wg sync.WaitGroup
	for _, h := range handles {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := h.ActiveKey(); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	db := handles[0]
	count := func() (n int) {
		t.Helper()
		if err := db.pool.QueryRow(context.Background(), `SELECT count(*) FROM keys`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(); n != 1 {
		t.Fatalf("%d keys after the race, want 1", n)
	}
	if _, err := db.RotateKey(); err != nil {
		t.Fatal(err)
	}
	c.Add(time.Hour)
	if _, err := db.RotateKey(); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 2 {
		t.Fatalf("%d keys stored, want the expired one deleted", n)
	}
}

// Ensure a database that went away gives errors wrapping
// store.ErrUnavailable that name the host and never the password, and
// LastWriteErr reports the failed write.
func TestUnavailable(t *testing.T) {
	u := pgtest.URL(t)
	target := strings.SplitN(strings.TrimPrefix(u, "postgres://"), "/", 2)
	host := target[0][strings.LastIndex(target[0], "@")+1:]
	openURL(t, u, time.Now) // creates the schema
	p := pgtest.NewProxy(t, host)
	via := "postgres://postgres:sekrit-pw@" + p.Addr + "/" + target[1]
	db := openURL(t, via, time.Now)
	if _, err := db.CreateUser(store.User{Name: "alice"}); err != nil {
		t.Fatal(err)
	}
	p.Stop()
	checks := map[string]error{}
	_, checks["User"] = db.User("alice")
	_, checks["CreateUser"] = db.CreateUser(store.User{Name: "bob"})
	_, checks["UpdateUser"] = db.UpdateUser("alice", store.Change{RevokeTokens: true})
	_, checks["Keys"] = db.Keys()
	_, checks["ActiveKey"] = db.ActiveKey()
	_, _, checks["CreateSession"] = db.CreateSession("alice", "", time.Hour)
	_, _, checks["Refresh"] = db.Refresh(store.NewRefreshToken(store.NewSessionID()), "", time.Hour)
	checks["DenyToken"] = db.DenyToken("j", time.Now().Add(time.Hour))
	checks["AppendAudit"] = db.AppendAudit(store.AuditEntry{Action: "x"})
	_, checks["Audit"] = db.Audit(store.AuditQuery{})
	for name, err := range checks {
		if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), p.Addr) || strings.Contains(err.Error(), "sekrit") {
			t.Errorf("%s: %v; want ErrUnavailable naming %s, without the password", name, err, p.Addr)
		}
	}
	if err := db.LastWriteErr(); err == nil {
		t.Error("LastWriteErr is nil after failed writes")
	}
	if db.Denied("j") {
		t.Error("a failed DenyToken was remembered")
	}
}

// BenchmarkUser measures one user read, the store part of a token check:
// from memory while the change feed is watched, else one query.
func BenchmarkUser(b *testing.B) {
	url := pgtest.URL(b)
	db, err := Open(context.Background(), url, Options{Access: store.Create})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	db.CreateUser(store.User{Name: "bob", Hash: "$2b$12$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234", Role: "user"})
	for _, watching := range []bool{true, false} {
		b.Run(fmt.Sprintf("watching=%v", watching), func(b *testing.B) {
			db.watching.Store(watching)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := db.User("bob"); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// Ensure the cache never serves a value older than the last write while
// watching, with readers racing the writer.
func TestUserCacheCoherent(t *testing.T) {
	db := openURL(t, pgtest.URL(t), (&clock{t: start}).Now)
	db.setWatching(true)
	if _, err := db.CreateUser(store.User{Name: "alice", Role: "user"}); err != nil {
		t.Fatal(err)
	}
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
					db.User("alice")
				}
			}
		}()
	}
	defer func() { close(done); wg.Wait() }()
	for i := range 50 {
		role := []string{"admin", "user"}[i%2]
		if _, err := db.UpdateUser("alice", store.Change{Role: &role}); err != nil {
			t.Fatal(err)
		}
		if u, _ := db.User("alice"); u.Role != role {
			t.Fatalf("after write %d read role %q, want %q", i, u.Role, role)
		}
	}
	if db.users.n.Load() == 0 {
		t.Fatal("nothing cached while watching")
	}
}

// Ensure ActiveKey, meeting a first key another process is inserting,
// waits for it and returns that key rather than making a second.
func TestActiveKeyLoser(t *testing.T) {
	c := &clock{t: start}
	db := openURL(t, pgtest.URL(t), c.Now)
	ctx := context.Background()
	other, err := db.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Rollback(ctx)
	if _, err := other.Exec(ctx, `INSERT INTO keys (kid, secret, created_at) VALUES ('other', '\x00', now())`); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() {
		k, err := db.ActiveKey()
		if err != nil {
			t.Error(err)
		}
		got <- k.Kid
	}()
	// Wait until ActiveKey's insert waits on the uncommitted key.
	deadline := time.Now().Add(5 * time.Second)
	for {
		var waiting int
		if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("ActiveKey never waited for the other insert")
		}
		time.Sleep(5 * time.Millisecond) // polling, not waiting for an event
	}
	if err := other.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if kid := <-got; kid != "other" {
		t.Fatalf("ActiveKey = %s, want the other process's key", kid)
	}
	var n int
	db.pool.QueryRow(ctx, `SELECT count(*) FROM keys`).Scan(&n)
	if n != 1 {
		t.Fatalf("%d keys, want 1", n)
	}
}
