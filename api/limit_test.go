package api

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/chatctl/chatctl/configs"
)

// wantLimited fails unless r is a 429 with an integer Retry-After ≥ 1, and
// returns that delay in seconds.
func wantLimited(t *testing.T, r response) int {
	t.Helper()
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("status = %d, want 429; body %s", r.status, r.body)
	}
	ra := r.header.Get("Retry-After")
	n, err := strconv.Atoi(ra)
	if err != nil || n < 1 {
		t.Fatalf("Retry-After = %q, want whole seconds ≥ 1", ra)
	}
	if m := r.json(t); m["detail"] == "" || m["error"] == nil {
		t.Errorf("429 body = %s", r.body)
	}
	return n
}

// wantStatus fails unless r has status.
func wantStatus(t *testing.T, r response, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body %s", r.status, status, r.body)
	}
}

// limited configures small login budgets: ip and user failures, refilling
// at one per minute each.
func limited(ip, user int, proxies ...string) func(*configs.Config) {
	return func(c *configs.Config) {
		c.Login.IPBurst, c.Login.IPPerMinute = ip, 1
		c.Login.UserBurst, c.Login.UserPerMinute = user, 1
		c.TrustedProxies = proxies
	}
}

// Ensure repeated failed logins from one address get 429 with Retry-After,
// even with the right password, until the budget refills.
func TestLoginLimitPerIP(t *testing.T) {
	e := newEnv(t, limited(3, 100))
	e.addUser("alice", "")
	for i := range 3 {
		wantStatus(t, e.postToken(loginForm(fmt.Sprintf("user%d", i), "wrong password"), ""), http.StatusUnauthorized)
	}
	wantLimited(t, e.postToken(loginForm("other", "wrong password"), ""))
	wait := wantLimited(t, e.postToken(loginForm("alice", testPassword), ""))
	if wait > 60 {
		t.Errorf("Retry-After = %d, want at most a minute at 1/min", wait)
	}
	e.clock.Add(time.Minute) // one failure refills per minute
	if r := e.postToken(loginForm("alice", testPassword), ""); r.status != http.StatusOK {
		t.Fatalf("after Retry-After: %d %s", r.status, r.body)
	}
}

// Ensure successful logins do not use up the failure budget.
func TestLoginLimitSuccessesFree(t *testing.T) {
	e := newEnv(t, limited(3, 3))
	e.addUser("alice", "")
	for range 10 {
		e.login("alice")
	}
	for range 3 {
		wantStatus(t, e.postToken(loginForm("alice", "wrong password"), ""), http.StatusUnauthorized)
	}
	wantLimited(t, e.postToken(loginForm("alice", "wrong password"), ""))
}

// Ensure X-Forwarded-For is believed only from trusted proxies.
func TestLoginLimitForwardedFor(t *testing.T) {
	t.Run("UntrustedPeerIgnored", func(t *testing.T) {
		e := newEnv(t, limited(2, 100))
		for i := range 2 {
			wantStatus(t, e.postToken(loginForm(fmt.Sprintf("u%d", i), "x"), fmt.Sprintf("198.51.100.%d", i)), http.StatusUnauthorized)
		}
		wantLimited(t, e.postToken(loginForm("u9", "x"), "198.51.100.9"))
	})
	t.Run("TrustedPeerBelieved", func(t *testing.T) {
		e := newEnv(t, limited(2, 100, "127.0.0.0/8", "::1"))
		for i := range 6 {
			wantStatus(t, e.postToken(loginForm(fmt.Sprintf("u%d", i), "x"), fmt.Sprintf("198.51.100.%d", i)), http.StatusUnauthorized)
		}
	})
	t.Run("SpoofedLeftmostIgnored", func(t *testing.T) {
		// The proxy appends the real client; what the client wrote before
		// it must not buy a fresh budget.
		e := newEnv(t, limited(2, 100, "127.0.0.0/8", "::1"))
		for i := range 2 {
			wantStatus(t, e.postToken(loginForm(fmt.Sprintf("u%d", i), "x"), fmt.Sprintf("10.9.9.%d, 203.0.113.5", i)), http.StatusUnauthorized)
		}
		wantLimited(t, e.postToken(loginForm("u9", "x"), "10.9.9.9, 203.0.113.5"))
	})
}

// Ensure clientAddr takes the peer unless it is a trusted proxy, and then
// the rightmost untrusted X-Forwarded-For entry.
func TestClientAddr(t *testing.T) {
	tests := []struct {
		name    string
		peer    string
		xff     []string
		trusted []string
		want    string
	}{
		{"NoProxy", "192.0.2.1:1234", nil, nil, "192.0.2.1"},
		{"UntrustedPeerXFFIgnored", "192.0.2.1:1234", []string{"203.0.113.9"}, nil, "192.0.2.1"},
		{"UntrustedPeerClaimsTrustedHop", "192.0.2.1:1234", []string{"10.0.0.1"}, []string{"10.0.0.0/8"}, "192.0.2.1"},
		{"TrustedPeer", "10.0.0.1:80", []string{"203.0.113.9"}, []string{"10.0.0.0/8"}, "203.0.113.9"},
		{"TrustedPeerNoXFF", "10.0.0.1:80", nil, []string{"10.0.0.0/8"}, "10.0.0.1"},
		{"SpoofedLeftmost", "10.0.0.1:80", []string{"6.6.6.6, 203.0.113.9"}, []string{"10.0.0.0/8"}, "203.0.113.9"},
		{"SpoofedManyLeftmost", "10.0.0.1:80", []string{"1.1.1.1,2.2.2.2, 3.3.3.3 ,203.0.113.9"}, []string{"10.0.0.0/8"}, "203.0.113.9"},
		{"ProxyChain", "10.0.0.1:80", []string{"6.6.6.6, 203.0.113.9, 10.0.0.2"}, []string{"10.0.0.0/8"}, "203.0.113.9"},
		{"SeveralHeaderLines", "10.0.0.1:80", []string{"6.6.6.6", "203.0.113.9"}, []string{"10.0.0.0/8"}, "203.0.113.9"},
		{"GarbageRightmost", "10.0.0.1:80", []string{"203.0.113.9, garbage"}, []string{"10.0.0.0/8"}, "10.0.0.1"},
		{"GarbageLeftmost", "10.0.0.1:80", []string{"garbage, 203.0.113.9"}, []string{"10.0.0.0/8"}, "203.0.113.9"},
		{"WithPortNotBelieved", "10.0.0.1:80", []string{"203.0.113.9:5555"}, []string{"10.0.0.0/8"}, "10.0.0.1"},
		{"AllHopsTrusted", "10.0.0.1:80", []string{"10.0.0.3, 10.0.0.2"}, []string{"10.0.0.0/8"}, "10.0.0.3"},
		{"SingleAddressTrusted", "127.0.0.1:80", []string{"203.0.113.9"}, []string{"127.0.0.1"}, "203.0.113.9"},
		{"SingleAddressOtherPeer", "127.0.0.2:80", []string{"203.0.113.9"}, []string{"127.0.0.1"}, "127.0.0.2"},
		{"IPv6Peer", "[2001:db8::1]:443", []string{"203.0.113.9"}, nil, "2001:db8::1"},
		{"IPv6TrustedPeer", "[2001:db8::1]:443", []string{"2001:db8:1::5"}, []string{"2001:db8::/64"}, "2001:db8:1::5"},
		{"IPv4MappedPeer", "[::ffff:10.0.0.1]:80", []string{"203.0.113.9"}, []string{"10.0.0.0/8"}, "203.0.113.9"},
		{"NoPort", "192.0.2.1", nil, nil, "192.0.2.1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tc.peer
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := clientAddr(r, parsePrefixes(tc.trusted)); got != tc.want {
				t.Errorf("clientAddr = %q, want %q", got, tc.want)
			}
		})
	}
}

// Ensure the limiter refills at its rate, refunds, and formats Retry-After
// in whole seconds of at least 1.
func TestFailureLimiter(t *testing.T) {
	c := newClock()
	l := newFailureLimiter(2, 6, c.Now) // 2 at once, then one per 10 s
	for i := range 2 {
		if ok, _ := l.take("k"); !ok {
			t.Fatalf("take %d refused", i)
		}
	}
	ok, wait := l.take("k")
	if ok || wait <= 0 || wait > 10*time.Second {
		t.Fatalf("take = %v %v, want refused with a wait up to 10 s", ok, wait)
	}
	if ok, _ := l.take("other"); !ok {
		t.Error("keys share a bucket")
	}
	l.refund("k")
	if ok, _ := l.take("k"); !ok {
		t.Error("refund did not give a token back")
	}
	c.Add(10 * time.Second)
	if ok, _ := l.take("k"); !ok {
		t.Error("no refill after 10 s")
	}
	for _, tc := range []struct {
		d    float64 // seconds
		want string
	}{{0, "1"}, {0.001, "1"}, {1, "1"}, {1.2, "2"}, {59.5, "60"}, {3600, "3600"}} {
		if got := retryAfter(time.Duration(tc.d * float64(time.Second))); got != tc.want {
			t.Errorf("retryAfter(%vs) = %q, want %q", tc.d, got, tc.want)
		}
	}
}
