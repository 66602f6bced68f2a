package bench

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// roundStats is what the readers and publishers of one round update.
// Counters are atomics because every connection's goroutine writes them.
type roundStats struct {
	round int64 // id carried by the round's messages; unique in the run, warm-up included
	nodes int   // nodes of the run
	// hists holds the latencies: one histogram on one node; on several,
	// two per node, [2*node] for deliveries from a publisher on the same
	// node and [2*node+1] from one on another node.
	hists    []*SharedHistogram
	received []atomic.Uint64 // per room and node ([room*nodes+node]): this round's messages delivered to members
	acked    []atomic.Uint64 // per room: acked sends (raw: written sends)

	sent, refused, outOfOrder, gaps, late atomic.Uint64

	mu     sync.Mutex // guards errors and closed
	errors map[string]uint64
	closed map[string]uint64
}

// newRoundStats returns empty stats for round over rooms rooms and nodes
// nodes.
func newRoundStats(round int64, rooms, nodes int) *roundStats {
	st := &roundStats{round: round, nodes: nodes,
		received: make([]atomic.Uint64, rooms*nodes), acked: make([]atomic.Uint64, rooms),
		errors: map[string]uint64{}, closed: map[string]uint64{}}
	nh := 1
	if nodes > 1 {
		nh = 2 * nodes
	}
	for range nh {
		st.hists = append(st.hists, NewSharedHistogram())
	}
	return st
}

// latency merges the histograms whose index passes keep (nil: all).
func (st *roundStats) latency(keep func(i int) bool) *Histogram {
	out := NewHistogram()
	for i, h := range st.hists {
		if keep == nil || keep(i) {
			out.Merge(h.Snapshot())
		}
	}
	return out
}

// count increments (*m)[key]; m is &st.errors or &st.closed.
func (st *roundStats) count(m *map[string]uint64, key string) {
	st.mu.Lock()
	(*m)[key]++
	st.mu.Unlock()
}

// totals returns delivered, expected and acked counts for the round.
func (s *session) totals(st *roundStats) (delivered, expected, acked uint64) {
	for r := range st.acked {
		for n := range st.nodes {
			delivered += st.received[r*st.nodes+n].Load()
		}
		a := st.acked[r].Load()
		acked += a
		expected += a * uint64(s.perRoom[r])
	}
	return delivered, expected, acked
}

// round publishes at rate for dur, waits for the stragglers, and judges
// the round against maxP99 (0: no latency bound). i is the round's index in
// the report and name labels progress; its messages carry an id of their
// own, so a straggler of an earlier round (or of the warm-up) counts as
// late, never as one of this round's deliveries.
func (s *session) round(ctx context.Context, i int, rate float64, maxP99, dur time.Duration, name string) FanoutRound {
	st := newRoundStats(s.rounds, s.o.Rooms, len(s.nodes))
	s.rounds++
	s.cur.Store(st)
	var tk ticker
	stop := startProgress(s.o.Progress, s.o.ProgressInterval, func(el time.Duration) string {
		d, _, _ := s.totals(st)
		errs := st.refused.Load()
		return fmt.Sprintf("%6v  %s @ %.0f msg/s  sent %d  delivered %8.0f/s  p99 %s  errors %d",
			el, name, rate, st.sent.Load(), tk.rate(d), fmtDur(st.latency(nil).Percentile(99)), errs)
	})
	defer stop()

	perPub := rate / float64(len(s.pubs))
	cpu0, _ := readCPU(s.o.ServerPIDs)
	start := time.Now()
	until := start.Add(dur)
	var wg sync.WaitGroup
	for k, p := range s.pubs {
		// Stagger publishers over one interval so their sends interleave.
		phase := time.Duration(float64(time.Second) / perPub * float64(k) / float64(len(s.pubs)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.publish(ctx, p, st, perPub, start.Add(phase), until)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	s.drain(ctx, st)
	stop()
	rd := s.judge(ctx, i, st, rate, elapsed, maxP99)
	if cpu1, err := readCPU(s.o.ServerPIDs); err == nil && len(cpu0) == len(cpu1) && len(cpu1) > 0 {
		var sum time.Duration
		for k, pid := range s.o.ServerPIDs {
			rd.ServerCPU = append(rd.ServerCPU, ProcessCPU{PID: pid, CPU: cpu1[k] - cpu0[k]})
			sum += cpu1[k] - cpu0[k]
		}
		if rd.Acked > 0 {
			rd.CPUPerMessage = sum / time.Duration(rd.Acked)
		}
	}
	return rd
}

// publish sends p's share of the round on a fixed schedule from first
// until until. A publisher that falls behind sends at once, without
// skipping: latency is measured from the actual send time.
func (s *session) publish(ctx context.Context, p *publisher, st *roundStats, perSec float64, first, until time.Time) {
	interval := time.Duration(float64(time.Second) / perSec)
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for next := first; next.Before(until); next = next.Add(interval) {
		if d := time.Until(next); d > 0 {
			timer.Reset(d)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		} else if ctx.Err() != nil {
			return
		}
		room := p.room
		pl := payload{round: st.round, pub: int64(p.idx), seq: p.seq, sent: time.Now().UnixNano()}
		p.seq++
		p.buf = s.appendSend(p.buf[:0], room, pl)
		if err := p.ws.WriteText(p.buf); err != nil {
			st.count(&st.errors, "write_"+errKind(err))
			return
		}
		st.sent.Add(1)
		if s.o.Raw {
			st.acked[room].Add(1) // no acks in the example: written counts as accepted
		}
	}
}

// appendSend appends the frame that publishes pl to room.
func (s *session) appendSend(dst []byte, room int, pl payload) []byte {
	if s.o.Raw {
		return appendPayload(dst, pl, s.o.MessageSize)
	}
	dst = append(dst, `{"type":"send","room":"`...)
	dst = append(dst, s.roomNames[room]...)
	dst = append(dst, `","text":"`...)
	dst = appendPayload(dst, pl, s.o.MessageSize)
	dst = append(dst, `","ref":"`...)
	dst = appendRef(dst, pl.round, room)
	return append(dst, `"}`...)
}

// drainPoll is how often drain checks whether every delivery is in.
const drainPoll = 10 * time.Millisecond

// drain waits until every expected delivery and every ack has arrived, or
// the drain grace has passed, or ctx ends.
func (s *session) drain(ctx context.Context, st *roundStats) {
	deadline := time.NewTimer(s.o.Drain)
	defer deadline.Stop()
	poll := time.NewTicker(drainPoll)
	defer poll.Stop()
	for {
		delivered, expected, acked := s.totals(st)
		if delivered >= expected && acked+st.refused.Load() >= st.sent.Load() {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-deadline.C:
			return
		case <-poll.C:
		}
	}
}

// judge turns the round's counters into a FanoutRound and decides whether
// it held: every member connected and still connected, something
// delivered, nothing lost, unacked, refused or reordered, the bench kept
// the pace, and p99 within maxP99 when that is set.
func (s *session) judge(ctx context.Context, i int, st *roundStats, rate float64, elapsed time.Duration, maxP99 time.Duration) FanoutRound {
	delivered, expected, acked := s.totals(st)
	sent := st.sent.Load()
	h := st.latency(nil)
	rd := FanoutRound{Round: i, TargetRate: rate, Elapsed: elapsed, Sent: sent, Acked: acked,
		SendRate: Rate(sent, elapsed), Expected: expected, Delivered: delivered,
		DeliveredPerSec: Rate(delivered, elapsed), OutOfOrder: st.outOfOrder.Load(), Gaps: st.gaps.Load(),
		Late: st.late.Load(), Latency: h.Summary()}
	if sent > acked+st.refused.Load() {
		rd.Unacked = sent - acked - st.refused.Load()
	}
	if expected > delivered {
		rd.Lost = expected - delivered
	} else {
		rd.Extra = delivered - expected
	}
	st.mu.Lock()
	if len(st.errors) > 0 {
		rd.Errors = maps.Clone(st.errors)
	}
	if len(st.closed) > 0 {
		rd.Closed = maps.Clone(st.closed)
	}
	st.mu.Unlock()
	var nerr uint64
	for _, v := range rd.Errors {
		nerr += v
	}
	if st.nodes > 1 {
		s.judgeNodes(st, &rd, elapsed)
	}
	rd.MembersFailed = s.o.Members - len(s.members)
	rd.MembersClosed = s.gone.Load()
	s.mu.Lock()
	setupFail, goneWhy := fmtCounts(s.setupFail), fmtCounts(s.goneWhy)
	s.mu.Unlock()
	var why []string
	fail := func(format string, args ...any) { why = append(why, fmt.Sprintf(format, args...)) }
	if ctx.Err() != nil {
		// What follows would only describe the interruption.
		rd.Failures, rd.Reason = []string{"interrupted"}, "interrupted"
		return rd
	}
	if rd.MembersFailed > 0 {
		fail("%d of %d members failed to connect (%s)", rd.MembersFailed, s.o.Members, setupFail)
	}
	if rd.MembersClosed > 0 {
		fail("%d of %d members closed by the server (%s)", rd.MembersClosed, len(s.members), goneWhy)
	}
	switch {
	case sent == 0:
		fail("nothing sent")
	case delivered == 0:
		fail("nothing delivered (%d sent, %d acked)", sent, acked)
	case rd.Lost > 0:
		fail("%d lost (%d of %d delivered)", rd.Lost, delivered, expected)
	}
	if rd.Unacked > 0 {
		fail("%d unacked", rd.Unacked)
	}
	if nerr > 0 {
		fail("%d errors", nerr)
	}
	if rd.OutOfOrder+rd.Gaps > 0 {
		fail("%d out of order", rd.OutOfOrder+rd.Gaps)
	}
	if maxP99 > 0 && rd.Latency.P99 > maxP99 {
		fail("p99 %s > %s", fmtDur(rd.Latency.P99), fmtDur(maxP99))
	}
	if rd.SendRate < 0.9*rate {
		fail("bench sent only %.0f msg/s", rd.SendRate)
	}
	rd.Held = len(why) == 0
	rd.Failures, rd.Reason = why, strings.Join(why, "; ")
	return rd
}

// judgeNodes fills the round's split by node and by same- or cross-node
// latency.
func (s *session) judgeNodes(st *roundStats, rd *FanoutRound, elapsed time.Duration) {
	for n := range st.nodes {
		nr := FanoutNodeRound{Node: n + 1, Latency: st.latency(func(i int) bool { return i/2 == n }).Summary()}
		for r := range st.acked {
			nr.Delivered += st.received[r*st.nodes+n].Load()
			nr.Expected += st.acked[r].Load() * uint64(s.perNode[r*st.nodes+n])
		}
		nr.DeliveredPerSec = Rate(nr.Delivered, elapsed)
		if nr.Expected > nr.Delivered {
			nr.Lost = nr.Expected - nr.Delivered
		}
		rd.Nodes = append(rd.Nodes, nr)
	}
	cross := st.latency(func(i int) bool { return i%2 == 1 }).Summary()
	same := st.latency(func(i int) bool { return i%2 == 0 }).Summary()
	rd.CrossNode, rd.SameNode = &cross, &same
}

// fmtCounts formats m as "key=n, …", sorted by key.
func fmtCounts(m map[string]uint64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}
