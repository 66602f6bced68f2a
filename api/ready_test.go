package api

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/chatctl/chatctl/configs"
)

// Ensure /ready answers 200 {"status":"ready"} on a working store, and 503
// unavailable with the reason while the last store write failed (until
// one succeeds) and once the store is closed, while /health keeps the
// seed's exact body when all is well.
func TestReadyStore(t *testing.T) {
	e := newEnv(t, nil)
	e.addUser("root", "admin")
	tok := e.issue("root")
	ready := func() {
		t.Helper()
		if r := e.request(http.MethodGet, "/ready", nil, nil); r.status != http.StatusOK || string(r.body) != `{"status":"ready"}`+"\n" {
			t.Fatalf("/ready = %d %q, want 200 {\"status\":\"ready\"}", r.status, r.body)
		}
		if r := e.request(http.MethodGet, "/health", nil, nil); r.status != http.StatusOK || string(r.body) != `{"status":"ok"}`+"\n" {
			t.Fatalf("/health = %d %q, want the seed's body", r.status, r.body)
		}
	}
	notReady := func(want string) {
		t.Helper()
		r := e.request(http.MethodGet, "/ready", nil, nil)
		if r.status != http.StatusServiceUnavailable {
			t.Fatalf("/ready = %d %s, want 503", r.status, r.body)
		}
		m := r.json(t)
		if d, _ := m["detail"].(string); m["status"] != "unavailable" || !strings.Contains(d, want) {
			t.Errorf("/ready body = %s, want status unavailable and %q in detail", r.body, want)
		}
	}
	ready()

	var enospc error = &os.PathError{Op: "write", Path: e.cfg.DB, Err: syscall.ENOSPC}
	e.fault.Store(&enospc)
	if r := e.call(http.MethodPost, "/admin/users", tok, map[string]any{"name": "bob", "password": testPassword}); r.status != http.StatusInternalServerError {
		t.Fatalf("add user on a full disk = %d %s, want 500", r.status, r.body)
	}
	notReady("no space left on device")
	e.fault.Store(nil)
	if r := e.call(http.MethodPost, "/admin/users", tok, map[string]any{"name": "bob", "password": testPassword}); r.status != http.StatusCreated {
		t.Fatalf("add user after the disk recovered = %d %s, want 201", r.status, r.body)
	}
	ready()

	e.closeStore()
	notReady("database not open")
	if r := e.request(http.MethodGet, "/health", nil, nil); r.status != http.StatusServiceUnavailable {
		t.Errorf("/health on a closed store = %d %s, want 503", r.status, r.body)
	}
}

// opsServed is a Serve running on real listeners: the public address and,
// when metrics.listen is set, the metrics one.
type opsServed struct {
	addr, metrics string
	cancel        context.CancelFunc
	errc          chan error
}

// startOpsServe runs Serve on cfg (listen and metrics.listen on port 0 of
// loopback) until the test ends, and waits until it accepts connections.
func startOpsServe(t *testing.T, mutate func(*configs.Config)) *opsServed {
	t.Helper()
	cfg := configs.Default()
	cfg.DB = filepath.Join(socketDir(t), "c.db")
	cfg.Listen = "127.0.0.1:0"
	cfg.Password.BcryptCost = bcrypt.MinCost
	if mutate != nil {
		mutate(cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &opsServed{cancel: cancel, errc: make(chan error, 1)}
	ready, metricsReady := make(chan string, 1), make(chan string, 1)
	go func() {
		s.errc <- Serve(ctx, cfg, slog.New(slog.DiscardHandler), ServeOptions{
			Ready:        func(a string) { ready <- a },
			MetricsReady: func(a string) { metricsReady <- a },
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-s.errc
	})
	select {
	case s.addr = <-ready:
	case err := <-s.errc:
		s.errc <- err
		t.Fatalf("Serve returned before Ready: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("Serve never became ready")
	}
	if cfg.Metrics.Listen != "" {
		s.metrics = <-metricsReady // sent before Ready
	}
	return s
}

// stop cancels Serve and waits for it to return nil.
func (s *opsServed) stop(t *testing.T) {
	t.Helper()
	s.cancel()
	select {
	case err := <-s.errc:
		s.errc <- err // for Cleanup
		if err != nil {
			t.Fatalf("Serve = %v, want nil", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
}

// fetchFresh sends GET url on a new connection; safe off the test's
// goroutine.
func fetchFresh(url string) (response, error) {
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: body}, err
}

// getFresh is fetchFresh failing t on error, and checking the answer
// against /openapi.json when checked is true (the public listener's
// routes).
func getFresh(t *testing.T, url string, checked bool) response {
	t.Helper()
	r, err := fetchFresh(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	if checked {
		checkFetched(t, url, r)
	}
	return r
}

// checkFetched holds r, the answer to GET url, to /openapi.json.
func checkFetched(t *testing.T, url string, r response) {
	t.Helper()
	rest := strings.TrimPrefix(url, "http://")
	checkSpec(t, http.MethodGet, rest[strings.Index(rest, "/"):], r.status, r.header, r.body)
}

// Ensure metrics.listen moves /metrics to its own listener: there it
// answers (with /health and /ready, counting the public listener's
// requests), the public listener answers 404 for /metrics, the metrics
// listener serves nothing else, and it closes with the others on
// shutdown.
func TestMetricsListen(t *testing.T) {
	s := startOpsServe(t, func(c *configs.Config) { c.Metrics.Listen = "127.0.0.1:0" })
	if s.metrics == "" || s.metrics == s.addr {
		t.Fatalf("metrics address %q, public %q", s.metrics, s.addr)
	}
	pub, met := "http://"+s.addr, "http://"+s.metrics

	if r := getFresh(t, pub+"/ready", true); r.status != http.StatusOK {
		t.Fatalf("public /ready = %d %s", r.status, r.body)
	}
	if r := getFresh(t, pub+"/metrics", true); r.status != http.StatusNotFound || r.json(t)["detail"] != "Not Found" {
		t.Errorf("public /metrics with metrics.listen = %d %s, want 404", r.status, r.body)
	}
	r := getFresh(t, met+"/metrics", false)
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
		t.Fatalf("metrics listener /metrics = %d %s", r.status, r.header.Get("Content-Type"))
	}
	if !strings.Contains(string(r.body), `chatctl_http_requests_total{code="200",route="GET /ready"} 1`) {
		t.Errorf("metrics listener does not count the public /ready request:\n%s", linesWith(string(r.body), "chatctl_http_requests_total"))
	}
	if r := getFresh(t, met+"/health", false); r.status != http.StatusOK || string(r.body) != `{"status":"ok"}`+"\n" {
		t.Errorf("metrics listener /health = %d %q", r.status, r.body)
	}
	if r := getFresh(t, met+"/ready", false); r.status != http.StatusOK || string(r.body) != `{"status":"ready"}`+"\n" {
		t.Errorf("metrics listener /ready = %d %q", r.status, r.body)
	}
	for _, p := range []string{"/", "/users/me", "/openapi.json", "/chat", "/admin/users"} {
		if r := getFresh(t, met+p, false); r.status != http.StatusNotFound {
			t.Errorf("metrics listener %s = %d, want 404", p, r.status)
		}
	}
	resp, err := http.Post(met+"/token", "application/x-www-form-urlencoded", strings.NewReader("username=a&password=b"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("metrics listener POST /token = %d, want 404", resp.StatusCode)
	}

	s.stop(t)
	if c, err := net.DialTimeout("tcp", s.metrics, time.Second); err == nil {
		c.Close()
		t.Error("the metrics listener still accepts after shutdown")
	}
}

// linesWith returns the lines of s that contain sub.
func linesWith(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// Ensure /metrics stays on the public listener by default.
func TestMetricsOnPublicByDefault(t *testing.T) {
	s := startOpsServe(t, nil)
	if s.metrics != "" {
		t.Fatalf("a metrics listener at %s without metrics.listen", s.metrics)
	}
	if r := getFresh(t, "http://"+s.addr+"/metrics", true); r.status != http.StatusOK || !strings.Contains(string(r.body), `chatctl_logins_total{result="ok"} 0`) {
		t.Errorf("public /metrics = %d, want 200 with the series", r.status)
	}
}

// Ensure /ready turns 503 draining as soon as a graceful shutdown starts,
// while the listeners (public and metrics) still accept connections, and
// that /health stays 200 meanwhile: the process is alive, it only stops
// taking clients.
func TestReadyDraining(t *testing.T) {
	s := startOpsServe(t, func(c *configs.Config) { c.Metrics.Listen = "127.0.0.1:0" })
	pub, met := "http://"+s.addr, "http://"+s.metrics
	if r := getFresh(t, pub+"/ready", true); r.status != http.StatusOK {
		t.Fatalf("/ready before shutdown = %d %s", r.status, r.body)
	}

	type answer struct {
		name, url string
		r         response
		err       error
	}
	during := []answer{ // answered in drainStarted, read after Serve returned
		{name: "public /ready", url: pub + "/ready"},
		{name: "metrics /ready", url: met + "/ready"},
		{name: "public /health", url: pub + "/health"},
	}
	ran := false
	drainStarted = func() { // on Serve's goroutine: no t.Fatal here
		ran = true
		for i := range during {
			during[i].r, during[i].err = fetchFresh(during[i].url)
		}
	}
	defer func() { drainStarted = nil }()
	s.stop(t)

	if !ran {
		t.Fatal("drain did not call drainStarted")
	}
	for _, a := range during {
		if a.err != nil {
			t.Fatalf("%s while draining: %v (the listener closed before /ready turned 503)", a.name, a.err)
		}
		if a.name != "metrics /ready" {
			checkFetched(t, a.url, a.r)
		}
	}
	for _, a := range during[:2] {
		if a.r.status != http.StatusServiceUnavailable {
			t.Errorf("%s while draining = %d %s, want 503", a.name, a.r.status, a.r.body)
			continue
		}
		if m := a.r.json(t); m["status"] != "draining" || m["detail"] == "" {
			t.Errorf("%s while draining: body %s, want status draining and a detail", a.name, a.r.body)
		}
	}
	if h := during[2].r; h.status != http.StatusOK {
		t.Errorf("/health while draining = %d %s, want 200", h.status, h.body)
	}
	if c, err := net.DialTimeout("tcp", s.addr, time.Second); err == nil {
		c.Close()
		t.Error("the public listener still accepts after shutdown")
	}
}
