package pg_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatctl/chatctl/internal/pgtest"
	"github.com/chatctl/chatctl/store"
	"github.com/chatctl/chatctl/store/pg"
)

// Ensure several processes starting at once on an empty database create
// the schema exactly once, and every one of them gets a working store.
func TestConcurrentStart(t *testing.T) {
	url := pgtest.URL(t)
	const n = 8
	var wg sync.WaitGroup
	dbs := make([]*pg.DB, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dbs[i], errs[i] = pg.Open(context.Background(), url, pg.Options{})
		}()
	}
	wg.Wait()
	created := 0
	for i, db := range dbs {
		if errs[i] != nil {
			t.Fatalf("open %d: %v", i, errs[i])
		}
		defer db.Close()
		if db.Created() {
			created++
		}
		if v, err := db.Schema(); err != nil || v < 1 {
			t.Errorf("open %d: schema %d, %v", i, v, err)
		}
	}
	if created != 1 {
		t.Errorf("%d processes say they created the schema, want exactly 1", created)
	}
	if _, err := dbs[3].CreateUser(store.User{Name: "alice", Hash: "h", Role: "user"}); err != nil {
		t.Fatal(err)
	}
	if _, err := dbs[5].User("alice"); err != nil {
		t.Fatal(err)
	}
}

// Ensure Open refuses what it must not touch: a database without the
// schema for a command that only reads or changes what exists, and a
// schema from a newer chatctl.
func TestOpenRefuses(t *testing.T) {
	url := pgtest.URL(t)
	for _, access := range []store.Access{store.Read, store.Write} {
		_, err := pg.Open(context.Background(), url, pg.Options{Access: access})
		if !errors.Is(err, store.ErrNoStore) || !strings.Contains(err.Error(), "no chatctl schema") {
			t.Errorf("access %d on an empty database: %v, want ErrNoStore", access, err)
		}
	}
	db := open(t, url, nil) // creates it
	db.Close()
	c, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	if _, err := c.Exec(context.Background(), `UPDATE chatctl_schema SET version = 99`); err != nil {
		t.Fatal(err)
	}
	if _, err := pg.Open(context.Background(), url, pg.Options{}); !errors.Is(err, store.ErrNewerSchema) {
		t.Errorf("a newer schema: %v, want ErrNewerSchema", err)
	}
}

// Ensure the node lock admits one serving process per database, and dies
// with its holder.
func TestLockNode(t *testing.T) {
	url := pgtest.URL(t)
	a, b := open(t, url, nil), open(t, url, nil)
	ctx := context.Background()
	if err := a.LockNode(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.LockNode(ctx); !errors.Is(err, pg.ErrNodeLocked) {
		t.Fatalf("second node: %v, want ErrNodeLocked", err)
	}
	a.Close()
	if err := b.LockNode(ctx); err != nil {
		t.Fatalf("after the first node closed: %v", err)
	}
}

// Ensure the nodes of a cluster share the node lock, and that a node
// without a broker and a cluster exclude each other.
func TestLockNodeShared(t *testing.T) {
	url := pgtest.URL(t)
	a, b, c := open(t, url, nil), open(t, url, nil), open(t, url, nil)
	ctx := context.Background()
	for _, d := range []*pg.DB{a, b} {
		if err := d.LockNodeShared(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.LockNode(ctx); !errors.Is(err, pg.ErrNodeLocked) {
		t.Fatalf("a node without a broker beside a cluster: %v, want ErrNodeLocked", err)
	}
	a.Close()
	b.Close()
	if err := c.LockNode(ctx); err != nil {
		t.Fatalf("after the cluster stopped: %v", err)
	}
	d := open(t, url, nil)
	if err := d.LockNodeShared(ctx); !errors.Is(err, pg.ErrNodeAlone) {
		t.Fatalf("a cluster node beside a node without a broker: %v, want ErrNodeAlone", err)
	}
}

// Ensure Watch reports what another handle changes, in commit order,
// after applying it to its own caches (a disabled user is read afresh),
// and says "reset" when changes it never saw were pruned.
func TestWatch(t *testing.T) {
	url := pgtest.URL(t)
	server, cli := open(t, url, nil), open(t, url, nil)
	if _, err := cli.CreateUser(store.User{Name: "alice", Hash: "h", Role: "user"}); err != nil {
		t.Fatal(err)
	}
	type change struct{ kind, key string }
	got := make(chan change, 100)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- server.Watch(ctx, 10*time.Millisecond, func(kind, key string) { got <- change{kind, key} })
	}()
	defer func() { cancel(); <-done }()
	waitChange := func(want change) {
		t.Helper()
		deadline := time.After(30 * time.Second)
		for {
			select {
			case c := <-got:
				if c == want {
					return
				}
			case <-deadline:
				t.Fatalf("no %v within 30 s", want)
			}
		}
	}
	// A change committed before Watch read the feed's head is never
	// reported: rotate keys until a rotation is, and Watch runs.
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(30 * time.Second)
	for running := false; !running; {
		if _, err := cli.RotateKey(); err != nil {
			t.Fatal(err)
		}
		select {
		case c := <-got:
			running = c.kind == store.ChangeKey
		case <-tick.C:
		case <-deadline:
			t.Fatal("no key rotation reported within 30 s")
		}
	}
	if _, err := cli.RotateKey(); err != nil {
		t.Fatal(err)
	}
	keys, _ := cli.Keys()
	waitChange(change{store.ChangeKey, keys[0].Kid})

	if u, err := server.User("alice"); err != nil || u.Disabled { // cached now
		t.Fatal(u, err)
	}
	yes := true
	if _, err := cli.UpdateUser("alice", store.Change{Disabled: &yes, RevokeTokens: true}); err != nil {
		t.Fatal(err)
	}
	if err := cli.DenyToken("jti-1", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	waitChange(change{store.ChangeUserRevoke, "alice"})
	if u, _ := server.User("alice"); !u.Disabled {
		t.Error("after the change was reported, the watcher still serves the cached user")
	}
	waitChange(change{store.ChangeJTI, "jti-1"})
	if !server.Denied("jti-1") {
		t.Error("after the change was reported, the watcher does not deny the token")
	}

	// Prune the feed behind the watcher's back, then change more.
	c, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	if err := cli.DenyToken("jti-2", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	// The watcher may or may not have read jti-2 yet: delete it and bump
	// the counter past it, so a watcher that had not sees a gap.
	if _, err := c.Exec(context.Background(), `DELETE FROM changes; UPDATE change_seq SET seq = seq + 5`); err != nil {
		t.Fatal(err)
	}
	if err := cli.DenyToken("jti-3", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	waitChange(change{store.ChangeReset, ""})
	waitChange(change{store.ChangeJTI, "jti-3"})
	if !server.Denied("jti-2") {
		t.Error("after a reset, the watcher does not deny a token revoked during the gap")
	}
}
