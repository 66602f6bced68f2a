package bench

import (
	"math"
	"math/bits"
	"sync"
	"time"
)

// The histogram is log-linear, in the spirit of HdrHistogram: values below
// 2^subBits nanoseconds get one bucket each, and every power of two above
// that is cut into 2^subBits equal buckets. A bucket is therefore never
// wider than 1/128 of its lower bound, and reporting its midpoint is within
// ±0.4% of any value that fell into it.
const (
	subBits  = 7
	subCount = 1 << subBits
	subMask  = subCount - 1

	// HistogramMax is the largest latency the histogram resolves; larger
	// values are counted in the last bucket (Max still reports them exactly).
	HistogramMax = 60 * time.Second

	// HistogramPrecision is the worst relative error of a reported percentile.
	HistogramPrecision = 1.0 / (2 * subCount)
)

// numBuckets covers 0 .. HistogramMax: about 3,800 counters (30 KiB).
var numBuckets = bucketIndex(int64(HistogramMax)) + 1

// bucketIndex maps a value in nanoseconds to its bucket.
func bucketIndex(v int64) int {
	if v < subCount {
		if v < 0 {
			return 0
		}
		return int(v)
	}
	e := bits.Len64(uint64(v)) - 1 // position of the top bit, >= subBits
	sub := int(v>>(e-subBits)) & subMask
	return (e-subBits+1)*subCount + sub
}

// bucketBounds returns the lowest value of bucket i and its width.
func bucketBounds(i int) (lo, width int64) {
	if i < subCount {
		return int64(i), 1
	}
	shift := i/subCount - 1 // e - subBits
	sub := int64(i & subMask)
	return (subCount + sub) << shift, 1 << shift
}

// Histogram records latencies in fixed memory and answers percentile
// queries with HistogramPrecision relative error. The zero value is not
// usable: call NewHistogram. A Histogram is not safe for concurrent use;
// give each worker its own and Merge them at the end (or use a
// SharedHistogram where goroutines are too many for that).
type Histogram struct {
	counts []uint64
	n      uint64
	sum    float64 // float64: sums of many 60 s values overflow int64 ns
	min    int64
	max    int64
}

// NewHistogram returns an empty histogram.
func NewHistogram() *Histogram {
	return &Histogram{counts: make([]uint64, numBuckets), min: math.MaxInt64}
}

// Record adds one value. Negative durations (clock steps) count as zero.
func (h *Histogram) Record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	i := bucketIndex(v)
	if i >= len(h.counts) {
		i = len(h.counts) - 1
	}
	h.counts[i]++
	h.n++
	h.sum += float64(v)
	if v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
}

// Merge adds every value recorded in o to h. o is not changed.
func (h *Histogram) Merge(o *Histogram) {
	if o == nil || o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.min = min(h.min, o.min)
	h.max = max(h.max, o.max)
}

// Reset empties the histogram, keeping its memory.
func (h *Histogram) Reset() {
	clear(h.counts)
	h.n, h.sum, h.min, h.max = 0, 0, math.MaxInt64, 0
}

// Count returns the number of recorded values.
func (h *Histogram) Count() uint64 { return h.n }

// Min returns the smallest recorded value exactly, or 0 when empty.
func (h *Histogram) Min() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.min)
}

// Max returns the largest recorded value exactly, or 0 when empty.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Mean returns the exact arithmetic mean, or 0 when empty.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.n))
}

// Percentile returns the value at or below which p percent (0..100) of the
// recorded values lie: the nearest-rank percentile, reported as the
// midpoint of its bucket and clamped to [Min, Max] so that a constant
// distribution comes back exact. It returns 0 when empty.
func (h *Histogram) Percentile(p float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	if p <= 0 {
		return h.Min()
	}
	if p >= 100 {
		return h.Max()
	}
	rank := uint64(math.Ceil(p / 100 * float64(h.n)))
	rank = max(rank, 1)
	var cum uint64
	for i, c := range h.counts {
		cum += c
		if cum >= rank {
			lo, w := bucketBounds(i)
			v := lo + (w-1)/2
			return time.Duration(min(max(v, h.min), h.max))
		}
	}
	return h.Max()
}

// Summary returns the usual percentiles in a JSON-friendly form.
func (h *Histogram) Summary() LatencySummary {
	return LatencySummary{
		Count: h.n,
		Min:   h.Min(),
		Mean:  h.Mean(),
		P50:   h.Percentile(50),
		P90:   h.Percentile(90),
		P99:   h.Percentile(99),
		P999:  h.Percentile(99.9),
		Max:   h.Max(),
	}
}

// LatencySummary is a histogram boiled down to what reports print.
// Durations are in nanoseconds in JSON, hence the _ns suffix.
type LatencySummary struct {
	Count uint64        `json:"count"`
	Min   time.Duration `json:"min_ns"`
	Mean  time.Duration `json:"mean_ns"`
	P50   time.Duration `json:"p50_ns"`
	P90   time.Duration `json:"p90_ns"`
	P99   time.Duration `json:"p99_ns"`
	P999  time.Duration `json:"p999_ns"`
	Max   time.Duration `json:"max_ns"`
}

// SharedHistogram is a Histogram that many goroutines may record into at
// once. It spreads them over a few mutex-guarded shards, chosen by the
// caller's key (a connection index), so that thousands of connection
// readers need not each own 30 KiB of counters.
type SharedHistogram struct {
	shards [8]struct {
		mu sync.Mutex // guards h
		h  *Histogram
		_  [40]byte // keep shards on separate cache lines
	}
}

// NewSharedHistogram returns an empty SharedHistogram.
func NewSharedHistogram() *SharedHistogram {
	s := &SharedHistogram{}
	for i := range s.shards {
		s.shards[i].h = NewHistogram()
	}
	return s
}

// Record adds d to the shard picked by key.
func (s *SharedHistogram) Record(key int, d time.Duration) {
	sh := &s.shards[uint(key)%uint(len(s.shards))]
	sh.mu.Lock()
	sh.h.Record(d)
	sh.mu.Unlock()
}

// Snapshot returns a merged copy of all shards.
func (s *SharedHistogram) Snapshot() *Histogram {
	out := NewHistogram()
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		out.Merge(sh.h)
		sh.mu.Unlock()
	}
	return out
}

// Rate returns n events over d as events per second, or 0 when d is not
// positive (a run interrupted before it measured anything).
func Rate(n uint64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}
