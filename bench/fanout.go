package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// Defaults for RunFanout.
const (
	DefaultMembers   = 100
	DefaultRooms     = 1
	DefaultRate      = 100 // messages per second, all rooms together
	DefaultDrain     = 2 * time.Second
	DefaultSendLimit = 20 // server's ws sends per second per connection
	DefaultSendBurst = 40
	DefaultMaxP99    = 100 * time.Millisecond
	DefaultStepCount = 20 // rounds in a step run when StepOptions.Max is unset

	// sendHeadroom is the share of the server's per-connection send limit a
	// publisher uses, so that timer jitter never trips rate_limited.
	sendHeadroom = 0.8
)

// FanoutOptions configures RunFanout.
type FanoutOptions struct {
	Target
	Creds           Provisioner   // users to connect as (not used when Raw)
	MaxConnsPerUser int           // server's ws per-user cap (default 16)
	Members         int           // receiving connections, spread evenly over the rooms (default 100)
	Rooms           int           // default 1; always 1 when Raw
	Publishers      int           // members that also send; 0 sizes them to the send limit
	Rate            float64       // messages per second over all rooms (default 100)
	Duration        time.Duration // publishing time of a round (default 10s)
	Drain           time.Duration // grace for late deliveries after a round (default 2s)
	Warmup          time.Duration // unmeasured publishing at the first rate before round 0; 0: none
	MessageSize     int           // pad message texts to this many bytes (0: about 40)
	SendLimit       float64       // server's sends/s per connection (default 20)
	SendBurst       int           // server's send burst (default 40); informational
	Raw             bool          // gorilla examples/chat protocol: no auth, no rooms
	Step            *StepOptions  // nil: one round at Rate
	ConnectRate     float64       // connections per second during setup (default 500)
	DialTimeout     time.Duration // per handshake and join (default 10s)
	SkipPreflight   bool
	// Nodes, when it holds more than one Target, names the nodes of one
	// cluster (one store, one broker): the members and publishers are
	// spread round-robin over them in every room (see nodeOf), and the
	// embedded Target is not used. Not with Raw.
	Nodes []Target
	// ServerPIDs are processes (the nodes, the broker) whose CPU time each
	// round reports, read from /proc/PID/stat (Linux); empty: none.
	ServerPIDs []int
	Progress   io.Writer
	// ProgressInterval defaults to 1s.
	ProgressInterval time.Duration
}

// StepOptions turns a fanout run into a search for the highest rate the
// server sustains: rounds at Start, Start+Step, ... up to Max, stopping at
// the first round whose p99 exceeds MaxP99 or that loses anything.
type StepOptions struct {
	Start  float64       `json:"start"`      // first rate (default FanoutOptions.Rate)
	Step   float64       `json:"step"`       // increment per round (default Start)
	Max    float64       `json:"max"`        // last rate tried (default Start+19*Step)
	MaxP99 time.Duration `json:"max_p99_ns"` // p99 bound (default 100ms)
}

// FanoutResult is the outcome of RunFanout: one round, or one per step.
type FanoutResult struct {
	Target        string            `json:"target"`
	Mode          string            `json:"mode"` // "chatctl" or "raw"
	Members       int               `json:"members"`
	Rooms         int               `json:"rooms"`
	Publishers    int               `json:"publishers"`
	Setup         time.Duration     `json:"setup_ns"`
	SetupFailures map[string]uint64 `json:"setup_failures,omitempty"`
	Rounds        []FanoutRound     `json:"rounds"`
	Step          *StepOptions      `json:"step,omitempty"`
	BestRate      float64           `json:"best_rate"` // highest rate whose round held (0: none)
	Interrupted   bool              `json:"interrupted"`
	// Nodes is set when the run spread over several nodes: one entry per
	// node, in the order given.
	Nodes []FanoutNode `json:"nodes,omitempty"`
}

// FanoutNode is one node of a run over several: what was set up there.
type FanoutNode struct {
	Node          int               `json:"node"` // 1-based, in the order of FanoutOptions.Nodes
	Target        string            `json:"target"`
	Members       int               `json:"members"`    // connected and joined at setup
	Publishers    int               `json:"publishers"` // of those members
	SetupFailures map[string]uint64 `json:"setup_failures,omitempty"`
}

// FanoutNodeRound is one node's share of a round: the deliveries to the
// members connected to it.
type FanoutNodeRound struct {
	Node            int            `json:"node"`
	Expected        uint64         `json:"expected"`
	Delivered       uint64         `json:"delivered"`
	DeliveredPerSec float64        `json:"delivered_per_sec"`
	Lost            uint64         `json:"lost"`
	Latency         LatencySummary `json:"latency"`
}

// ProcessCPU is the CPU time (user and system) a process used over a
// round, publishing and drain included.
type ProcessCPU struct {
	PID int           `json:"pid"`
	CPU time.Duration `json:"cpu_ns"`
}

// FanoutRound is one round of publishing at a fixed rate.
type FanoutRound struct {
	Round           int               `json:"round"`
	TargetRate      float64           `json:"target_rate"` // messages/s asked for
	SendRate        float64           `json:"send_rate"`   // messages/s written
	Elapsed         time.Duration     `json:"elapsed_ns"`  // publishing window
	Sent            uint64            `json:"sent"`        // written to the socket
	Acked           uint64            `json:"acked"`       // acked by the server (raw: = sent)
	Unacked         uint64            `json:"unacked"`     // neither acked nor refused by the end
	Expected        uint64            `json:"expected"`    // deliveries owed: acked × members of the room
	Delivered       uint64            `json:"delivered"`   // of this round's messages, to members
	DeliveredPerSec float64           `json:"delivered_per_sec"`
	Lost            uint64            `json:"lost"`         // expected but not delivered after the drain
	Extra           uint64            `json:"extra"`        // delivered beyond expected (duplicates)
	OutOfOrder      uint64            `json:"out_of_order"` // id (raw: seq) not above the last one seen
	Gaps            uint64            `json:"gaps"`         // ids skipped on a connection
	Late            uint64            `json:"late"`         // messages of an earlier round
	Errors          map[string]uint64 `json:"errors,omitempty"`
	Closed          map[string]uint64 `json:"closed_by_server,omitempty"`
	Latency         LatencySummary    `json:"latency"` // send → receipt
	// MembersFailed counts members that never connected or joined at
	// setup; MembersClosed those whose connection ended (closed by the
	// server, or failed) before the end of this round, the warm-up's and
	// earlier rounds' included. Either fails the round: the members left
	// would make a lighter load than the one asked for.
	MembersFailed int    `json:"members_failed"`
	MembersClosed uint64 `json:"members_closed"`
	Held          bool   `json:"held"`
	// Failures lists every reason the round did not hold; Reason joins
	// them. A round that delivered nothing never holds, even when nothing
	// was acked (so nothing was owed).
	Failures []string `json:"failures,omitempty"`
	Reason   string   `json:"reason,omitempty"`
	// Nodes splits the deliveries by the node the member was on (runs
	// over several nodes only). CrossNode and SameNode split the latency
	// by whether the publisher was on another node than the member.
	Nodes     []FanoutNodeRound `json:"nodes,omitempty"`
	CrossNode *LatencySummary   `json:"cross_node_latency,omitempty"`
	SameNode  *LatencySummary   `json:"same_node_latency,omitempty"`
	// ServerCPU is the CPU time of each of FanoutOptions.ServerPIDs over
	// the round; CPUPerMessage their sum per acked message.
	ServerCPU     []ProcessCPU  `json:"server_cpu,omitempty"`
	CPUPerMessage time.Duration `json:"cpu_per_message_ns,omitempty"`
}

// RunFanout connects Members receivers over Rooms, Publishers of which also
// send (a room's publishers are among its members, as in any chat), then
// publishes at Rate (or steps the rate, see StepOptions) and measures
// delivery: rate, end-to-end latency, loss and order. With Raw it speaks
// the gorilla chat example's protocol instead of SPEC §6. Cancelling ctx
// stops the run; the rounds so far are returned.
func RunFanout(ctx context.Context, o FanoutOptions) (*FanoutResult, error) {
	o.setDefaults()
	nodes := o.Nodes
	if len(nodes) == 0 {
		nodes = []Target{o.Target}
	}
	if len(nodes) > 1 && o.Raw {
		return nil, errors.New("raw mode takes one URL: the gorilla chat example has no cluster to spread over")
	}
	endpoints := make([]string, len(nodes))
	for i, t := range nodes {
		ep, err := t.wsEndpoint()
		if err != nil {
			return nil, err
		}
		endpoints[i] = ep
	}
	if _, err := readCPU(o.ServerPIDs); err != nil {
		return nil, err
	}
	rates := []float64{o.Rate}
	if o.Step != nil {
		rates = o.Step.rates()
	}
	maxRate := rates[len(rates)-1]
	var err error
	if o.Publishers, err = publishersFor(maxRate, o.Rooms, o.Members, o.SendLimit, o.Publishers, o.Raw); err != nil {
		return nil, err
	}
	s := &session{o: o, nodes: nodes, endpoints: endpoints, setupFail: map[string]uint64{}, goneWhy: map[string]uint64{}}
	start := time.Now()
	if err := s.setup(ctx); err != nil {
		s.close()
		return nil, err
	}
	defer s.close()
	r := &FanoutResult{Target: strings.Join(endpoints, ","), Mode: "chatctl", Members: len(s.members), Rooms: o.Rooms,
		Publishers: len(s.pubs), Setup: time.Since(start), SetupFailures: s.setupFail, Step: o.Step}
	if len(nodes) > 1 {
		r.Nodes = s.nodeSummary()
	}
	if o.Raw {
		r.Mode = "raw"
	}
	maxP99 := time.Duration(0)
	if o.Step != nil {
		maxP99 = o.Step.MaxP99
	}
	if o.Warmup > 0 {
		// The first seconds of traffic meet cold caches, small socket
		// buffers and a small heap on both sides; not part of any round.
		s.round(ctx, 0, rates[0], 0, o.Warmup, "warm-up")
	}
	for i, rate := range rates {
		if ctx.Err() != nil {
			break
		}
		round := s.round(ctx, i, rate, maxP99, o.Duration, fmt.Sprintf("round %d", i))
		r.Rounds = append(r.Rounds, round)
		if !round.Held {
			break
		}
		r.BestRate = rate
	}
	r.Interrupted = ctx.Err() != nil
	return r, nil
}

// setDefaults fills zero options.
func (o *FanoutOptions) setDefaults() {
	if o.Members <= 0 {
		o.Members = DefaultMembers
	}
	if o.Rooms <= 0 || o.Raw {
		o.Rooms = DefaultRooms
	}
	if o.Rate <= 0 {
		o.Rate = DefaultRate
	}
	o.Duration = defaultDuration(o.Duration, DefaultDuration)
	o.Drain = defaultDuration(o.Drain, DefaultDrain)
	if o.SendLimit <= 0 {
		o.SendLimit = DefaultSendLimit
	}
	if o.SendBurst <= 0 {
		o.SendBurst = DefaultSendBurst
	}
	if o.ConnectRate <= 0 {
		o.ConnectRate = DefaultConnRate
	}
	if o.Step != nil {
		st := *o.Step
		if st.Start <= 0 {
			st.Start = o.Rate
		}
		if st.Step <= 0 {
			st.Step = st.Start
		}
		if st.Max < st.Start {
			st.Max = st.Start + (DefaultStepCount-1)*st.Step
		}
		st.MaxP99 = defaultDuration(st.MaxP99, DefaultMaxP99)
		o.Step = &st
	}
}

// rates lists the rate of every round.
func (st *StepOptions) rates() []float64 {
	var out []float64
	for r := st.Start; r <= st.Max*(1+1e-9); r += st.Step {
		out = append(out, r)
	}
	return out
}

// publishersFor returns how many of the members publish, so that rate
// messages/s go out without any connection passing sendHeadroom of the
// server's per-connection limit. Each publisher is a member of one room, so
// the count is a multiple of rooms (every room gets the same share) and at
// most members. An explicit count is checked.
func publishersFor(rate float64, rooms, members int, limit float64, explicit int, raw bool) (int, error) {
	if raw {
		limit = 1000 // the example has no limit; a few senders are plenty
	}
	need := max(1, int(math.Ceil(rate/(limit*sendHeadroom))))
	n := (need + rooms - 1) / rooms * rooms
	if explicit > 0 {
		switch {
		case !raw && rate/float64(explicit) > limit:
			return 0, fmt.Errorf("%d publishers cannot send %.0f msg/s under the server's limit of %.0f/s per connection: use at least %d",
				explicit, rate, limit, need)
		case explicit < rooms:
			return 0, fmt.Errorf("%d publishers leave rooms without a sender: each publisher is a member of one room, so use at least --rooms (%d)",
				explicit, rooms)
		}
		n = explicit
	}
	if n > members {
		return 0, fmt.Errorf("%d publishers needed but only %d members: publishers are members of the rooms; raise --members (or the server's send limit, --send-limit)",
			n, members)
	}
	return n, nil
}

// runID returns a short random id naming this run's rooms, so that rooms
// start empty and never mix with an earlier run's history.
func runID() string {
	var b [4]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// errNoConnections is returned when setup connected no member or publisher.
var errNoConnections = errors.New("fanout: no connection could be set up")

// WriteText prints the result as a report with one row per round.
func (r *FanoutResult) WriteText(w io.Writer) {
	fmt.Fprintf(w, "Fanout (%s) at %s: %d members in %d rooms, %d of them publishing, setup %v%s\n", r.Mode, r.Target,
		r.Members, r.Rooms, r.Publishers, r.Setup.Round(time.Millisecond), interrupted(r.Interrupted))
	writeCounts(w, "setup fail", r.SetupFailures)
	fmt.Fprintf(w, "  %5s %9s %9s %11s %9s %9s %9s %7s %6s %6s  %s\n",
		"round", "rate", "sent/s", "deliv/s", "p50", "p99", "p99.9", "lost", "order", "errors", "result")
	for _, rd := range r.Rounds {
		var nerr uint64
		for _, v := range rd.Errors {
			nerr += v
		}
		res := "held"
		if !rd.Held {
			res = "failed: " + rd.Reason
		}
		fmt.Fprintf(w, "  %5d %9.0f %9.0f %11.0f %9s %9s %9s %7d %6d %6d  %s\n", rd.Round, rd.TargetRate, rd.SendRate,
			rd.DeliveredPerSec, fmtDur(rd.Latency.P50), fmtDur(rd.Latency.P99), fmtDur(rd.Latency.P999),
			rd.Lost, rd.OutOfOrder+rd.Gaps, nerr, res)
	}
	for _, rd := range r.Rounds {
		writeCounts(w, fmt.Sprintf("errors r%d", rd.Round), rd.Errors)
		writeCounts(w, fmt.Sprintf("closed r%d", rd.Round), rd.Closed)
		if !rd.Held {
			fmt.Fprintf(w, "  round %d failed: %s\n", rd.Round, rd.Reason)
		}
	}
	r.writeNodes(w)
	for _, rd := range r.Rounds {
		if len(rd.ServerCPU) == 0 {
			continue
		}
		var parts []string
		for _, c := range rd.ServerCPU {
			parts = append(parts, fmt.Sprintf("pid %d %v", c.PID, c.CPU.Round(10*time.Millisecond)))
		}
		fmt.Fprintf(w, "  server cpu r%d: %s; %s per acked message\n", rd.Round, strings.Join(parts, ", "), fmtDur(rd.CPUPerMessage))
	}
	if r.Step != nil {
		fmt.Fprintf(w, "  highest rate that held (p99 ≤ %v, nothing lost): %.0f msg/s\n", r.Step.MaxP99, r.BestRate)
	}
}

// writeNodes prints, for a run over several nodes, each node's members and
// publishers and its share of every round's deliveries.
func (r *FanoutResult) writeNodes(w io.Writer) {
	if len(r.Nodes) == 0 {
		return
	}
	fmt.Fprintf(w, "  members and publishers round-robin over %d nodes in every room:\n", len(r.Nodes))
	for _, n := range r.Nodes {
		fmt.Fprintf(w, "  node %d  %s: %d members, %d publishing\n", n.Node, n.Target, n.Members, n.Publishers)
		writeCounts(w, fmt.Sprintf("setup fail node %d", n.Node), n.SetupFailures)
	}
	fmt.Fprintf(w, "  %5s %5s %11s %9s %9s %7s\n", "round", "node", "deliv/s", "p50", "p99", "lost")
	for _, rd := range r.Rounds {
		for _, n := range rd.Nodes {
			fmt.Fprintf(w, "  %5d %5d %11.0f %9s %9s %7d\n", rd.Round, n.Node, n.DeliveredPerSec,
				fmtDur(n.Latency.P50), fmtDur(n.Latency.P99), n.Lost)
		}
		if rd.CrossNode != nil && rd.SameNode != nil {
			fmt.Fprintf(w, "  round %d: publisher on another node p50 %s p99 %s (%d deliveries); on the same node p50 %s p99 %s (%d)\n",
				rd.Round, fmtDur(rd.CrossNode.P50), fmtDur(rd.CrossNode.P99), rd.CrossNode.Count,
				fmtDur(rd.SameNode.P50), fmtDur(rd.SameNode.P99), rd.SameNode.Count)
		}
	}
}
