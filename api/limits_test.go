package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/chatctl/chatctl/admin"
	"github.com/chatctl/chatctl/configs"
)

// served is a running Serve for tests.
type served struct {
	cfg  *configs.Config
	addr string
	logs *logBuffer
}

// runServe runs Serve on a new store with mutate applied to the config,
// waits until it is ready and stops it when the test ends.
func runServe(t *testing.T, mutate func(*configs.Config)) *served {
	t.Helper()
	cfg := configs.Default()
	cfg.DB = filepath.Join(socketDir(t), "c.db")
	cfg.Listen = "127.0.0.1:0"
	cfg.Password.BcryptCost = bcrypt.MinCost
	if mutate != nil {
		mutate(cfg)
	}
	s := &served{cfg: cfg, logs: &logBuffer{}}
	log := slog.New(slog.NewJSONHandler(s.logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	errc := make(chan error, 1)
	go func() { errc <- Serve(ctx, cfg, log, ServeOptions{Ready: func(a string) { ready <- a }}) }()
	select {
	case s.addr = <-ready:
	case err := <-errc:
		cancel()
		t.Fatalf("Serve: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("Serve never became ready")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-errc:
		case <-time.After(15 * time.Second):
			t.Error("Serve did not stop")
		}
	})
	return s
}

// shortTimeouts makes every listener's timeouts short for one test.
func shortTimeouts(t *testing.T, read time.Duration) {
	old := timeouts
	timeouts = serverTimeouts{readHeader: read, read: read, write: 10 * time.Second, idle: read}
	t.Cleanup(func() { timeouts = old })
}

// socketClient is an HTTP client that dials the admin socket at path.
func socketClient(path string) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}}
}

// Ensure both listeners, the admin socket included, end a request whose
// body stops arriving after the read timeout instead of holding the
// connection forever.
func TestReadTimeoutEveryListener(t *testing.T) {
	shortTimeouts(t, 300*time.Millisecond)
	s := runServe(t, nil)
	for _, l := range []struct{ name, network, addr string }{
		{"AdminSocket", "unix", s.cfg.SocketPath()},
		{"TCP", "tcp", s.addr},
	} {
		t.Run(l.name, func(t *testing.T) {
			c, err := net.Dial(l.network, l.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			io.WriteString(c, "POST /admin/users HTTP/1.1\r\nHost: chatctl\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"name\":")
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, err = io.Copy(io.Discard, c) // until the server closes
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("the server kept a stalled request open for 10s; read timeout 300ms")
			}
		})
	}
}

// Ensure the admin socket has the same body limit as the TCP listener: a
// body over http.max_body is a 413, not read into memory.
func TestSocketBodyLimit(t *testing.T) {
	s := runServe(t, func(c *configs.Config) { c.HTTP.MaxBody = 4096 })
	huge := `{"name":"` + strings.Repeat("a", 1<<20) + `","password":"` + testPassword + `"}`
	for _, path := range []string{"/admin/users", "/admin/users/alice/password", "/admin/users/alice/tokens"} {
		method := http.MethodPost
		if strings.HasSuffix(path, "password") {
			method = http.MethodPut
		}
		req, _ := http.NewRequest(method, "http://chatctl"+path, strings.NewReader(huge))
		req.Header.Set("Content-Type", "application/json")
		resp, err := socketClient(s.cfg.SocketPath()).Do(req)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge || len(body) > 200 {
			t.Errorf("%s %s with a 1 MiB body = %d %.200s, want a short 413", method, path, resp.StatusCode, body)
		}
	}
}

// Ensure an error never echoes an unbounded input: a 60 KB username (under
// the body limit) comes back cut, with its length, on the socket, on the
// admin API and on sign-up.
func TestErrorsDoNotEchoInput(t *testing.T) {
	e := newEnv(t, func(c *configs.Config) { c.Signup = true })
	e.addUser("root", "admin")
	name := strings.Repeat("N", 60000)
	body := `{"name":"` + name + `","password":"` + testPassword + `"}`
	_, sock := e.serveSocket(t)
	check := func(t *testing.T, status int, data []byte) {
		t.Helper()
		var d detail
		json.Unmarshal(data, &d)
		if status != http.StatusUnprocessableEntity || len(data) > 300 || !strings.Contains(d.Detail, "(60000 bytes)") {
			t.Errorf("= %d %.300s (%d bytes), want a short 422 giving the length", status, data, len(data))
		}
	}
	t.Run("AdminSocket", func(t *testing.T) {
		resp, err := socketClient(sock).Post("http://chatctl/admin/users", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		check(t, resp.StatusCode, data)
	})
	t.Run("AdminAPI", func(t *testing.T) {
		r := e.on(t).call(http.MethodPost, "/admin/users", e.issue("root"), body)
		check(t, r.status, r.body)
	})
	t.Run("Signup", func(t *testing.T) {
		r := e.on(t).call(http.MethodPost, "/users", "", `{"username":"`+name+`","password":"`+testPassword+`"}`)
		check(t, r.status, r.body)
	})
	t.Run("Role", func(t *testing.T) {
		r := e.on(t).call(http.MethodPost, "/admin/users", e.issue("root"), `{"name":"bob","password":"`+testPassword+`","role":"`+name+`"}`)
		check(t, r.status, r.body)
	})
}

// Ensure bodies are read before a bcrypt worker is taken: with as many
// uploads stalled mid-body as there are workers (and one more), a
// complete request still gets a worker and succeeds at once.
func TestHashingReadsBodyFirst(t *testing.T) {
	e := newEnv(t, nil)
	sock := filepath.Join(socketDir(t), "admin.sock")
	ln, err := listenSocket(sock)
	if err != nil {
		t.Fatal(err)
	}
	active := make(chan struct{}, 64)
	hs := &http.Server{Handler: e.srv.SocketHandler(), ConnState: func(_ net.Conn, st http.ConnState) {
		if st == http.StateActive {
			active <- struct{}{}
		}
	}}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	stalled := hashWorkers() + 1
	for i := range stalled {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		path := "/admin/users"
		if i%2 == 1 {
			path = "/admin/users/nobody/password"
		}
		method := "POST"
		if i%2 == 1 {
			method = "PUT"
		}
		io.WriteString(c, method+" "+path+" HTTP/1.1\r\nHost: chatctl\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"name\":")
	}
	for range stalled { // every stalled request has been read up to its body
		select {
		case <-active:
		case <-time.After(10 * time.Second):
			t.Fatal("the stalled requests never started")
		}
	}
	body, _ := json.Marshal(admin.AddUserRequest{Name: "alice", Password: testPassword})
	done := make(chan error, 1)
	go func() {
		resp, err := socketClient(sock).Post("http://chatctl/admin/users", "application/json", bytes.NewReader(body))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				err = &statusError{resp.StatusCode}
			}
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a complete request waited behind stalled uploads for 10s: they hold the bcrypt workers")
	}
}

type statusError struct{ status int }

func (e *statusError) Error() string { return "status " + strconv.Itoa(e.status) }
