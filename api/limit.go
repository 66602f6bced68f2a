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

// failureLimiter limits failed attempts per key (a client address, an
// address and a username, …). Its memory is bounded twice over: by age, as
// a bucket that has refilled completely says nothing a fresh one would not
// and is forgotten at the next sweep; and by size, as at most maxKeys
// buckets are kept (when full, the fullest of a few sampled buckets makes
// room). Keys are short by construction (see loginLimits): never raw
// client input.
type failureLimiter struct {
	now     func() time.Time
	maxKeys int

	mu      sync.Mutex // guards burst, rate (a reload changes them), buckets and swept
	burst   float64
	rate    float64 // tokens per second
	buckets map[string]bucket
	swept   time.Time // last sweep
}

// defaultMaxKeys bounds each limiter map: about 200 bytes a key (a short
// key, its bucket and the map's overhead), so 13 MB at worst per map.
const defaultMaxKeys = 65536

func newFailureLimiter(burst int, perMinute float64, now func() time.Time) *failureLimiter {
	return &failureLimiter{
		burst: float64(burst), rate: perMinute / 60, now: now,
		maxKeys: defaultMaxKeys, buckets: map[string]bucket{}, swept: now(),
	}
}

// setRate changes the limit (a config reload). Kept buckets keep their
// recent failures: a key that failed twice has two tokens fewer than the
// new burst (none at worst), and refills at the new rate from now on. So
// lowering a limit during an attack stops the attacker at once.
func (l *failureLimiter) setRate(burst int, perMinute float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	for k := range l.buckets {
		b, _ := l.current(k, now) // settle what the old rate earned
		failures := l.burst - b.tokens
		b.tokens = math.Max(0, float64(burst)-failures)
		l.buckets[k] = b
	}
	l.burst, l.rate = float64(burst), perMinute/60
}

// refillTime is how long an empty bucket takes to become full: the age
// after which an idle bucket is forgotten.
func (l *failureLimiter) refillTime() time.Duration {
	return time.Duration(l.burst / l.rate * float64(time.Second))
}

// current returns key's bucket brought up to now, and whether it exists;
// l.mu must be held.
func (l *failureLimiter) current(key string, now time.Time) (bucket, bool) {
	b, ok := l.buckets[key]
	if !ok {
		return bucket{tokens: l.burst, last: now}, false
	}
	b.tokens = math.Min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	return b, true
}

// take removes one token for key, or reports how long until one is
// available. A refused take changes nothing.
func (l *failureLimiter) take(key string) (ok bool, retry time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.maybeSweep(now)
	b, exists := l.current(key, now)
	if b.tokens < 1 {
		return false, time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
	}
	if !exists && len(l.buckets) >= l.maxKeys {
		// Full: sweep at most once a second (a sweep walks every key, and
		// a flood of new keys must not make each take walk them), then
		// evict if that freed nothing.
		if now.Sub(l.swept) >= time.Second {
			l.sweep(now)
		}
		if len(l.buckets) >= l.maxKeys {
			l.evict()
		}
	}
	b.tokens--
	l.buckets[key] = b
	return true, 0
}

// refund gives back a token taken for an attempt that succeeded. A full
// bucket is forgotten at once.
func (l *failureLimiter) refund(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.current(key, l.now())
	if !ok {
		return
	}
	b.tokens = math.Min(l.burst, b.tokens+1)
	if b.tokens >= l.burst {
		delete(l.buckets, key)
		return
	}
	l.buckets[key] = b
}

// untilFull reports how long until key's bucket is full again: zero for a
// key without a recent failure.
func (l *failureLimiter) untilFull(key string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, _ := l.current(key, l.now())
	return time.Duration((l.burst - b.tokens) / l.rate * float64(time.Second))
}

// forget drops every bucket whose key matches, and returns how many.
func (l *failureLimiter) forget(match func(key string) bool) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for k := range l.buckets {
		if match(k) {
			delete(l.buckets, k)
			n++
		}
	}
	return n
}

// size returns the number of buckets kept.
func (l *failureLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// maybeSweep sweeps when the last sweep is older than a refill time (at
// most a minute), so idle buckets go within about twice their age even
// when the map never fills; l.mu must be held.
func (l *failureLimiter) maybeSweep(now time.Time) {
	if now.Sub(l.swept) >= min(l.refillTime(), time.Minute) {
		l.sweep(now)
	}
}

// sweep forgets buckets that are full again; l.mu must be held.
func (l *failureLimiter) sweep(now time.Time) {
	l.swept = now
	for k := range l.buckets {
		if b, _ := l.current(k, now); b.tokens >= l.burst {
			delete(l.buckets, k)
		}
	}
}

// evict makes room for one key when every kept bucket is in use. It drops
// the fullest of a few buckets picked at random (map order), the one whose
// loss forgives the least; l.mu must be held.
func (l *failureLimiter) evict() {
	const sample = 8
	now := l.now()
	victim, best, seen := "", -1.0, 0
	for k := range l.buckets {
		if b, _ := l.current(k, now); b.tokens > best {
			victim, best = k, b.tokens
		}
		if seen++; seen == sample {
			break
		}
	}
	delete(l.buckets, victim)
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
