package api

import (
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// bucket is a token bucket that can refund: a login attempt takes a token
// before the password is checked, and a success gives it back, so only
// failures count against the limit while concurrent attempts still cannot
// exceed it.
type bucket struct {
	tokens float64
	last   time.Time
}

// failureLimiter limits failed logins per key (client address or
// username).
type failureLimiter struct {
	burst float64
	rate  float64 // tokens per second
	now   func() time.Time

	mu      sync.Mutex // guards buckets
	buckets map[string]*bucket
}

// maxBuckets bounds memory under a flood of distinct keys: beyond it, full
// buckets (keys with no recent failure) are forgotten.
const maxBuckets = 100_000

func newFailureLimiter(burst int, perMinute float64, now func() time.Time) *failureLimiter {
	return &failureLimiter{burst: float64(burst), rate: perMinute / 60, now: now, buckets: map[string]*bucket{}}
}

// refill brings b up to date; l.mu must be held.
func (l *failureLimiter) refill(b *bucket, now time.Time) {
	b.tokens = math.Min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
}

// take removes one token for key, or reports how long until one is
// available.
func (l *failureLimiter) take(key string) (ok bool, retry time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= maxBuckets {
			l.sweep(now)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	l.refill(b, now)
	if b.tokens < 1 {
		return false, time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
	}
	b.tokens--
	return true, 0
}

// refund gives back a token taken for an attempt that succeeded.
func (l *failureLimiter) refund(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if b := l.buckets[key]; b != nil {
		b.tokens = math.Min(l.burst, b.tokens+1)
	}
}

// sweep forgets buckets that are full again; l.mu must be held.
func (l *failureLimiter) sweep(now time.Time) {
	for k, b := range l.buckets {
		l.refill(b, now)
		if b.tokens >= l.burst {
			delete(l.buckets, k)
		}
	}
}

// retryAfter formats a wait for the Retry-After header: whole seconds,
// at least 1.
func retryAfter(d time.Duration) string {
	s := int(math.Ceil(d.Seconds()))
	if s < 1 {
		s = 1
	}
	return strconv.Itoa(s)
}

// clientAddr works out the address of the client: the peer, or when the
// peer is a trusted proxy, the rightmost X-Forwarded-For entry that is not
// itself a trusted proxy (the leftmost entries are client-controlled).
func clientAddr(r *http.Request, trusted []netip.Prefix) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil || !isTrusted(peer, trusted) {
		return host
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break // garbage: stop believing the header here
		}
		if !isTrusted(a, trusted) {
			return a.String()
		}
		host = a.String()
	}
	return host
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	a = a.Unmap()
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parsePrefixes turns trusted_proxies into prefixes; single addresses are
// /32 or /128. The config was validated, so errors cannot happen here.
func parsePrefixes(list []string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
		} else if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
		}
	}
	return out
}
