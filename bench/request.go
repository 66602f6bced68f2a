package bench

import (
	"context"
	"fmt"
	"golang.org/x/time/rate"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for the request runners.
const (
	DefaultConcurrency    = 50
	DefaultDuration       = 10 * time.Second
	DefaultRequestTimeout = 10 * time.Second
)

// HTTPOptions configures RunHTTP.
type HTTPOptions struct {
	Target
	Token            string        // bearer token for GET /users/me
	Concurrency      int           // connections, each with one request in flight (default 50)
	Rate             float64       // requests per second over all connections; 0: as fast as they go
	Duration         time.Duration // measured window (default 10s)
	Timeout          time.Duration // per request (default 10s)
	SkipPreflight    bool          // skip Check before the run
	Progress         io.Writer     // nil: no progress lines
	ProgressInterval time.Duration // default 1s
}

// LoginOptions configures RunLogin.
type LoginOptions struct {
	Target
	Username         string
	Password         string
	Concurrency      int           // default 50
	Duration         time.Duration // default 10s
	Timeout          time.Duration // per request (default 10s)
	SkipPreflight    bool          // skip the single pre-flight login
	Progress         io.Writer
	ProgressInterval time.Duration
}

// RequestResult is the outcome of RunHTTP or RunLogin. Latency covers
// successful responses only, so fast rejections do not flatter it.
type RequestResult struct {
	Name        string            `json:"name"` // "users_me" or "login"
	Target      string            `json:"target"`
	Concurrency int               `json:"concurrency"`
	Elapsed     time.Duration     `json:"elapsed_ns"` // measured window
	Requests    uint64            `json:"requests"`   // completed, whatever the outcome
	OK          uint64            `json:"ok"`
	RateLimited uint64            `json:"rate_limited"` // 429, not in Errors
	Errors      uint64            `json:"errors"`
	PerSec      float64           `json:"ok_per_sec"`
	Latency     LatencySummary    `json:"latency"`
	ByStatus    map[int]uint64    `json:"errors_by_status,omitempty"` // unexpected statuses
	ByKind      map[string]uint64 `json:"errors_by_kind,omitempty"`   // transport errors, see errKind
	Interrupted bool              `json:"interrupted"`                // the context ended the run early
}

// RunHTTP loads GET {url}/users/me with a bearer token at Concurrency
// keep-alive connections for Duration. Cancelling ctx stops it early and
// the result so far is still returned (Interrupted set); the error is
// non-nil only when the run could not start (see Check).
func RunHTTP(ctx context.Context, o HTTPOptions) (*RequestResult, error) {
	base, err := o.httpBase()
	if err != nil {
		return nil, err
	}
	if !o.SkipPreflight {
		if err := Check(ctx, o.Target, o.Token, false, false); err != nil {
			return nil, err
		}
	}
	c := max(o.Concurrency, 1)
	if o.Concurrency == 0 {
		c = DefaultConcurrency
	}
	client := newClient(c, o.Timeout)
	defer client.CloseIdleConnections()
	var limit *rate.Limiter
	if o.Rate > 0 {
		// Open loop: requests start on schedule whatever the latency, so
		// the figure is the latency at that load (a probe beside a login
		// storm, say), not the most the server can do.
		limit = rate.NewLimiter(rate.Limit(o.Rate), 1)
	}
	do := func(ctx context.Context) (int, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/users/me", nil)
		if err != nil {
			return 0, err
		}
		req.Header.Set("Authorization", "Bearer "+o.Token)
		return roundTrip(client, req)
	}
	r := runRequests(ctx, c, defaultDuration(o.Duration, DefaultDuration), o.Progress, o.ProgressInterval, "req", limit, do)
	r.Name, r.Target = "users_me", base
	return r, nil
}

// RunLogin loads POST {url}/token with the password grant, like RunHTTP.
// The server rate-limits failed logins, so 429 answers are counted apart.
func RunLogin(ctx context.Context, o LoginOptions) (*RequestResult, error) {
	base, err := o.httpBase()
	if err != nil {
		return nil, err
	}
	c := max(o.Concurrency, 1)
	if o.Concurrency == 0 {
		c = DefaultConcurrency
	}
	client := newClient(c, o.Timeout)
	defer client.CloseIdleConnections()
	if !o.SkipPreflight {
		pctx, cancel := context.WithTimeout(ctx, preflightTimeout)
		_, err := Login(pctx, client, base, o.Username, o.Password)
		cancel()
		if err != nil {
			return nil, err
		}
	}
	do := func(ctx context.Context) (int, error) {
		resp, err := postLogin(ctx, client, base, o.Username, o.Password)
		if err != nil {
			return 0, err
		}
		return drain(resp)
	}
	r := runRequests(ctx, c, defaultDuration(o.Duration, DefaultDuration), o.Progress, o.ProgressInterval, "logins", nil, do)
	r.Name, r.Target = "login", base
	return r, nil
}

// newClient returns a client whose transport keeps exactly c connections
// alive, so the run measures the server and not connection setup.
func newClient(c int, timeout time.Duration) *http.Client {
	tr := &http.Transport{
		MaxConnsPerHost:     c,
		MaxIdleConns:        c,
		MaxIdleConnsPerHost: c,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	return &http.Client{Transport: tr, Timeout: defaultDuration(timeout, DefaultRequestTimeout)}
}

// roundTrip sends req and drains the response so the connection is reused.
func roundTrip(client *http.Client, req *http.Request) (int, error) {
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	return drain(resp)
}

// drain reads and closes the body; a body cut short is a transport error.
func drain(resp *http.Response) (int, error) {
	_, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, err
}

// worker holds one goroutine's counters; merged once at the end.
type worker struct {
	hist                  *Histogram
	ok, limited, requests uint64
	byStatus              map[int]uint64
	byKind                map[string]uint64
}

// runRequests calls do from c goroutines until d has passed or ctx ends.
// A request in flight at the deadline completes and counts; one cut off by
// ctx does not, since its outcome says nothing about the server.
func runRequests(ctx context.Context, c int, d time.Duration, progress io.Writer, interval time.Duration,
	unit string, limit *rate.Limiter, do func(context.Context) (int, error)) *RequestResult {
	var okTotal, errTotal atomic.Uint64 // for progress lines only
	var tk ticker
	start := time.Now()
	deadline := start.Add(d)
	stop := startProgress(progress, interval, func(el time.Duration) string {
		return fmt.Sprintf("%6v  %8.0f %s/s  ok %d  errors %d", el, tk.rate(okTotal.Load()), unit, okTotal.Load(), errTotal.Load())
	})
	workers := make([]*worker, c)
	var wg sync.WaitGroup
	for i := range workers {
		w := &worker{hist: NewHistogram(), byStatus: map[int]uint64{}, byKind: map[string]uint64{}}
		workers[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && time.Now().Before(deadline) {
				if limit != nil && limit.Wait(ctx) != nil {
					return // interrupted while waiting for the schedule
				}
				t0 := time.Now()
				status, err := do(ctx)
				lat := time.Since(t0)
				switch {
				case err != nil && ctx.Err() != nil:
					return // interrupted: not the server's doing
				case err != nil:
					w.byKind[errKind(err)]++
					errTotal.Add(1)
				case status == http.StatusOK:
					w.ok++
					w.hist.Record(lat)
					okTotal.Add(1)
				case status == http.StatusTooManyRequests:
					w.limited++
				default:
					w.byStatus[status]++
					errTotal.Add(1)
				}
				w.requests++
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	stop()
	r := &RequestResult{Concurrency: c, Elapsed: elapsed, Interrupted: ctx.Err() != nil,
		ByStatus: map[int]uint64{}, ByKind: map[string]uint64{}}
	h := NewHistogram()
	for _, w := range workers {
		h.Merge(w.hist)
		r.OK += w.ok
		r.RateLimited += w.limited
		r.Requests += w.requests
		for k, v := range w.byStatus {
			r.ByStatus[k] += v
			r.Errors += v
		}
		for k, v := range w.byKind {
			r.ByKind[k] += v
			r.Errors += v
		}
	}
	r.Latency = h.Summary()
	r.PerSec = Rate(r.OK, elapsed)
	return r
}

// WriteText prints the result as a short human-readable report.
func (r *RequestResult) WriteText(w io.Writer) {
	what := map[string]string{"users_me": "GET /users/me", "login": "POST /token"}[r.Name]
	fmt.Fprintf(w, "%s at %s, %d connections, %v%s\n", what, r.Target, r.Concurrency,
		r.Elapsed.Round(time.Millisecond), interrupted(r.Interrupted))
	fmt.Fprintf(w, "  requests   %d (ok %d, errors %d, rate limited %d)\n", r.Requests, r.OK, r.Errors, r.RateLimited)
	fmt.Fprintf(w, "  throughput %.1f ok/s\n", r.PerSec)
	writeLatency(w, "latency", r.Latency)
	writeCounts(w, "by status", r.ByStatus)
	writeCounts(w, "by error", r.ByKind)
}

// interrupted labels a report cut short by Ctrl-C.
func interrupted(b bool) string {
	if b {
		return " (interrupted)"
	}
	return ""
}
