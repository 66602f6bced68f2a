package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"
)

// Defaults for RunConns.
const (
	DefaultConnRate    = 500 // connections per second
	DefaultHold        = 10 * time.Second
	DefaultDialTimeout = 10 * time.Second
	DefaultMaxInFlight = 256 // concurrent handshakes
)

// ConnsOptions configures RunConns.
type ConnsOptions struct {
	Target
	Creds            Provisioner   // users to connect as
	MaxConnsPerUser  int           // server's ws per-user cap (default 16)
	N                int           // connections to open
	Rate             float64       // connections per second (default 500)
	Hold             time.Duration // how long to hold them all open (default 10s)
	ServerPID        int           // when set, measure the server's RSS per connection
	DialTimeout      time.Duration // per handshake (default 10s)
	MaxInFlight      int           // concurrent handshakes (default 256)
	SkipPreflight    bool
	Progress         io.Writer
	ProgressInterval time.Duration
}

// ConnsResult is the outcome of RunConns.
type ConnsResult struct {
	Target       string            `json:"target"`
	Requested    int               `json:"requested"`
	Opened       int               `json:"opened"`
	Failed       int               `json:"failed"`
	OpenAtEnd    int               `json:"open_at_end"` // still open when the hold ended
	TargetRate   float64           `json:"target_rate"`
	ConnectRate  float64           `json:"connect_rate"` // opened per second of the connect phase
	ConnectPhase time.Duration     `json:"connect_phase_ns"`
	Handshake    LatencySummary    `json:"handshake"`
	Failures     map[string]uint64 `json:"failures_by_cause,omitempty"` // refused, timeout, http_401, fd_limit, ...
	Closed       map[string]uint64 `json:"closed_by_server,omitempty"`  // close_4029, eof, ... after opening
	Held         time.Duration     `json:"held_ns"`
	SourceAddrs  []string          `json:"source_addrs,omitempty"`
	FDLimit      uint64            `json:"fd_limit"`
	RSSBefore    int64             `json:"server_rss_before_bytes,omitempty"`
	RSSAfter     int64             `json:"server_rss_after_bytes,omitempty"`
	RSSPerConn   float64           `json:"server_rss_per_conn_bytes,omitempty"`
	Warnings     []string          `json:"warnings,omitempty"`
	Interrupted  bool              `json:"interrupted"`
}

// fdReserve is what the process keeps for itself beyond connections.
const fdReserve = 64

// RunConns opens N authenticated WebSocket connections at Rate per second,
// holds them for Hold, and reports what it achieved and what failed. The
// client side is cheap: small buffers, write buffers pooled, one goroutine
// per connection that discards whatever the server sends (gorilla answers
// pings from inside NextReader). Cancelling ctx ends the connect phase or
// the hold early; the result so far is returned.
func RunConns(ctx context.Context, o ConnsOptions) (*ConnsResult, error) {
	endpoint, err := o.wsEndpoint()
	if err != nil {
		return nil, err
	}
	if o.N <= 0 {
		return nil, errors.New("conns: N must be positive")
	}
	toks, err := connTokens(ctx, o.Creds, o.N, o.MaxConnsPerUser)
	if err != nil {
		return nil, err
	}
	if !o.SkipPreflight {
		if err := Check(ctx, o.Target, toks[0].Token, true, false); err != nil {
			return nil, err
		}
	}
	r := &ConnsResult{Target: endpoint, Requested: o.N, FDLimit: raiseNoFile(),
		Failures: map[string]uint64{}, Closed: map[string]uint64{}}
	if r.FDLimit > 0 && uint64(o.N)+fdReserve > r.FDLimit {
		r.Warnings = append(r.Warnings, fmt.Sprintf("open-file limit %d allows about %d connections from this process; run several bench processes for more",
			r.FDLimit, r.FDLimit-fdReserve))
	}
	u, _ := url.Parse(endpoint)
	srcs := sourceAddrs(u.Hostname(), o.N, portsPerAddr())
	for _, ip := range srcs {
		r.SourceAddrs = append(r.SourceAddrs, ip.String())
	}
	if o.ServerPID > 0 {
		if r.RSSBefore, err = readRSS(o.ServerPID); err != nil {
			return nil, err
		}
	}

	p := &connPool{conns: make([]*websocket.Conn, o.N), hist: NewSharedHistogram(),
		failures: map[string]uint64{}, closed: map[string]uint64{}}
	connectRate := o.Rate
	if connectRate <= 0 {
		connectRate = DefaultConnRate
	}
	r.TargetRate = connectRate
	var tk ticker
	stop := startProgress(o.Progress, o.ProgressInterval, func(el time.Duration) string {
		return fmt.Sprintf("%6v  open %d/%d  failed %d  %6.0f conn/s", el,
			p.open.Load(), o.N, p.failed.Load(), tk.rate(uint64(p.opened.Load())))
	})
	defer stop()

	start := time.Now()
	p.dialAll(ctx, o, endpoint, toks, srcs, connectRate)
	r.ConnectPhase = time.Since(start)

	holdStart := time.Now()
	if ctx.Err() == nil {
		t := time.NewTimer(defaultDuration(o.Hold, DefaultHold))
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
	r.Held = time.Since(holdStart)
	r.OpenAtEnd = int(p.open.Load())
	if o.ServerPID > 0 {
		// Measured after the hold, with every connection open and settled.
		if rss, err := readRSS(o.ServerPID); err == nil && r.OpenAtEnd > 0 {
			r.RSSAfter = rss
			r.RSSPerConn = float64(rss-r.RSSBefore) / float64(r.OpenAtEnd)
		}
	}
	stop()
	p.closeAll()

	r.Opened, r.Failed = int(p.opened.Load()), int(p.failed.Load())
	r.ConnectRate = Rate(uint64(r.Opened), r.ConnectPhase)
	r.Handshake = p.hist.Snapshot().Summary()
	r.Failures, r.Closed = p.failures, p.closed
	r.Interrupted = ctx.Err() != nil
	return r, nil
}

// connPool tracks the connections of one RunConns.
type connPool struct {
	opened, failed, open atomic.Int64
	closing              atomic.Bool // set when we close, so our closes are not counted
	hist                 *SharedHistogram
	readers              sync.WaitGroup

	mu       sync.Mutex // guards conns, failures and closed
	conns    []*websocket.Conn
	failures map[string]uint64
	closed   map[string]uint64
}

// dialAll dials every connection, paced, and returns when all handshakes
// have finished or ctx ended.
func (p *connPool) dialAll(ctx context.Context, o ConnsOptions, endpoint string, toks []connToken, srcs []net.IP, perSec float64) {
	pace(ctx, o.N, perSec, o.MaxInFlight, func(i int) {
		var src net.IP
		if len(srcs) > 0 {
			src = srcs[i%len(srcs)]
		}
		c, cause := dialWS(ctx, o.Target, endpoint, toks[i].Token, src, o.DialTimeout, p.hist, i)
		if c == nil {
			if cause != "canceled" {
				p.failed.Add(1)
				p.count(p.failures, cause)
			}
			return
		}
		p.mu.Lock()
		p.conns[i] = c
		p.mu.Unlock()
		p.opened.Add(1)
		p.open.Add(1)
		p.readers.Add(1)
		go p.discard(c)
	})
}

// pace calls fn(0..n-1), each in its own goroutine, starting perSec per
// second with at most inFlight running, and returns when all have
// returned. When ctx ends it starts no more.
func pace(ctx context.Context, n int, perSec float64, inFlight int, fn func(i int)) {
	// A burst of 10 ms worth keeps the pace accurate at high rates, where
	// timers fire later than the sub-millisecond gaps between dials.
	lim := rate.NewLimiter(rate.Limit(perSec), max(1, int(perSec/100)))
	if inFlight <= 0 {
		inFlight = DefaultMaxInFlight
	}
	sem := make(chan struct{}, inFlight)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		if lim.Wait(ctx) != nil {
			break
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			fn(i)
		}()
	}
	wg.Wait()
}

// connDialer is shared by all bench WebSocket clients: small read buffer,
// write buffers borrowed from a pool only while writing.
var connDialer = websocket.Dialer{
	ReadBufferSize:  1024,
	WriteBufferSize: 1024,
	WriteBufferPool: &sync.Pool{},
}

// dialWS opens one authenticated connection from src (nil: any), recording
// the handshake time in hist. On failure it returns the cause label.
func dialWS(ctx context.Context, t Target, endpoint, token string, src net.IP, timeout time.Duration,
	hist *SharedHistogram, key int) (*websocket.Conn, string) {
	d := connDialer
	nd := &net.Dialer{Timeout: defaultDuration(timeout, DefaultDialTimeout)}
	if src != nil {
		nd.LocalAddr = &net.TCPAddr{IP: src}
	}
	d.NetDialContext = nd.DialContext
	d.HandshakeTimeout = nd.Timeout
	t0 := time.Now()
	c, resp, err := d.DialContext(ctx, endpoint, wsHeader(t, token, false))
	if err != nil {
		if resp != nil {
			return nil, "http_" + strconv.Itoa(resp.StatusCode)
		}
		return nil, errKind(err)
	}
	if hist != nil {
		hist.Record(key, time.Since(t0))
	}
	return c, ""
}

// discard reads and drops frames until the connection ends, recording why
// when it was not our doing.
func (p *connPool) discard(c *websocket.Conn) {
	defer p.readers.Done()
	var err error
	for err == nil {
		_, _, err = c.NextReader()
	}
	p.open.Add(-1)
	if !p.closing.Load() {
		p.count(p.closed, closeCause(err))
	}
}

// closeCause labels why a connection ended: close_CODE or an errKind.
func closeCause(err error) string {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return "close_" + strconv.Itoa(ce.Code)
	}
	return errKind(err)
}

// count increments m[key] under p.mu.
func (p *connPool) count(m map[string]uint64, key string) {
	p.mu.Lock()
	m[key]++
	p.mu.Unlock()
}

// closeAll closes every connection with 1000 and waits for the readers.
func (p *connPool) closeAll() {
	p.closing.Store(true)
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bench done")
	p.mu.Lock()
	conns := p.conns
	p.mu.Unlock()
	deadline := time.Now().Add(time.Second)
	for _, c := range conns {
		if c != nil {
			c.WriteControl(websocket.CloseMessage, msg, deadline)
			c.Close()
		}
	}
	p.readers.Wait()
}

// WriteText prints the result as a short human-readable report.
func (r *ConnsResult) WriteText(w io.Writer) {
	fmt.Fprintf(w, "WebSocket connections to %s%s\n", r.Target, interrupted(r.Interrupted))
	fmt.Fprintf(w, "  opened     %d of %d (failed %d), %d open after holding %v\n",
		r.Opened, r.Requested, r.Failed, r.OpenAtEnd, r.Held.Round(time.Millisecond))
	fmt.Fprintf(w, "  rate       %.0f conn/s achieved (target %.0f), connect phase %v\n",
		r.ConnectRate, r.TargetRate, r.ConnectPhase.Round(time.Millisecond))
	writeLatency(w, "handshake", r.Handshake)
	writeCounts(w, "failures", r.Failures)
	writeCounts(w, "closed", r.Closed)
	if r.RSSAfter > 0 {
		fmt.Fprintf(w, "  server rss %.1f MiB → %.1f MiB: %.1f KiB per connection\n",
			float64(r.RSSBefore)/(1<<20), float64(r.RSSAfter)/(1<<20), r.RSSPerConn/1024)
	}
	if len(r.SourceAddrs) > 0 {
		fmt.Fprintf(w, "  sources    %v\n", r.SourceAddrs)
	}
	for _, s := range r.Warnings {
		fmt.Fprintf(w, "  warning: %s\n", s)
	}
}
