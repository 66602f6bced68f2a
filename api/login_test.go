package api

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatctl/chatctl/configs"
)

// floodRequests is how many 60 KB-name logins TestLoginFloodKeepsNoState
// sends; raise it to reproduce issue 10's figure:
//
//	go test ./api -run TestLoginFloodKeepsNoState -v -args -login.flood=10000
var floodRequests = flag.Int("login.flood", 2000, "logins with distinct 60 KB usernames sent by TestLoginFloodKeepsNoState")

// blockHashPool occupies every worker of p and every place in its queue with
// jobs that block until release is called, so that the next do is busy.
func blockHashPool(t *testing.T, p *hashPool) (release func()) {
	t.Helper()
	block := make(chan struct{})
	started := make(chan struct{})
	var wg sync.WaitGroup
	workers := hashWorkers()
	for range workers {
		wg.Go(func() { _ = p.do(bg, func() { started <- struct{}{}; <-block }) })
	}
	for range workers {
		<-started // every worker is busy now
	}
	for range cap(p.jobs) {
		wg.Go(func() { _ = p.do(bg, func() { <-block }) })
	}
	waitFor(t, "the hash queue to fill", func() bool { return len(p.jobs) == cap(p.jobs) })
	var once sync.Once
	release = func() {
		once.Do(func() {
			close(block)
			wg.Wait()
		})
	}
	t.Cleanup(release)
	return release
}

// heapAfterGC returns the live heap, after two collections so that
// finalizers and sync.Pool caches are gone.
func heapAfterGC() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// floodBody is a login form with a distinct ~60 KB username.
func floodBody(i int) string {
	name := fmt.Sprintf("%08d", i) + strings.Repeat("x", 60<<10)
	return url.Values{"username": {name}, "password": {"wrong password"}}.Encode()
}

// Ensure a flood of logins with distinct ~60 KB usernames, while the
// bcrypt pool is full, keeps nothing (issue 10, item 1: 10,000 of them
// took the heap from 2 MB to 744 MB): each is answered 503 busy, no
// per-name state is created for an invalid name, and the heap after GC
// stays within a few MB of where it was. Every request comes from its own
// address, so the per-address map grows too, by bounded keys.
func TestLoginFloodKeepsNoState(t *testing.T) {
	e := newEnv(t, func(c *configs.Config) {
		c.Login.IPBurst = 1 << 30 // every request reaches the full pool
		c.TrustedProxies = []string{"127.0.0.1", "::1"}
	})
	e.addUser("alice", "")
	blockHashPool(t, e.srv.hashes)
	client := e.ts.Client()
	send := func(i int) int {
		req, err := http.NewRequest(http.MethodPost, e.ts.URL+"/token", strings.NewReader(floodBody(i)))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	// Warm up the connection and the server's buffers first.
	for i := range 50 {
		if st := send(1<<23 + i); st != http.StatusServiceUnavailable {
			t.Fatalf("warm-up login %d = %d, want 503 busy", i, st)
		}
	}
	before := heapAfterGC()
	n := *floodRequests
	for i := range n {
		if st := send(i); st != http.StatusServiceUnavailable {
			t.Fatalf("login %d = %d, want 503 busy", i, st)
		}
	}
	after := heapAfterGC()
	t.Logf("heap after GC: %.1f MB before, %.1f MB after %d logins with distinct 60 KB usernames (%d address buckets; the test's captured log holds %.1f MB)",
		float64(before)/1e6, float64(after)/1e6, n, e.srv.loginRate.ip.size(), float64(len(e.logs.String()))/1e6)
	if grown := int64(after) - int64(before); grown > 8<<20 {
		t.Errorf("heap grew by %.1f MB, want at most 8 MB", float64(grown)/1e6)
	}
	if p, a := e.srv.loginRate.pair.size(), e.srv.loginRate.account.size(); p != 0 || a != 0 {
		t.Errorf("invalid names left %d address+name and %d name buckets, want none", p, a)
	}
}

// Ensure an overloaded attempt (503 busy) is never refunded: an address
// that keeps hitting a full pool spends its budget and gets 429, cheaply,
// instead of 503 for ever.
func TestLoginBusyNotRefunded(t *testing.T) {
	e := newEnv(t, limited(3, 100))
	e.addUser("alice", "")
	release := blockHashPool(t, e.srv.hashes)
	for i := range 3 {
		r := e.postToken(loginForm("alice", "wrong password"), "")
		wantStatus(t, r, http.StatusServiceUnavailable)
		if r.header.Get("Retry-After") == "" {
			t.Errorf("busy %d has no Retry-After", i)
		}
		if m := r.json(t); m["error"] != "temporarily_unavailable" || m["error_description"] != m["detail"] {
			t.Errorf("busy body = %s, want OAuth2 error temporarily_unavailable", r.body)
		}
	}
	wantLimited(t, e.postToken(loginForm("alice", testPassword), ""))
	release()
	e.clock.Add(time.Minute)
	wantStatus(t, e.postToken(loginForm("alice", testPassword), ""), http.StatusOK)
}

// Ensure an invalid username is throttled per address only: it answers
// like any failed login, spends the address's budget, and keeps no
// per-name state.
func TestLoginInvalidNamePerAddressOnly(t *testing.T) {
	e := newEnv(t, limited(3, 1))
	for _, name := range []string{"-bad-", "has space", strings.Repeat("a", 33), "ÄLICE"} {
		r := e.postToken(loginForm(name, "wrong password"), "")
		if name == "ÄLICE" {
			wantLimited(t, r) // the fourth failure from this address
			continue
		}
		wantStatus(t, r, http.StatusUnauthorized)
		if m := r.json(t); m["detail"] != "Incorrect username or password" {
			t.Errorf("invalid name %q: body %s", name, r.body)
		}
	}
	if p, a := e.srv.loginRate.pair.size(), e.srv.loginRate.account.size(); p != 0 || a != 0 {
		t.Errorf("invalid names left %d address+name and %d name buckets", p, a)
	}
	if strings.Contains(e.logs.String(), strings.Repeat("a", 33)) {
		t.Error("the log echoes an invalid username")
	}
}

// Ensure nobody can lock an account out (issue 10, item 4): ten wrong
// passwords from address A, then the right one from address B is 200,
// while A itself is refused.
func TestLoginNoLockout(t *testing.T) {
	e := newEnv(t, func(c *configs.Config) { c.TrustedProxies = []string{"127.0.0.1", "::1"} })
	e.addUser("alice", "")
	const a, b = "198.51.100.1", "203.0.113.7"
	for range 10 {
		wantStatus(t, e.postToken(loginForm("alice", "wrong password"), a), http.StatusUnauthorized)
	}
	wantLimited(t, e.postToken(loginForm("alice", testPassword), a))
	wantStatus(t, e.postToken(loginForm("alice", testPassword), b), http.StatusOK)
	wantStatus(t, e.postToken(loginForm("ALICE", testPassword), b), http.StatusOK)
}

// Ensure the per-username budget holds across addresses without locking
// the owner out: once a botnet has spent it, each attacking address gets
// its one guess and then 429, while an address with no failure on that
// name still has its password checked.
func TestLoginLimitPerUser(t *testing.T) {
	e := newEnv(t, limited(100, 2, "127.0.0.1", "::1"))
	e.addUser("bob", "")
	e.addUser("alice", "")
	wantStatus(t, e.postToken(loginForm("bob", "guess 1"), "198.51.100.1"), http.StatusUnauthorized)
	wantStatus(t, e.postToken(loginForm("BOB", "guess 2"), "198.51.100.2"), http.StatusUnauthorized)
	// The name's budget is spent: addresses that failed on it wait…
	wantLimited(t, e.postToken(loginForm("bob", "guess 3"), "198.51.100.1"))
	wantLimited(t, e.postToken(loginForm("bob", testPassword), "198.51.100.2"))
	// …a new address gets one guess…
	wantStatus(t, e.postToken(loginForm("bob", "guess 4"), "198.51.100.3"), http.StatusUnauthorized)
	wantLimited(t, e.postToken(loginForm("bob", "guess 5"), "198.51.100.3"))
	// …and the owner, from a new address, gets in.
	wantStatus(t, e.postToken(loginForm("bob", testPassword), "198.51.100.4"), http.StatusOK)
	// IPv6 addresses of one /64 are one address.
	wantStatus(t, e.postToken(loginForm("bob", "guess 6"), "2001:db8:1:2::1"), http.StatusUnauthorized)
	wantLimited(t, e.postToken(loginForm("bob", "guess 7"), "2001:db8:1:2::ffff"))
	// Other users are not affected, from the same address either.
	wantStatus(t, e.postToken(loginForm("alice", "guess"), "198.51.100.3"), http.StatusUnauthorized)
	wantStatus(t, e.postToken(loginForm("alice", testPassword), "198.51.100.3"), http.StatusOK)
	// Once the name's budget refills, the waiting addresses try again.
	e.clock.Add(2 * time.Minute)
	wantStatus(t, e.postToken(loginForm("bob", testPassword), "198.51.100.1"), http.StatusOK)
}

// Ensure `user unlock` (POST /admin/users/{name}/unlock, over HTTP and
// the admin socket) clears a user's counters in the running server, and
// only for users that exist.
func TestLoginUnlock(t *testing.T) {
	e := newEnv(t, limited(100, 3, "127.0.0.1", "::1"))
	e.addUser("alice", "")
	e.addUser("root", "admin")
	root := e.issue("root")
	const a = "198.51.100.1"
	fail := func() {
		t.Helper()
		for range 3 {
			wantStatus(t, e.postToken(loginForm("alice", "wrong password"), a), http.StatusUnauthorized)
		}
		wantLimited(t, e.postToken(loginForm("alice", testPassword), a))
	}

	fail()
	r := e.call(http.MethodPost, "/admin/users/ALICE/unlock", root, nil)
	wantBody(t, r, http.StatusOK, map[string]any{"username": "alice", "live": true, "cleared": 2})
	wantStatus(t, e.postToken(loginForm("alice", testPassword), a), http.StatusOK)

	fail()
	remote, _ := e.serveSocket(t)
	res, err := remote.UnlockUser(bg, "alice")
	if err != nil || !res.Live || res.Cleared != 2 || res.Username != "alice" {
		t.Fatalf("remote UnlockUser = %+v, %v", res, err)
	}
	wantStatus(t, e.postToken(loginForm("alice", testPassword), a), http.StatusOK)

	// Nothing to clear is fine; unknown and invalid names are errors.
	wantBody(t, e.call(http.MethodPost, "/admin/users/alice/unlock", root, nil), http.StatusOK,
		map[string]any{"username": "alice", "live": true, "cleared": 0})
	wantCode(t, e.call(http.MethodPost, "/admin/users/nobody/unlock", root, nil), http.StatusNotFound, "not_found")
	wantCode(t, e.call(http.MethodPost, "/admin/users/-bad-/unlock", root, nil), http.StatusUnprocessableEntity, "bad_username")
	wantUnauthorized(t, e.call(http.MethodPost, "/admin/users/alice/unlock", "", nil))
	if r := e.call(http.MethodPost, "/admin/users/alice/unlock", e.issue("alice"), nil); r.status != http.StatusForbidden {
		t.Errorf("unlock by a non-admin = %d", r.status)
	}
}

// Ensure sign-up is limited per address (issue 10, item 13): a burst,
// then 429 with Retry-After; refusals that cost nothing count nothing;
// admins are not limited; the budget refills.
func TestSignupLimitPerAddress(t *testing.T) {
	e := newEnv(t, func(c *configs.Config) {
		c.Signup = true
		c.Login.SignupBurst, c.Login.SignupPerMinute = 2, 1
		c.TrustedProxies = []string{"127.0.0.1", "::1"}
	})
	e.addUser("root", "admin")
	signup := func(name, from string) response {
		h := map[string]string{"Content-Type": "application/json"}
		if from != "" {
			h["X-Forwarded-For"] = from
		}
		return e.request(http.MethodPost, "/users", h, fmt.Sprintf(`{"username":%q,"password":%q}`, name, testPassword))
	}
	const a = "198.51.100.1"
	wantStatus(t, signup("-bad-", a), http.StatusUnprocessableEntity) // free
	wantStatus(t, signup("user1", a), http.StatusCreated)
	wantStatus(t, signup("user1", a), http.StatusConflict) // hashed: counts
	r := signup("user3", a)
	wantStatus(t, r, http.StatusTooManyRequests)
	if n := r.header.Get("Retry-After"); n == "" || n == "0" {
		t.Errorf("Retry-After = %q", n)
	}
	if m := r.json(t); !strings.Contains(fmt.Sprint(m["detail"]), "sign-ups") {
		t.Errorf("429 body = %s", r.body)
	}
	wantStatus(t, signup("user4", "198.51.100.2"), http.StatusCreated)
	created := e.call(http.MethodPost, "/users", e.issue("root"), map[string]string{"username": "user5", "password": testPassword})
	wantStatus(t, created, http.StatusCreated)
	e.clock.Add(time.Minute)
	wantStatus(t, signup("user3", a), http.StatusCreated)
}

// Ensure a 401 on a bearer route says why as RFC 6750 §3.1 asks: a plain
// Bearer challenge without a token, error="invalid_token" with a bad one.
func TestBearerChallenge(t *testing.T) {
	e := newEnv(t, func(c *configs.Config) { c.Signup = true })
	e.addUser("alice", "")
	good := e.issue("alice")
	bad := good[:len(good)-2] + "xx"
	for _, path := range []string{"/users/me", "/admin/users", "/ws"} {
		t.Run(strings.ReplaceAll(path, "/", "_"), func(t *testing.T) {
			r := e.on(t).call(http.MethodGet, path, "", nil)
			wantUnauthorized(t, r)
			if got := r.header.Get("WWW-Authenticate"); got != challengeMissing {
				t.Errorf("no token: WWW-Authenticate = %q, want %q", got, challengeMissing)
			}
			for _, tok := range []string{bad, "garbage", good + "."} {
				r := e.on(t).call(http.MethodGet, path, tok, nil)
				wantUnauthorized(t, r)
				if got := r.header.Get("WWW-Authenticate"); got != challengeInvalid {
					t.Errorf("bad token: WWW-Authenticate = %q, want %q", got, challengeInvalid)
				}
			}
		})
	}
	r := e.call(http.MethodPost, "/users", bad, map[string]string{"username": "bob", "password": testPassword})
	if got := r.header.Get("WWW-Authenticate"); r.status != http.StatusUnauthorized || got != challengeInvalid {
		t.Errorf("POST /users with a bad token = %d, WWW-Authenticate %q", r.status, got)
	}
}

// Ensure every limiter map is bounded by size and by age: distinct keys
// beyond maxKeys evict others, idle buckets are forgotten once full again,
// and a refund that fills a bucket drops it.
func TestFailureLimiterBounded(t *testing.T) {
	c := newClock()
	l := newFailureLimiter(2, 6, c.Now) // full again 20 s after a failure
	l.maxKeys = 100
	for i := range 10_000 {
		if ok, _ := l.take(fmt.Sprint("k", i)); !ok {
			t.Fatalf("fresh key %d refused", i)
		}
		if n := l.size(); n > 100 {
			t.Fatalf("size %d after %d keys, want at most 100", n, i+1)
		}
	}
	c.Add(21 * time.Second) // every bucket is full again
	l.take("new")
	if n := l.size(); n != 1 {
		t.Errorf("size after every bucket aged out = %d, want 1", n)
	}
	l.refund("new")
	if n := l.size(); n != 0 {
		t.Errorf("size after the last bucket filled = %d, want 0", n)
	}
}

// Ensure addrKey counts an IPv6 /64 as one address and bounds anything
// that is not an address.
func TestAddrKey(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"192.0.2.1", "192.0.2.1"},
		{"::ffff:192.0.2.1", "192.0.2.1"},
		{"2001:db8:1:2::1", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"},
		{"2001:db8:1:3::1", "2001:db8:1:3::/64"},
		{"@", "@"},
		{strings.Repeat("z", 500), strings.Repeat("z", maxAddrKey)},
	} {
		if got := addrKey(tc.in); got != tc.want {
			t.Errorf("addrKey(%.20q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
