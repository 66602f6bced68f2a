package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/chatctl/chatctl/admin"
	"github.com/chatctl/chatctl/configs"
	"github.com/chatctl/chatctl/store"
)

// testPassword is the password of every user the helpers create.
const testPassword = "correct horse battery"

var bg = context.Background()

// clock is a settable clock, safe for the concurrent use handlers make of
// it. It starts at the wall clock (to the second) so that the hub, which
// checks token expiry against time.Now, agrees with the tokens it mints.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().Truncate(time.Second)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// logBuffer collects log output; handlers write to it concurrently.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// env is a Server behind a real listener, on a temporary store, with a
// settable clock, bcrypt.MinCost and its logs captured as JSON.
type env struct {
	t      testing.TB
	cfg    *configs.Config
	svc    *admin.Service
	db     *store.DB
	srv    *Server
	ts     *httptest.Server
	clock  *clock
	logs   *logBuffer
	closed bool // the test closed the store itself

	// fault, when set, fails every store write as a full disk would.
	// It is a pointer because on copies env.
	fault *atomic.Pointer[error]
}

// writeFault is the store's Options.WriteFault: the error in e.fault.
func (e *env) writeFault() error {
	if p := e.fault.Load(); p != nil {
		return *p
	}
	return nil
}

// testConfig is the default configuration made fast for tests. Validate is
// bypassed: bcrypt.MinCost is below the allowed range.
func testConfig(tb testing.TB) *configs.Config {
	cfg := configs.Default()
	cfg.DB = filepath.Join(tb.TempDir(), "c.db")
	cfg.Password.BcryptCost = bcrypt.MinCost
	return cfg
}

// newEnv starts a server; mutate, when not nil, adjusts the config first.
// The hub runs, so /ws works. Cleanup stops everything and checks the
// store's consistency.
func newEnv(tb testing.TB, mutate func(*configs.Config)) *env {
	tb.Helper()
	cfg := testConfig(tb)
	if mutate != nil {
		mutate(cfg)
	}
	e := &env{t: tb, cfg: cfg, clock: newClock(), logs: &logBuffer{}, fault: new(atomic.Pointer[error])}
	db, err := store.Open(cfg.DB, store.Options{Now: e.clock.Now, NoSync: true, WriteFault: e.writeFault})
	if err != nil {
		tb.Fatal(err)
	}
	svc, err := admin.New(db, cfg, e.clock.Now)
	if err != nil {
		db.Close()
		tb.Fatal(err)
	}
	e.db, e.svc = db, svc
	log := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.srv = NewServer(log, cfg, svc, Options{Now: e.clock.Now})
	e.ts = httptest.NewServer(e.srv)
	ctx, cancel := context.WithCancel(context.Background())
	hubDone := make(chan struct{})
	go func() {
		defer close(hubDone)
		e.srv.Hub().Run(ctx)
	}()
	tb.Cleanup(func() {
		e.ts.Close()
		cancel()
		<-hubDone
		e.srv.Close()
		if e.closed {
			return
		}
		if err := db.Check(); err != nil {
			tb.Error(err)
		}
		if err := svc.Close(); err != nil {
			tb.Error(err)
		}
	})
	return e
}

// closeStore closes the store under the running server.
func (e *env) closeStore() {
	e.t.Helper()
	e.closed = true
	if err := e.svc.Close(); err != nil {
		e.t.Fatal(err)
	}
}

// addUser creates a user with testPassword.
func (e *env) addUser(name, role string) {
	e.t.Helper()
	if _, err := e.svc.AddUser(bg, admin.AddUserRequest{Name: name, Role: role, Password: testPassword}); err != nil {
		e.t.Fatal(err)
	}
}

// issue mints an access token for name as `chatctl token issue` does.
func (e *env) issue(name string) string {
	e.t.Helper()
	tok, err := e.svc.IssueToken(bg, name, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok.AccessToken
}

// response is an HTTP answer with its body read.
type response struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the body into a map, failing the test when it is not a
// JSON object.
func (r response) json(tb testing.TB) map[string]any {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		tb.Fatalf("body %q is not a JSON object: %v", r.body, err)
	}
	return m
}

// into decodes the body into v.
func (r response) into(tb testing.TB, v any) {
	tb.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		tb.Fatalf("body %q: %v", r.body, err)
	}
}

// request sends one request. body is sent as is when it is a string or
// []byte, else as JSON; header values are set on the request. The answer
// is checked against /openapi.json (see checkSpec).
func (e *env) request(method, path string, header map[string]string, body any) response {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
		if header == nil || header["Content-Type"] == "" {
			header = with(header, "Content-Type", "application/json")
		}
	}
	req, err := http.NewRequest(method, e.ts.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	checkSpec(e.t, method, path, resp.StatusCode, resp.Header, data)
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

// with returns a copy of h with k set to v.
func with(h map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for hk, hv := range h {
		if hk != k {
			out[hk] = hv
		}
	}
	return out
}

// bearerHeader is the Authorization header for tok.
func bearerHeader(tok string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + tok}
}

// call sends a JSON request with a bearer token ("" for none).
func (e *env) call(method, path, tok string, body any) response {
	e.t.Helper()
	var h map[string]string
	if tok != "" {
		h = bearerHeader(tok)
	}
	return e.request(method, path, h, body)
}

// postToken posts form to /token, from the client forwardedFor through a
// trusted proxy when it is not empty.
func (e *env) postToken(form url.Values, forwardedFor string) response {
	e.t.Helper()
	h := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	if forwardedFor != "" {
		h["X-Forwarded-For"] = forwardedFor
	}
	return e.request(http.MethodPost, "/token", h, form.Encode())
}

// loginForm is the seed's form: username and password, no grant_type.
func loginForm(name, password string) url.Values {
	return url.Values{"username": {name}, "password": {password}}
}

// login signs in with testPassword and returns the token response.
func (e *env) login(name string) tokenResponse {
	e.t.Helper()
	r := e.postToken(loginForm(name, testPassword), "")
	if r.status != http.StatusOK {
		e.t.Fatalf("login %s: %d %s", name, r.status, r.body)
	}
	var tr tokenResponse
	r.into(e.t, &tr)
	return tr
}

// refresh posts the refresh_token grant.
func (e *env) refresh(rt, forwardedFor string) response {
	e.t.Helper()
	return e.postToken(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, forwardedFor)
}

// wantBody fails unless r has status and a JSON body equal to want.
func wantBody(tb testing.TB, r response, status int, want map[string]any) {
	tb.Helper()
	if r.status != status {
		tb.Fatalf("status = %d, want %d; body %s", r.status, status, r.body)
	}
	got := r.json(tb)
	wantJSON, _ := json.Marshal(want)
	gotJSON, _ := json.Marshal(got)
	if !bytes.Equal(wantJSON, gotJSON) {
		tb.Fatalf("body = %s, want %s", gotJSON, wantJSON)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		tb.Errorf("Content-Type = %q, want application/json", ct)
	}
}

// unauthorizedBody is the seed's answer to a missing or bad token.
var unauthorizedBody = map[string]any{"detail": "Could not validate credentials"}

// Bearer challenges of RFC 6750 §3.1: without a token, and for a bad one.
const (
	challengeMissing = "Bearer"
	challengeInvalid = `Bearer error="invalid_token"`
)

// wantUnauthorized fails unless r is the 401 of a missing or bad token
// (TestBearerChallenge tells the two apart).
func wantUnauthorized(tb testing.TB, r response) {
	tb.Helper()
	wantBody(tb, r, http.StatusUnauthorized, unauthorizedBody)
	if got := r.header.Get("WWW-Authenticate"); got != challengeMissing && got != challengeInvalid {
		tb.Errorf("WWW-Authenticate = %q, want %q or %q", got, challengeMissing, challengeInvalid)
	}
}

// wantCode fails unless r has status and an error body with code.
func wantCode(tb testing.TB, r response, status int, code string) {
	tb.Helper()
	if r.status != status {
		tb.Fatalf("status = %d, want %d; body %s", r.status, status, r.body)
	}
	m := r.json(tb)
	if m["code"] != code {
		tb.Errorf("code = %v, want %q; body %s", m["code"], code, r.body)
	}
	if d, _ := m["detail"].(string); d == "" {
		tb.Errorf("error body without detail: %s", r.body)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not a wait for an event
	}
}

// on returns e with its helpers reporting to t, for use in subtests.
func (e *env) on(t testing.TB) *env {
	c := *e
	c.t = t
	return &c
}
