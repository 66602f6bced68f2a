package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// Ensure RunHTTP measures GET /users/me and reports progress and a summary.
func TestRunHTTP(t *testing.T) {
	s := newFakeServer(t, 1)
	var progress bytes.Buffer
	r, err := RunHTTP(context.Background(), HTTPOptions{Target: Target{URL: s.URL}, Token: tokenFor("u0"),
		Concurrency: 4, Duration: 300 * time.Millisecond, Progress: &progress, ProgressInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if r.OK == 0 || r.Errors != 0 || r.OK != r.Latency.Count || r.PerSec <= 0 || r.Interrupted {
		t.Fatalf("unexpected result %+v", r)
	}
	if r.Latency.P50 <= 0 || r.Latency.P50 > r.Latency.P99 || r.Latency.P99 > r.Latency.Max {
		t.Fatalf("percentiles out of order: %+v", r.Latency)
	}
	if !strings.Contains(progress.String(), "req/s") {
		t.Fatalf("no progress lines: %q", progress.String())
	}
	js, err := json.Marshal(r)
	if err != nil || !strings.Contains(string(js), `"ok_per_sec":`) || !strings.Contains(string(js), `"p99_ns":`) {
		t.Fatalf("json %s, %v", js, err)
	}
	var out bytes.Buffer
	r.WriteText(&out)
	if !strings.Contains(out.String(), "GET /users/me") || !strings.Contains(out.String(), "p99") {
		t.Fatalf("summary: %s", out.String())
	}
}

// Ensure Rate paces an open-loop run: about rate × duration requests,
// however fast the server answers.
func TestRunHTTPRate(t *testing.T) {
	s := newFakeServer(t, 1)
	r, err := RunHTTP(context.Background(), HTTPOptions{Target: Target{URL: s.URL}, Token: tokenFor("u0"),
		Concurrency: 4, Rate: 100, Duration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// 100/s for 1 s, plus the first token of the burst; allow scheduling slack.
	if r.OK < 80 || r.OK > 115 {
		t.Fatalf("%d requests at 100/s for 1 s", r.OK)
	}
}

// Ensure errors are counted by status when the token goes bad mid-run
// (pre-flight skipped to get past the check).
func TestRunHTTPErrorsByStatus(t *testing.T) {
	s := newFakeServer(t, 1)
	r, err := RunHTTP(context.Background(), HTTPOptions{Target: Target{URL: s.URL}, Token: "bad",
		Concurrency: 2, Duration: 100 * time.Millisecond, SkipPreflight: true})
	if err != nil {
		t.Fatal(err)
	}
	if r.OK != 0 || r.ByStatus[401] == 0 || r.Errors != r.ByStatus[401] {
		t.Fatalf("want only 401s, got %+v", r)
	}
}

// Ensure cancelling the context stops the run and still yields a result.
func TestRunHTTPInterrupted(t *testing.T) {
	s := newFakeServer(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	r, err := RunHTTP(ctx, HTTPOptions{Target: Target{URL: s.URL}, Token: tokenFor("u0"),
		Concurrency: 2, Duration: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Interrupted || r.Elapsed > 10*time.Second || r.OK == 0 || r.Errors != 0 {
		t.Fatalf("want an interrupted run with results, got %+v", r)
	}
}

// Ensure RunLogin measures POST /token.
func TestRunLogin(t *testing.T) {
	s := newFakeServer(t, 1)
	r, err := RunLogin(context.Background(), LoginOptions{Target: Target{URL: s.URL}, Username: "u0", Password: "pw",
		Concurrency: 2, Duration: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if r.Name != "login" || r.OK == 0 || r.Errors != 0 || r.PerSec <= 0 {
		t.Fatalf("unexpected result %+v", r)
	}
}
