package api

import (
	"net/netip"
	"strings"
	"time"

	"github.com/chatctl/chatctl/configs"
)

// loginLimits throttles password logins (SPEC §5: too many failures get
// 429 with Retry-After). Three budgets of failures, each a token bucket
// taken before bcrypt runs and given back on success:
//
//   - per client address (login.ip_*): hard, 429 when spent. IPv6 clients
//     are counted per /64, the block one subscriber gets, so rotating
//     through its addresses buys nothing.
//   - per address and username (login.user_*): hard, so one address
//     cannot keep guessing one account.
//   - per username from every address (login.user_* again): soft. When a
//     botnet has spent it, only addresses with a recent failure on that
//     name are refused; an address without one still gets its password
//     checked, so the account's owner signing in from a new place is
//     slowed by nobody and locked out by nobody (issue 10, item 4). Each
//     attacking address then gets one guess per account and refill.
//
// A username that is not valid (SPEC §4) is counted per address only: it
// names no account, and keeping anything for it would let a flood of
// distinct names fill memory (issue 10, item 1). Keys are therefore
// bounded: an address or /64 of at most 43 bytes and a valid name of at
// most 32. Overload (503 busy) refunds nothing: an attempt that found the
// bcrypt pool full still spent its token.
type loginLimits struct {
	ip      *failureLimiter // key: addrKey
	pair    *failureLimiter // key: addrKey + "|" + name
	account *failureLimiter // key: name
}

func newLoginLimits(cfg *configs.Config, now func() time.Time) *loginLimits {
	return &loginLimits{
		ip:      newFailureLimiter(cfg.Login.IPBurst, cfg.Login.IPPerMinute, now),
		pair:    newFailureLimiter(cfg.Login.UserBurst, cfg.Login.UserPerMinute, now),
		account: newFailureLimiter(cfg.Login.UserBurst, cfg.Login.UserPerMinute, now),
	}
}

// setRates applies the login.* limits of cfg (a config reload).
func (l *loginLimits) setRates(cfg *configs.Config) {
	l.ip.setRate(cfg.Login.IPBurst, cfg.Login.IPPerMinute)
	l.pair.setRate(cfg.Login.UserBurst, cfg.Login.UserPerMinute)
	l.account.setRate(cfg.Login.UserBurst, cfg.Login.UserPerMinute)
}

// loginGrant records the tokens admit took for one attempt, for refund.
type loginGrant struct {
	ip, pair, account string // keys; "" when nothing was taken there
}

// maxAddrKey bounds an address key that is not an IP address (a Unix
// socket peer, say); clientAddr gives IP addresses otherwise.
const maxAddrKey = 64

// addrKey is the limiter key of a client address: the address itself, an
// IPv6 address's /64, and never more than maxAddrKey bytes.
func addrKey(addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		if len(addr) > maxAddrKey {
			addr = addr[:maxAddrKey]
		}
		return addr
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// admit takes the tokens of one login attempt from address addr for name
// (normalised; "" when the name is not valid), or says how long to wait.
// A refused attempt keeps nothing.
func (l *loginLimits) admit(addr, name string) (g loginGrant, ok bool, retry time.Duration) {
	ak := addrKey(addr)
	if ok, wait := l.ip.take(ak); !ok {
		return loginGrant{}, false, wait
	}
	g.ip = ak
	if name == "" {
		return g, true, 0
	}
	pk := ak + "|" + name
	fresh := l.pair.untilFull(pk) == 0 // no recent failure from here
	if ok, wait := l.pair.take(pk); !ok {
		l.ip.refund(ak)
		return loginGrant{}, false, wait
	}
	g.pair = pk
	if ok, wait := l.account.take(name); ok {
		g.account = name
	} else if !fresh {
		// The account is under attack and this address has failed on it
		// lately: wait for the account to calm or this address to clear.
		l.pair.refund(pk)
		l.ip.refund(ak)
		return loginGrant{}, false, min(wait, l.pair.untilFull(pk))
	}
	return g, true, 0
}

// succeeded gives back the tokens of an attempt that did not fail.
func (l *loginLimits) succeeded(g loginGrant) {
	if g.ip != "" {
		l.ip.refund(g.ip)
	}
	if g.pair != "" {
		l.pair.refund(g.pair)
	}
	if g.account != "" {
		l.account.refund(g.account)
	}
}

// unlock forgets the failures counted against name, from every address,
// and returns how many counters it cleared. Per-address budgets stay:
// they belong to the addresses, not to the account.
func (l *loginLimits) unlock(name string) int {
	suffix := "|" + name
	return l.account.forget(func(k string) bool { return k == name }) +
		l.pair.forget(func(k string) bool { return strings.HasSuffix(k, suffix) })
}
