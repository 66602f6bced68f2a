package bench

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// Ensure a single fanout round against the fake server delivers every
// message to every member of its room, in order, with latencies.
func TestRunFanout(t *testing.T) {
	s := newFakeServer(t, 4)
	var progress, out bytes.Buffer
	r, err := RunFanout(context.Background(), FanoutOptions{Target: Target{URL: s.URL}, Creds: s.creds(),
		Members: 30, Rooms: 3, Rate: 90, Duration: 400 * time.Millisecond, Drain: 2 * time.Second,
		Warmup: 300 * time.Millisecond, ConnectRate: 5000, Progress: &progress, ProgressInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Rounds) != 1 || r.Members != 30 || r.Publishers != 6 || len(r.SetupFailures) != 0 {
		t.Fatalf("unexpected shape %+v", r)
	}
	// The publishers are 6 of the 30 members: the rooms hold 30, not 36,
	// and what they publish reaches them too (Expected counts them below).
	s.mu.Lock()
	joins := s.joins
	s.mu.Unlock()
	if joins != 30 {
		t.Fatalf("%d joins, want 30 (publishers are members)", joins)
	}
	rd := r.Rounds[0]
	// 90/s for 0.4 s, one more per publisher at most: the warm-up's sends
	// (0.3 s) are not in the round.
	if rd.Sent > 36+6 || !strings.Contains(progress.String(), "warm-up") {
		t.Fatalf("round sent %d (the warm-up's counted?); progress %q", rd.Sent, progress.String())
	}
	if !rd.Held || rd.Sent == 0 || rd.Acked != rd.Sent || rd.Expected != rd.Sent*10 || rd.Delivered != rd.Expected {
		t.Fatalf("round did not deliver everything: %+v", rd)
	}
	if rd.Lost+rd.OutOfOrder+rd.Gaps+rd.Unacked != 0 || rd.Latency.Count != rd.Delivered || rd.Latency.P99 <= 0 {
		t.Fatalf("bad accounting: %+v", rd)
	}
	r.WriteText(&out)
	if !strings.Contains(out.String(), "held") || !strings.Contains(progress.String(), "delivered") {
		t.Fatalf("summary %q progress %q", out.String(), progress.String())
	}
}

// Ensure step mode raises the rate round by round and reports the table.
func TestRunFanoutStep(t *testing.T) {
	s := newFakeServer(t, 2)
	r, err := RunFanout(context.Background(), FanoutOptions{Target: Target{URL: s.URL}, Creds: s.creds(),
		Members: 10, Rooms: 2, Duration: 200 * time.Millisecond, ConnectRate: 5000,
		Step: &StepOptions{Start: 20, Step: 20, Max: 60, MaxP99: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Rounds) != 3 || r.BestRate != 60 {
		t.Fatalf("want 3 held rounds up to 60 msg/s, got best %v: %+v", r.BestRate, r.Rounds)
	}
	for i, rd := range r.Rounds {
		if rd.Round != i || rd.Late != 0 || rd.Lost != 0 {
			t.Fatalf("round %d: %+v", i, rd)
		}
	}
}

// Ensure sends beyond the server's limit show up as rate_limited errors
// and fail the round.
func TestRunFanoutRateLimited(t *testing.T) {
	s := newFakeServer(t, 1)
	r, err := RunFanout(context.Background(), FanoutOptions{Target: Target{URL: s.URL}, Creds: s.creds(),
		Members: 2, Publishers: 1, Rate: 200, SendLimit: 1000, Duration: 300 * time.Millisecond, ConnectRate: 5000})
	if err != nil {
		t.Fatal(err)
	}
	rd := r.Rounds[0]
	if rd.Held || rd.Errors["rate_limited"] == 0 || rd.Lost != 0 || rd.Acked+rd.Errors["rate_limited"] != rd.Sent {
		t.Fatalf("want rate_limited errors and no loss, got %+v", rd)
	}
}

// Ensure the raw mode measures gorilla's chat example (newline batching,
// no auth, no rooms) with the same accounting.
func TestRunFanoutRaw(t *testing.T) {
	s := newRawServer(t)
	r, err := RunFanout(context.Background(), FanoutOptions{Target: Target{URL: s.URL}, Raw: true,
		Members: 20, Rooms: 5, Rate: 200, Duration: 300 * time.Millisecond, ConnectRate: 5000})
	if err != nil {
		t.Fatal(err)
	}
	rd := r.Rounds[0]
	if r.Mode != "raw" || r.Rooms != 1 || !rd.Held || rd.Delivered != rd.Sent*20 || rd.OutOfOrder+rd.Gaps != 0 {
		t.Fatalf("unexpected raw result %+v / %+v", r, rd)
	}
}

// Ensure publisher counts respect the send limit, give every room the
// same share and fit among the members.
func TestPublishersFor(t *testing.T) {
	tests := []struct {
		name     string
		rate     float64
		rooms    int
		members  int
		explicit int
		want     int
		wantErr  string
	}{
		{"OneSuffices", 10, 1, 100, 0, 1, ""},
		{"ScaledToLimit", 140, 1, 100, 0, 9, ""},
		{"MultipleOfRooms", 100, 4, 100, 0, 8, ""},
		{"OnePerRoomAtLeast", 20, 10, 100, 0, 10, ""},
		{"AllMembers", 160, 1, 10, 0, 10, ""},
		{"ExplicitOK", 100, 1, 100, 5, 5, ""},
		{"ErrExplicitTooFew", 100, 1, 100, 4, 0, "use at least 7"},
		{"ErrExplicitBelowRooms", 10, 4, 100, 2, 0, "at least --rooms (4)"},
		{"ErrMoreThanMembers", 200, 1, 10, 0, 0, "only 10 members"},
		{"ErrExplicitMoreThanMembers", 10, 1, 3, 5, 0, "only 3 members"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := publishersFor(tt.rate, tt.rooms, tt.members, 20, tt.explicit, false)
			if got != tt.want || (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("publishersFor = %d, %v; want %d (err containing %q)", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// Ensure a fanout against a server that is down fails in pre-flight.
func TestRunFanoutPreflight(t *testing.T) {
	_, err := RunFanout(context.Background(), FanoutOptions{Target: Target{URL: closedURL(t)}, Raw: true})
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("err = %v", err)
	}
}

// cancelWriter cancels a context on the first progress line containing key.
// progressHook is a progress writer that calls fn on every line containing
// key (fn must bear repeats).
type progressHook struct {
	key string
	fn  func()
}

func (w progressHook) Write(p []byte) (int, error) {
	if strings.Contains(string(p), w.key) {
		w.fn()
	}
	return len(p), nil
}

// Ensure a warm-up message delivered during round 0 (its drain gave up) is
// counted late, not as one of round 0's: it must not make up for a loss.
func TestRunFanoutWarmupStraggler(t *testing.T) {
	s := newFakeServer(t, 1)
	s.hold = true // the warm-up's messages are delivered only once round 0 runs
	r, err := RunFanout(context.Background(), FanoutOptions{Target: Target{URL: s.URL}, Creds: s.creds(),
		Members: 4, Rate: 40, Warmup: 300 * time.Millisecond, Duration: 400 * time.Millisecond,
		Drain: 300 * time.Millisecond, ConnectRate: 5000,
		Progress: progressHook{"round 0", s.release}, ProgressInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	rd := r.Rounds[0]
	if rd.Round != 0 || rd.Late == 0 || rd.Extra != 0 || rd.Delivered != rd.Expected || !rd.Held {
		t.Fatalf("warm-up stragglers not counted late: %+v", rd)
	}
}

// Ensure Ctrl-C during a round returns the rounds so far, marked interrupted.
func TestRunFanoutInterrupted(t *testing.T) {
	s := newFakeServer(t, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r, err := RunFanout(ctx, FanoutOptions{Target: Target{URL: s.URL}, Creds: s.creds(),
		Members: 4, Rate: 10, Duration: time.Minute, ConnectRate: 5000,
		Progress: progressHook{"round 0", cancel}, ProgressInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Interrupted || len(r.Rounds) != 1 || r.Rounds[0].Reason != "interrupted" || r.Rounds[0].Elapsed > 30*time.Second {
		t.Fatalf("want one interrupted round, got %+v", r)
	}
}
