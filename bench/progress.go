package bench

import (
	"fmt"
	"io"
	"slices"
	"sync"
	"time"
)

// DefaultProgressInterval is how often runners print a progress line.
const DefaultProgressInterval = time.Second

// startProgress prints line(elapsed) to w every interval until the returned
// stop function is called. A nil w prints nothing. stop waits for the
// printer to exit, so no line is written after it returns.
func startProgress(w io.Writer, interval time.Duration, line func(elapsed time.Duration) string) (stop func()) {
	if w == nil {
		return func() {}
	}
	interval = defaultDuration(interval, DefaultProgressInterval)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	start := time.Now()
	go func() {
		defer wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				fmt.Fprintln(w, line(now.Sub(start).Round(time.Second/10)))
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done); wg.Wait() }) }
}

// ticker turns a cumulative counter into a per-interval rate for progress
// lines; it is used only by the progress goroutine.
type ticker struct {
	last     uint64
	lastTime time.Time
}

// rate returns events per second since the previous call.
func (t *ticker) rate(now uint64) float64 {
	tm := time.Now()
	var r float64
	if !t.lastTime.IsZero() {
		r = Rate(now-t.last, tm.Sub(t.lastTime))
	}
	t.last, t.lastTime = now, tm
	return r
}

// fmtDur prints a latency with three significant digits in a fitting unit.
func fmtDur(d time.Duration) string {
	switch {
	case d <= 0:
		return "0"
	case d < time.Millisecond:
		return fmt.Sprintf("%.1fµs", float64(d)/1e3)
	case d < time.Second:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.3fs", d.Seconds())
	}
}

// writeLatency prints a LatencySummary as one table row.
func writeLatency(w io.Writer, label string, s LatencySummary) {
	fmt.Fprintf(w, "  %-10s p50 %-9s p90 %-9s p99 %-9s p99.9 %-9s max %-9s (n=%d, mean %s)\n",
		label, fmtDur(s.P50), fmtDur(s.P90), fmtDur(s.P99), fmtDur(s.P999), fmtDur(s.Max), s.Count, fmtDur(s.Mean))
}

// writeCounts prints a map of counts sorted by key, or nothing if empty.
func writeCounts[K comparable](w io.Writer, label string, m map[K]uint64) {
	if len(m) == 0 {
		return
	}
	keys := make([]string, 0, len(m))
	vals := make(map[string]uint64, len(m))
	for k, v := range m {
		s := fmt.Sprint(k)
		keys = append(keys, s)
		vals[s] = v
	}
	slices.Sort(keys)
	fmt.Fprintf(w, "  %-10s", label)
	for _, k := range keys {
		fmt.Fprintf(w, " %s=%d", k, vals[k])
	}
	fmt.Fprintln(w)
}
