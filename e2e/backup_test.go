package e2e

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chatctl/chatctl/store"
)

// Ensure `chatctl backup` taken while senders are acked over /ws holds
// every message acked before it began, with ids 1..n and no gap in each
// room, and that `chatctl restore` brings that copy back as a working
// store.
func TestBackupUnderLoadRestores(t *testing.T) {
	dir := t.TempDir()
	addUser(t, dir, "alice", "user")
	srv := startServer(t, dir)
	tok := login(t, srv, "alice", "password123")

	rooms := []string{"r1", "r2", "r3"}
	var mu sync.Mutex // guards acked and total
	acked := map[string]map[uint64]string{}
	total := 0
	for _, r := range rooms {
		acked[r] = map[uint64]string{}
	}
	// snapshot copies what has been acked so far.
	snapshot := func() (map[string]map[uint64]string, int) {
		mu.Lock()
		defer mu.Unlock()
		out := map[string]map[uint64]string{}
		for r, m := range acked {
			out[r] = maps.Clone(m)
		}
		return out, total
	}
	// waitAcks waits until at least n messages have been acked.
	waitAcks := func(n int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			if _, got := snapshot(); got >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("fewer than %d acks within 30 s", n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 6 {
		room := rooms[i%len(rooms)]
		c := dial(t, srv, tok)
		must(t, c.WriteJSON(map[string]any{"type": "join", "room": room}))
		next(t, c, "joined")
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				text, ref := fmt.Sprintf("s%d-%d", i, n), fmt.Sprint(n)
				if c.WriteJSON(map[string]any{"type": "send", "room": room, "text": text, "ref": ref}) != nil {
					return
				}
				for {
					c.SetReadDeadline(time.Now().Add(10 * time.Second))
					var f frame
					if c.ReadJSON(&f) != nil {
						return
					}
					if f.Type == "ack" && f.Ref == ref {
						mu.Lock()
						acked[room][f.ID] = text
						total++
						mu.Unlock()
						break
					}
					if f.Type == "error" {
						break // rate limited: not sent, try the next
					}
				}
			}
		}()
	}

	// Three backups, each while the senders keep going.
	type taken struct {
		file   string
		before map[string]map[uint64]string
	}
	var backups []taken
	for i := range 3 {
		waitAcks(60 * (i + 1))
		before, n := snapshot()
		file := filepath.Join(dir, fmt.Sprintf("b%d.db", i))
		out, stderr, err := chatctl(t, dir, "", "backup", file, "-o", "json")
		if err != nil {
			t.Fatalf("backup %d: %v: %s", i, err, stderr)
		}
		var res struct {
			Live     bool `json:"live"`
			Messages int  `json:"messages"`
		}
		must(t, json.Unmarshal([]byte(out), &res))
		if !res.Live || res.Messages < n {
			t.Fatalf("backup %d: %s: want a live copy of at least %d messages", i, out, n)
		}
		fi, err := os.Stat(file)
		must(t, err)
		if fi.Mode().Perm() != 0o600 {
			t.Fatalf("backup %d has mode %04o, want 0600", i, fi.Mode().Perm())
		}
		backups = append(backups, taken{file, before})
	}
	close(stop)
	must(t, srv.cmd.Process.Signal(syscall.SIGTERM))
	srv.cmd.Wait()
	wg.Wait()
	all, _ := snapshot()

	leftovers, err := filepath.Glob(filepath.Join(dir, ".*.tmp-*"))
	must(t, err)
	if len(leftovers) > 0 {
		t.Fatalf("temporary files left behind: %v", leftovers)
	}

	for i, b := range backups {
		restored := filepath.Join(dir, fmt.Sprintf("restored%d", i), "c.db")
		if _, stderr, err := chatctl(t, dir, "", "--db", restored, "restore", b.file); err != nil {
			t.Fatalf("restore %d: %v: %s", i, err, stderr)
		}
		db, err := store.Open(restored, store.Options{Access: store.Read})
		must(t, err)
		for _, room := range rooms {
			msgs, err := db.MessagesAfter(room, 0, 1<<20)
			must(t, err)
			got := map[uint64]string{}
			for j, m := range msgs {
				if m.ID != uint64(j+1) {
					t.Fatalf("backup %d room %s: message %d has id %d: ids must run 1, 2, 3 … without gaps", i, room, j, m.ID)
				}
				got[m.ID] = m.Text
				if text, ok := all[room][m.ID]; ok && text != m.Text {
					t.Fatalf("backup %d room %s: message %d is %q, acked as %q", i, room, m.ID, m.Text, text)
				}
			}
			for id, text := range b.before[room] {
				if got[id] != text {
					t.Fatalf("backup %d room %s: message %d %q acked before the backup began is %q in it", i, room, id, text, got[id])
				}
			}
			t.Logf("backup %d room %s: %d acked before it, %d in it", i, room, len(b.before[room]), len(msgs))
		}
		must(t, db.Close())
	}

	// The last copy replaces the live store (server stopped) and serves.
	last := backups[len(backups)-1]
	if _, stderr, err := chatctl(t, dir, "", "restore", last.file); err == nil {
		t.Fatalf("restore over the store without --force succeeded: %s", stderr)
	}
	if _, stderr, err := chatctl(t, dir, "", "restore", last.file, "--force"); err != nil {
		t.Fatalf("restore --force: %v: %s", err, stderr)
	}
	srv2 := startServer(t, dir)
	c := dial(t, srv2, login(t, srv2, "alice", "password123"))
	for _, room := range rooms {
		must(t, c.WriteJSON(map[string]any{"type": "join", "room": room, "since": 0}))
		j := next(t, c, "joined")
		if len(j.Messages) < len(last.before[room]) {
			t.Fatalf("room %s after restore: %d messages, want at least %d", room, len(j.Messages), len(last.before[room]))
		}
	}
}
