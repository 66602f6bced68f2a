package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/chatctl/chatctl/internal/pgtest"
)

// pgDir returns a folder whose chatctl processes use a fresh PostgreSQL
// database (the test skips without one; see pgtest).
func pgDir(t testing.TB) (dir, dbURL string) {
	dbURL = pgtest.URL(t)
	dir = t.TempDir()
	useStore(t, dir, dbURL)
	return dir, dbURL
}

// Ensure every acknowledged message survives a SIGKILL of a node on
// PostgreSQL, gapless, and that the node restarted at once starts (its
// node lock died with it).
func TestPostgresKillKeepsAckedMessages(t *testing.T) {
	dir, _ := pgDir(t)
	testKillKeepsAcked(t, dir)
}

// Ensure a second node on one PostgreSQL store without a broker refuses to
// start, and that the first node's lock goes with it when it is killed.
func TestPostgresOneNode(t *testing.T) {
	dir, _ := pgDir(t)
	addUser(t, dir, "alice", "user")
	first := startServer(t, dir)
	c := exec.Command(os.Args[0], "serve", "--listen", "127.0.0.1:0")
	c.Env = env(dir)
	var stderr strings.Builder
	c.Stderr = &stderr
	done := make(chan error, 1)
	must(t, c.Start())
	go func() { done <- c.Wait() }()
	select {
	case err := <-done:
		msg := strings.TrimSpace(stderr.String())
		if err == nil || !strings.Contains(msg, "another chatctl serve is using this PostgreSQL store") || strings.Count(msg, "\n") > 0 {
			t.Fatalf("second node: %v, stderr %q; want exit 1 with one line naming the other node", err, msg)
		}
	case <-time.After(15 * time.Second):
		c.Process.Kill()
		t.Fatal("a second node on the same store started")
	}
	must(t, first.cmd.Process.Signal(syscall.SIGKILL))
	first.cmd.Wait()
	again := startServer(t, dir) // at once: no lock left behind
	login(t, again, "alice", "password123")
}

// Ensure a wrong store URL stops serve and the CLI with one line naming
// the host, exit 1, and never the password.
func TestPostgresBadURL(t *testing.T) {
	dir := t.TempDir()
	useStore(t, dir, "postgres://bob:s3cret-pw@127.0.0.1:1/chatctl?sslmode=disable")
	for _, args := range [][]string{{"serve", "--listen", "127.0.0.1:0"}, {"user", "list"}} {
		start := time.Now()
		_, stderr, err := chatctl(t, dir, "", args...)
		line := strings.TrimSpace(stderr)
		if err == nil || strings.Contains(stderr, "s3cret-pw") || strings.Contains(line, "\n") ||
			!strings.HasPrefix(line, "error: ") || !strings.Contains(line, "127.0.0.1:1") {
			t.Errorf("%v: %v, stderr %q; want exit 1 and one line naming 127.0.0.1:1 without the password", args, err, stderr)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("%v took %v to fail", args, d)
		}
	}
}

// Ensure what the CLI changes in the database reaches a running server
// within a second or so: a disabled user's socket gets 4003 and its token
// 401, a revoked token 401, a token signed after a rotation verifies.
func TestPostgresCLIReachesServer(t *testing.T) {
	dir, _ := pgDir(t)
	addUser(t, dir, "alice", "user")
	addUser(t, dir, "bob", "user")
	srv := startServer(t, dir)
	tokA := login(t, srv, "alice", "password123")
	c := dial(t, srv, tokA)
	must(t, c.WriteJSON(map[string]any{"type": "join", "room": "r"}))
	next(t, c, "joined")

	d := disableAndWait(t, dir, "alice", c)
	t.Logf("user disable to close 4003: %v", d)
	if d > 3*time.Second {
		t.Errorf("the socket closed %v after user disable; SPEC §7 wants about a second", d)
	}
	if st := me(t, srv, tokA); st != http.StatusUnauthorized {
		t.Errorf("/users/me with a disabled user's token: %d, want 401", st)
	}

	issued := issueToken(t, dir, "bob")
	if st := me(t, srv, issued.Token); st != http.StatusOK {
		t.Fatalf("/users/me with a token the CLI issued: %d", st)
	}
	if _, stderr, err := chatctl(t, dir, "", "token", "revoke", issued.JTI); err != nil {
		t.Fatalf("token revoke: %v %s", err, stderr)
	}
	waitStatus(t, srv, issued.Token, http.StatusUnauthorized, "a revoked token is refused")

	if _, stderr, err := chatctl(t, dir, "", "key", "rotate"); err != nil {
		t.Fatalf("key rotate: %v %s", err, stderr)
	}
	tok, stderr, err := chatctl(t, dir, "", "token", "issue", "bob")
	if err != nil {
		t.Fatalf("token issue: %v %s", err, stderr)
	}
	waitStatus(t, srv, strings.TrimSpace(tok), http.StatusOK, "a token signed with the rotated-in key verifies")

	// An access rule set by the CLI closes the room for a live member.
	cb := dial(t, srv, login(t, srv, "bob", "password123"))
	must(t, cb.WriteJSON(map[string]any{"type": "join", "room": "ops"}))
	next(t, cb, "joined")
	start := time.Now()
	if _, stderr, err := chatctl(t, dir, "", "access", "bob", "ops", "deny"); err != nil {
		t.Fatalf("access: %v %s", err, stderr)
	}
	if f := next(t, cb, "left"); f.Room != "ops" {
		t.Fatalf("left frame %+v, want room ops", f)
	}
	t.Logf("access deny to left: %v", time.Since(start))
}

// disableAndWait runs `chatctl user disable name` and returns how long
// after its start c was closed with 4003.
func disableAndWait(t testing.TB, dir, name string, c *websocket.Conn) time.Duration {
	t.Helper()
	closed := make(chan error, 1)
	go func() {
		c.SetReadDeadline(time.Now().Add(15 * time.Second))
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				closed <- err
				return
			}
		}
	}()
	start := time.Now()
	cmd := exec.Command(os.Args[0], "user", "disable", name)
	cmd.Env = env(dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("user disable: %v %s", err, out)
	}
	err := <-closed
	d := time.Since(start)
	if !websocket.IsCloseError(err, 4003) {
		t.Fatalf("socket ended with %v, want close 4003", err)
	}
	return d
}

// issued is what `chatctl token issue -o json` prints, in part.
type issued struct {
	Token string `json:"access_token"`
	JTI   string `json:"jti"`
}

// issueToken issues an access token for user with the CLI.
func issueToken(t *testing.T, dir, user string) issued {
	t.Helper()
	out, stderr, err := chatctl(t, dir, "", "token", "issue", user, "-o", "json")
	if err != nil {
		t.Fatalf("token issue: %v %s", err, stderr)
	}
	var i issued
	must(t, json.Unmarshal([]byte(out), &i))
	if i.Token == "" || i.JTI == "" {
		t.Fatalf("token issue -o json: %s", out)
	}
	return i
}

// me returns the status of GET /users/me with tok.
func me(t testing.TB, s *server, tok string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", s.url("/users/me"), nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitStatus waits up to 3 s for /users/me with tok to answer want.
func waitStatus(t *testing.T, s *server, tok string, want int, what string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		st := me(t, s, tok)
		if st == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: /users/me still %d after 3 s, want %d", what, st, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Ensure a node survives PostgreSQL going away (SPEC §7): sends get error
// unavailable and no ack, /token 503 with Retry-After, /health 503, a
// checked token keeps working; when the database is back the node
// recovers by itself and the next id follows the last without a gap.
func TestPostgresDown(t *testing.T) {
	via, proxy := pgtest.Via(t, pgtest.URL(t))
	dir := t.TempDir()
	useStore(t, dir, via)
	addUser(t, dir, "alice", "user")
	srv := startServer(t, dir)
	tok := login(t, srv, "alice", "password123")
	if st := me(t, srv, tok); st != http.StatusOK {
		t.Fatalf("/users/me: %d", st)
	}
	c := dial(t, srv, tok)
	must(t, c.WriteJSON(map[string]any{"type": "join", "room": "r"}))
	next(t, c, "joined")
	for i := 1; i <= 3; i++ {
		must(t, c.WriteJSON(map[string]any{"type": "send", "room": "r", "text": fmt.Sprint("m", i), "ref": fmt.Sprint(i)}))
		if a := next(t, c, "ack"); a.ID != uint64(i) {
			t.Fatalf("ack %d has id %d", i, a.ID)
		}
	}

	proxy.Stop()
	must(t, c.WriteJSON(map[string]any{"type": "send", "room": "r", "text": "lost", "ref": "down"}))
	c.SetReadDeadline(time.Now().Add(15 * time.Second))
	for {
		var f frame
		must(t, c.ReadJSON(&f))
		if f.Type == "ack" {
			t.Fatalf("a send was acked while the database was away: %+v", f)
		}
		if f.Type == "error" {
			if f.Code != "unavailable" || f.Ref != "down" {
				t.Fatalf("error frame %+v, want code unavailable, ref down", f)
			}
			break
		}
	}
	resp, err := http.PostForm(srv.url("/token"), url.Values{"username": {"alice"}, "password": {"password123"}})
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("/token with the database away: %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if st := me(t, srv, tok); st != http.StatusOK {
		t.Errorf("/users/me with a checked token while the database is away: %d, want 200", st)
	}
	resp, err = http.Get(srv.url("/health"))
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/health with the database away: %d, want 503", resp.StatusCode)
	}

	proxy.Start()
	deadline := time.Now().Add(20 * time.Second)
	var acked uint64
	for n := 0; acked == 0; n++ {
		if time.Now().After(deadline) {
			t.Fatal("no ack within 20 s of the database coming back")
		}
		ref := fmt.Sprint("back", n)
		must(t, c.WriteJSON(map[string]any{"type": "send", "room": "r", "text": "back", "ref": ref}))
		c.SetReadDeadline(time.Now().Add(15 * time.Second))
		for {
			var f frame
			must(t, c.ReadJSON(&f))
			if f.Type == "ack" && f.Ref == ref {
				acked = f.ID
				break
			}
			if f.Type == "error" && f.Ref == ref {
				time.Sleep(200 * time.Millisecond) // the pool reconnects on its own; try again
				break
			}
		}
	}
	if acked != 4 {
		t.Fatalf("first ack after the database came back has id %d, want 4 (no id used by failed sends)", acked)
	}
	resp, err = http.Get(srv.url("/health"))
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/health after recovery: %d, want 200", resp.StatusCode)
	}
}

// BenchmarkPostgresDisableToClose measures the time from the start of
// `chatctl user disable` (a separate process, on the database) to the
// 4003 close of the user's socket on a running node: 20 tries, reported
// as p50 and p99 in ms.
//
//	CHATCTL_TEST_POSTGRES=… go test ./e2e -run '^$' -bench PostgresDisableToClose -benchtime 1x
func BenchmarkPostgresDisableToClose(b *testing.B) {
	dir, _ := pgDir(b)
	const tries = 20
	for i := range tries {
		addUser(b, dir, fmt.Sprint("u", i), "user")
	}
	srv := startServer(b, dir)
	var ds []time.Duration
	for b.Loop() {
		ds = ds[:0]
		for i := range tries {
			name := fmt.Sprint("u", i)
			if _, stderr, err := chatctl(b, dir, "", "user", "enable", name); err != nil {
				b.Fatalf("user enable: %v %s", err, stderr)
			}
			c := dial(b, srv, login(b, srv, name, "password123"))
			ds = append(ds, disableAndWait(b, dir, name, c))
			c.Close()
		}
	}
	slices.Sort(ds)
	b.ReportMetric(float64(ds[len(ds)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(ds[len(ds)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(ds[len(ds)-1].Microseconds())/1000, "max-ms")
}
