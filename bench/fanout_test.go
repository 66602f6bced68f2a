package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
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
	if rd.MembersFailed != 0 || rd.MembersClosed != 0 || len(rd.Failures) != 0 || rd.Reason != "" {
		t.Fatalf("a round that held has failures: %+v", rd)
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

// Ensure a round in which the server closed members (4008, as a server
// that cannot keep up does) fails, names the closes, and says so in JSON.
func TestRunFanoutMembersClosed(t *testing.T) {
	s := newFakeServer(t, 1)
	s.evict = true // the first send closes everyone but its sender
	r, err := RunFanout(context.Background(), FanoutOptions{Target: Target{URL: s.URL}, Creds: s.creds(),
		Members: 6, Rate: 10, Duration: 300 * time.Millisecond, Drain: time.Second, ConnectRate: 5000})
	if err != nil {
		t.Fatal(err)
	}
	rd := r.Rounds[0]
	if rd.Held || rd.MembersClosed == 0 || rd.Closed["close_4008"] == 0 || r.BestRate != 0 {
		t.Fatalf("closed members not a failure: %+v", rd)
	}
	if !strings.Contains(rd.Reason, "members closed by the server (close_4008=") || rd.Lost == 0 ||
		!slices.ContainsFunc(rd.Failures, func(f string) bool { return strings.HasPrefix(f, fmt.Sprintf("%d lost", rd.Lost)) }) {
		t.Fatalf("reason %q, failures %q", rd.Reason, rd.Failures)
	}
	b, err := json.Marshal(rd)
	if err != nil {
		t.Fatal(err)
	}
	var js struct {
		Held          bool     `json:"held"`
		MembersClosed uint64   `json:"members_closed"`
		Failures      []string `json:"failures"`
	}
	if err := json.Unmarshal(b, &js); err != nil || js.Held || js.MembersClosed != rd.MembersClosed || len(js.Failures) == 0 {
		t.Fatalf("JSON %s", b)
	}
	var out bytes.Buffer
	r.WriteText(&out)
	if !strings.Contains(out.String(), "round 0 failed: ") || !strings.Contains(out.String(), "closed by the server") {
		t.Fatalf("text report %q", out.String())
	}
}

// Ensure members the server closed during the warm-up fail the next
// round, although none of the closes happened in it.
func TestRunFanoutClosedInWarmup(t *testing.T) {
	s := newFakeServer(t, 1)
	s.evict = true
	r, err := RunFanout(context.Background(), FanoutOptions{Target: Target{URL: s.URL}, Creds: s.creds(),
		Members: 4, Rate: 10, Warmup: 300 * time.Millisecond, Duration: 300 * time.Millisecond,
		Drain: time.Second, ConnectRate: 5000})
	if err != nil {
		t.Fatal(err)
	}
	rd := r.Rounds[0]
	if rd.Held || rd.MembersClosed != 3 || !strings.Contains(rd.Reason, "3 of 4 members closed by the server") {
		t.Fatalf("warm-up closes not charged to the round: %+v", rd)
	}
}

// Ensure a round in which the server accepted sends but neither acked nor
// delivered any fails as "nothing delivered", although nothing counts as
// lost (nothing acked means nothing owed): the case of a server so far
// behind that the bench read only earlier rounds' messages.
func TestRunFanoutNothingDelivered(t *testing.T) {
	s := newFakeServer(t, 1)
	s.mute = true
	r, err := RunFanout(context.Background(), FanoutOptions{Target: Target{URL: s.URL}, Creds: s.creds(),
		Members: 4, Rate: 20, Duration: 300 * time.Millisecond, Drain: 200 * time.Millisecond, ConnectRate: 5000})
	if err != nil {
		t.Fatal(err)
	}
	rd := r.Rounds[0]
	if rd.Held || rd.Sent == 0 || rd.Delivered != 0 || rd.Lost != 0 || rd.Latency.P99 != 0 {
		t.Fatalf("want a failed round with nothing delivered and nothing counted lost: %+v", rd)
	}
	if !slices.Contains(rd.Failures, fmt.Sprintf("nothing delivered (%d sent, 0 acked)", rd.Sent)) ||
		!slices.Contains(rd.Failures, fmt.Sprintf("%d unacked", rd.Sent)) {
		t.Fatalf("failures %q", rd.Failures)
	}
}

// Ensure members that could not connect fail every round: the rest would
// carry a lighter load than the one asked for.
func TestRunFanoutMembersFailed(t *testing.T) {
	s := newFakeServer(t, 2)
	s.perUser = 1 // the bench is told 2: every user's second connection gets 4029
	r, err := RunFanout(context.Background(), FanoutOptions{Target: Target{URL: s.URL}, Creds: s.creds(),
		Members: 4, MaxConnsPerUser: 2, Rate: 10, Duration: 300 * time.Millisecond, ConnectRate: 5000,
		SkipPreflight: true})
	if err != nil {
		t.Fatal(err)
	}
	rd := r.Rounds[0]
	if rd.Held || rd.MembersFailed != 2 || rd.Lost != 0 || rd.Delivered == 0 ||
		!strings.Contains(rd.Reason, "2 of 4 members failed to connect (join_close_4029=2)") {
		t.Fatalf("setup failures not a failure: %+v", rd)
	}
}
