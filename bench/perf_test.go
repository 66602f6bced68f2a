package bench

import (
	"context"
	"os"
	"testing"
	"time"
)

// Ensure the receive path keeps up with ~140,000 deliveries/s (1000
// members, 140 msg/s) against the raw fake server in the same process.
// It takes seconds and both cores, so it runs only with BENCH_PERF=1:
//
//	BENCH_PERF=1 go test -run Throughput -v ./bench
func TestThroughputRaw(t *testing.T) {
	if os.Getenv("BENCH_PERF") == "" {
		t.Skip("set BENCH_PERF=1 to run")
	}
	s := newRawServer(t)
	r, err := RunFanout(context.Background(), FanoutOptions{Target: Target{URL: s.URL}, Raw: true,
		Members: 1000, Rate: 140, Duration: 3 * time.Second, ConnectRate: 5000, Progress: os.Stdout})
	if err != nil {
		t.Fatal(err)
	}
	r.WriteText(os.Stdout)
	if rd := r.Rounds[0]; rd.Lost != 0 || rd.DeliveredPerSec < 120000 {
		t.Fatalf("receive path too slow: %+v", rd)
	}
}
