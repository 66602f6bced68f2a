// Package e2e runs the real chatctl as a separate process: a server that
// is killed or drained, and CLI commands beside it. The test binary
// doubles as chatctl: with CHATCTL_E2E_MAIN=1 it runs cmd.Main instead of
// the tests, so no separate build step is needed.
package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chatctl/chatctl/cmd"
)

func TestMain(m *testing.M) {
	if os.Getenv("CHATCTL_E2E_MAIN") == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := cmd.Main(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// env is a hermetic environment for chatctl processes.
func env(dir string, extra ...string) []string {
	e := []string{"CHATCTL_E2E_MAIN=1", "HOME=" + dir, "PATH=" + os.Getenv("PATH"),
		"CHATCTL_DB=" + filepath.Join(dir, "c.db"), "CHATCTL_PASSWORD_BCRYPT_COST=10"}
	storesMu.Lock()
	if u := stores[dir]; u != "" {
		e = append(e, "CHATCTL_STORE="+u)
	}
	storesMu.Unlock()
	return append(e, extra...)
}

var (
	storesMu sync.Mutex            // guards stores
	stores   = map[string]string{} // dir -> PostgreSQL URL of the processes run there
)

// useStore makes every chatctl process run in dir use the PostgreSQL
// store at url.
func useStore(t testing.TB, dir, url string) {
	storesMu.Lock()
	stores[dir] = url
	storesMu.Unlock()
	t.Cleanup(func() {
		storesMu.Lock()
		delete(stores, dir)
		storesMu.Unlock()
	})
}

// chatctl runs one CLI command to completion.
func chatctl(t testing.TB, dir, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	c := exec.Command(os.Args[0], args...)
	c.Env = env(dir)
	c.Stdin = strings.NewReader(stdin)
	var o, e strings.Builder
	c.Stdout, c.Stderr = &o, &e
	err = c.Run()
	return o.String(), e.String(), err
}

// server is a running `chatctl serve` process.
type server struct {
	cmd  *exec.Cmd
	addr string
	out  chan string
}

var listening = regexp.MustCompile(`listening on http://(\S+)`)

// startServer starts chatctl serve on a free port and waits until it says
// where it listens.
func startServer(t testing.TB, dir string, extra ...string) *server {
	t.Helper()
	c := exec.Command(os.Args[0], "serve", "--listen", "127.0.0.1:0")
	c.Env = env(dir, extra...)
	stdout, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c.Stderr = io.Discard
	if testing.Verbose() {
		c.Stderr = os.Stderr
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: c, out: make(chan string, 16)}
	t.Cleanup(func() { c.Process.Kill(); c.Wait() })
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case s.out <- sc.Text():
			default:
			}
		}
		close(s.out)
	}()
	deadline := time.After(15 * time.Second)
	for s.addr == "" {
		select {
		case line, ok := <-s.out:
			if !ok {
				t.Fatal("server exited before listening")
			}
			if m := listening.FindStringSubmatch(line); m != nil {
				s.addr = m[1]
			}
		case <-deadline:
			t.Fatal("server did not start within 15 s")
		}
	}
	return s
}

func (s *server) url(path string) string { return "http://" + s.addr + path }

// login returns an access token for user.
func login(t testing.TB, s *server, user, pw string) string {
	t.Helper()
	resp, err := http.PostForm(s.url("/token"), map[string][]string{"username": {user}, "password": {pw}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&body) != nil {
		t.Fatalf("login %s: %s", user, resp.Status)
	}
	return body.AccessToken
}

// addUser creates a user with the CLI.
func addUser(t testing.TB, dir, name, role string) {
	t.Helper()
	if _, stderr, err := chatctl(t, dir, "password123\n", "user", "add", name, "--role", role, "--password-stdin"); err != nil {
		t.Fatalf("user add %s: %v: %s", name, err, stderr)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
