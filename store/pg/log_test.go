package pg

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/chatctl/chatctl/store"
)

// recordHandler hands every record's message to a channel.
type recordHandler struct{ msgs chan string }

func (h recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h recordHandler) Handle(_ context.Context, r slog.Record) error {
	h.msgs <- r.Message
	return nil
}
func (h recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h recordHandler) WithGroup(string) slog.Handler      { return h }

// Ensure the store's own warnings go to Options.Log (the server's logger,
// in its format), not to the process's default logger: the change feed and
// the node lock say once that the database went away, and once that they
// are back.
func TestLogToOptionsLog(t *testing.T) {
	h := recordHandler{msgs: make(chan string, 64)}
	db, p := openVia(t, Options{Log: slog.New(h)})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := db.LockNode(ctx); err != nil {
		t.Fatal(err)
	}
	watched := make(chan error, 1)
	seen := make(chan struct{}, 1)
	go func() {
		watched <- db.Watch(ctx, 20*time.Millisecond, func(string, string) {
			select {
			case seen <- struct{}{}:
			default:
			}
		})
	}()
	defer func() { cancel(); <-watched }()
	// A change seen through the feed: Watch is past its start. (One made
	// before Watch read the feed's head would never be seen: make them
	// until one is.)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	timeout := time.After(30 * time.Second)
	for waiting := true; waiting; {
		if err := db.SetAccessRule(store.AccessRule{User: "u", Pattern: "r", Perm: "read"}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-seen:
			waiting = false
		case err := <-watched:
			t.Fatalf("Watch: %v", err)
		case <-timeout:
			t.Fatal("no change seen within 30 s")
		case <-tick.C:
		}
	}
	expect := func(want ...string) {
		t.Helper()
		timeout := time.After(30 * time.Second)
		for len(want) > 0 {
			select {
			case m := <-h.msgs:
				for i, w := range want {
					if strings.HasPrefix(m, w) {
						want = append(want[:i], want[i+1:]...)
						break
					}
				}
			case <-timeout:
				t.Fatalf("not logged within 30 s: %q", want)
			}
		}
	}
	p.Stop()
	expect("change feed: cannot read", "node lock lost with its connection")
	p.Start()
	expect("change feed: reading again", "node lock taken again")
}
