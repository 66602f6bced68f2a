package bench

import (
	"math"
	"sync"
	"testing"
	"time"
)

// within reports whether got is within the histogram's precision of want.
func within(got, want time.Duration) bool {
	return math.Abs(float64(got-want)) <= HistogramPrecision*float64(want)+1
}

// Ensure bucket boundaries tile the value range with no gap or overlap and
// never exceed the promised relative width.
func TestBucketBounds(t *testing.T) {
	var next int64
	for i := 0; i < numBuckets; i++ {
		lo, w := bucketBounds(i)
		if lo != next {
			t.Fatalf("bucket %d starts at %d, want %d", i, lo, next)
		}
		if bucketIndex(lo) != i || bucketIndex(lo+w-1) != i {
			t.Fatalf("bucket %d [%d,+%d) does not map back", i, lo, w)
		}
		if lo >= subCount && float64(w)/float64(lo) > 1.0/subCount {
			t.Fatalf("bucket %d too wide: %d at %d", i, w, lo)
		}
		next = lo + w
	}
	if next <= int64(HistogramMax) {
		t.Fatalf("buckets end at %d, below HistogramMax", next)
	}
}

// Ensure percentiles of known distributions come out right within precision.
func TestHistogramPercentiles(t *testing.T) {
	type want struct {
		p float64
		v time.Duration
	}
	tests := []struct {
		name   string
		values func(rec func(time.Duration))
		count  uint64
		mean   time.Duration
		min    time.Duration
		max    time.Duration
		wants  []want
	}{
		{
			name: "Uniform1to1000ms",
			values: func(rec func(time.Duration)) {
				for i := 1; i <= 1000; i++ {
					rec(time.Duration(i) * time.Millisecond)
				}
			},
			count: 1000, mean: 500500 * time.Microsecond, min: time.Millisecond, max: time.Second,
			wants: []want{{50, 500 * time.Millisecond}, {90, 900 * time.Millisecond},
				{99, 990 * time.Millisecond}, {99.9, 999 * time.Millisecond}, {100, time.Second}},
		},
		{
			name: "Constant",
			values: func(rec func(time.Duration)) {
				for i := 0; i < 500; i++ {
					rec(1234567 * time.Nanosecond)
				}
			},
			count: 500, mean: 1234567, min: 1234567, max: 1234567,
			wants: []want{{0, 1234567}, {50, 1234567}, {99.9, 1234567}},
		},
		{
			name: "Bimodal",
			values: func(rec func(time.Duration)) {
				for i := 0; i < 900; i++ {
					rec(100 * time.Microsecond)
				}
				for i := 0; i < 100; i++ {
					rec(50 * time.Millisecond)
				}
			},
			count: 1000, mean: 5090 * time.Microsecond, min: 100 * time.Microsecond, max: 50 * time.Millisecond,
			wants: []want{{50, 100 * time.Microsecond}, {90, 100 * time.Microsecond},
				{90.1, 50 * time.Millisecond}, {99, 50 * time.Millisecond}},
		},
		{
			name: "SubMicrosecondExact",
			values: func(rec func(time.Duration)) {
				for i := 1; i <= 100; i++ {
					rec(time.Duration(i))
				}
			},
			count: 100, mean: 50, min: 1, max: 100,
			wants: []want{{50, 50}, {99, 99}},
		},
		{
			name: "OverMaxClamped",
			values: func(rec func(time.Duration)) {
				rec(time.Millisecond)
				rec(2 * time.Minute)
			},
			count: 2, mean: 60*time.Second + 500*time.Microsecond, min: time.Millisecond, max: 2 * time.Minute,
			wants: []want{{50, time.Millisecond}, {100, 2 * time.Minute}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHistogram()
			tt.values(h.Record)
			if h.Count() != tt.count || h.Min() != tt.min || h.Max() != tt.max || !within(h.Mean(), tt.mean) {
				t.Fatalf("count/min/max/mean = %d/%v/%v/%v, want %d/%v/%v/%v",
					h.Count(), h.Min(), h.Max(), h.Mean(), tt.count, tt.min, tt.max, tt.mean)
			}
			for _, w := range tt.wants {
				if got := h.Percentile(w.p); !within(got, w.v) {
					t.Errorf("p%v = %v, want %v ±%.2f%%", w.p, got, w.v, 100*HistogramPrecision)
				}
			}
		})
	}
}

// Ensure an empty histogram reports zeros rather than sentinels.
func TestHistogramEmpty(t *testing.T) {
	h := NewHistogram()
	if s := h.Summary(); s != (LatencySummary{}) {
		t.Fatalf("empty summary = %+v", s)
	}
}

// Ensure merging per-worker histograms equals recording everything in one,
// and that the shared histogram is race-free under concurrent writers.
func TestHistogramMerge(t *testing.T) {
	all, a, b := NewHistogram(), NewHistogram(), NewHistogram()
	shared := NewSharedHistogram()
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				shared.Record(w, time.Duration(w*1000+i)*time.Microsecond)
			}
		}()
	}
	for i := 0; i < 4000; i++ {
		d := time.Duration(i) * time.Microsecond
		all.Record(d)
		if i%2 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	wg.Wait()
	a.Merge(b)
	a.Merge(nil)
	if a.Summary() != all.Summary() {
		t.Fatalf("merged %+v != single %+v", a.Summary(), all.Summary())
	}
	if s := shared.Snapshot().Summary(); s != all.Summary() {
		t.Fatalf("shared %+v != single %+v", s, all.Summary())
	}
	a.Reset()
	if a.Count() != 0 || a.Percentile(50) != 0 {
		t.Fatal("Reset left values behind")
	}
}

// Ensure Rate divides by the measured window and tolerates an empty one.
func TestRate(t *testing.T) {
	tests := []struct {
		n    uint64
		d    time.Duration
		want float64
	}{
		{1000, time.Second, 1000},
		{1500, 3 * time.Second / 2, 1000},
		{5, 0, 0},
		{5, -time.Second, 0},
		{1, 250 * time.Millisecond, 4},
	}
	for _, tt := range tests {
		if got := Rate(tt.n, tt.d); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("Rate(%d, %v) = %v, want %v", tt.n, tt.d, got, tt.want)
		}
	}
}
