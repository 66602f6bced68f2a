package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Ensure every kind of CLI command works while serve holds the store, and
// that a change made through the socket takes effect on the live server.
func TestCLIWhileServing(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, dir)
	sock := filepath.Join(dir, "c.db.sock")
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin socket: %v, mode %v", err, fi.Mode())
	}
	addUser(t, dir, "carol", "admin") // through the socket
	out, stderr, err := chatctl(t, dir, "", "user", "list", "-o", "json")
	if err != nil || !strings.Contains(out, `"carol"`) {
		t.Fatalf("user list: %v %s %s", err, out, stderr)
	}
	tok, _, err := chatctl(t, dir, "", "token", "issue", "carol")
	if err != nil {
		t.Fatal(err)
	}
	tok = strings.TrimSpace(tok)
	if out, _, err := chatctl(t, dir, tok, "token", "inspect", "-"); err != nil || !strings.Contains(out, "status: valid") {
		t.Fatalf("inspect: %v %s", err, out)
	}
	login(t, srv, "carol", "password123")
	out, _, err = chatctl(t, dir, "", "token", "list", "carol", "-o", "json")
	var sessions []map[string]any
	if err != nil || json.Unmarshal([]byte(out), &sessions) != nil || len(sessions) != 1 {
		t.Fatalf("token list: %v %s", err, out)
	}
	if _, stderr, err := chatctl(t, dir, "", "user", "disable", "carol"); err != nil {
		t.Fatalf("disable: %v %s", err, stderr)
	}
	out, _, err = chatctl(t, dir, tok, "token", "inspect", "-")
	if err == nil || !strings.Contains(out, "user disabled") {
		t.Fatalf("token of a disabled user: %v %s", err, out)
	}
	for _, args := range [][]string{{"key", "list"}, {"key", "rotate"}, {"room", "list"}, {"config", "show"}} {
		if _, stderr, err := chatctl(t, dir, "", args...); err != nil {
			t.Errorf("%v: %v %s", args, err, stderr)
		}
	}
}

// Ensure a store held by a process that offers no socket makes commands
// fail within 2 s with a message naming the cause.
func TestLockedStoreFailsFast(t *testing.T) {
	dir := t.TempDir()
	db, err := bolt.Open(filepath.Join(dir, "c.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	start := time.Now()
	_, stderr, err := chatctl(t, dir, "", "user", "list")
	took := time.Since(start)
	if err == nil {
		t.Fatal("user list succeeded on a locked store")
	}
	if took > 2*time.Second {
		t.Errorf("took %s, want under 2 s", took)
	}
	for _, want := range []string{"c.db", "another chatctl holds it", "no chatctl server answers"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr %q does not mention %q", stderr, want)
		}
	}
	if strings.Count(strings.TrimSpace(stderr), "\n") != 0 || !strings.HasPrefix(stderr, "error: ") {
		t.Errorf("want one line starting with 'error: ', got %q", stderr)
	}
}

// Ensure `chatctl user unlock` reaches the running server through its
// socket and clears the failed-login counters that made it answer 429.
func TestUnlockWhileServing(t *testing.T) {
	dir := t.TempDir()
	// A refill of one failure an hour: a slow machine's bcrypt cannot
	// give a token back before the 429 is checked.
	srv := startServer(t, dir, "CHATCTL_LOGIN_USER_BURST=2", "CHATCTL_LOGIN_USER_PER_MINUTE=0.0167")
	addUser(t, dir, "dave", "user")
	post := func(pw string) int {
		t.Helper()
		resp, err := http.PostForm(srv.url("/token"), url.Values{"username": {"dave"}, "password": {pw}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for range 2 {
		if st := post("wrong password"); st != http.StatusUnauthorized {
			t.Fatalf("wrong password = %d, want 401", st)
		}
	}
	if st := post("password123"); st != http.StatusTooManyRequests {
		t.Fatalf("after 2 failures = %d, want 429", st)
	}
	_, stderr, err := chatctl(t, dir, "", "user", "unlock", "dave")
	if err != nil || !strings.Contains(stderr, "unlocked dave: cleared 2 failed-login counters in the running server") {
		t.Fatalf("user unlock: %v %s", err, stderr)
	}
	if st := post("password123"); st != http.StatusOK {
		t.Fatalf("after unlock = %d, want 200", st)
	}
}
