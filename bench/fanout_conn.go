package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// maxFrame bounds what a bench client reads in one frame; the server's own
// limit is 64 KiB, and a joined frame with history fits well below this.
const maxFrame = 4 << 20

// session is one fanout run's connections, shared by all its rounds.
type session struct {
	o         FanoutOptions
	nodes     []Target // the nodes, one for a single server
	endpoints []string // each node's /ws URL
	roomNames []string
	members   []*member
	pubs      []*publisher
	perRoom   []int // live members per room at setup
	perNode   []int // live members per room and node at setup: [room*len(nodes)+node]

	cur     atomic.Pointer[roundStats] // the round receivers account to
	rounds  int64                      // rounds started, warm-up included: the next round's id
	frames  atomic.Uint64              // every frame any reader received, for settle
	closing atomic.Bool                // set once we close, so our closes are not counted
	readers sync.WaitGroup
	gone    atomic.Uint64 // members whose connection ended before we closed it

	mu        sync.Mutex // guards setupFail, nodeFail, goneWhy, and members, pubs during setup
	setupFail map[string]uint64
	nodeFail  []map[string]uint64 // setupFail by node (runs over several nodes)
	goneWhy   map[string]uint64   // why the gone members' connections ended
}

// member is one connection, in exactly one room; the first few also
// publish (see publisher). Its fields are touched only by its reader
// goroutine after setup.
type member struct {
	idx     int
	room    int
	node    int // index in session.nodes
	ws      *wsConn
	lastID  int64   // last message id seen in the room (chatctl mode)
	lastSeq []int64 // last seq seen per publisher (raw mode)
}

// publisher is the sending side of a member: it publishes to the member's
// room on the member's connection. Its sender goroutine and the member's
// reader share nothing but the atomics of the current round.
type publisher struct {
	idx  int
	ws   *wsConn
	room int
	node int    // the member's node
	seq  int64  // next sequence number, across rounds; sender only
	buf  []byte // frame being built; sender only
}

// setup dials and joins everything, members first so that no message is
// published to a room before its members are there.
func (s *session) setup(ctx context.Context) error {
	o := s.o
	id := runID()
	for r := 0; r < o.Rooms; r++ {
		s.roomNames = append(s.roomNames, fmt.Sprintf("bench-%s-%d", id, r))
	}
	toks := make([]connToken, o.Members)
	if !o.Raw {
		var err error
		if toks, err = connTokens(ctx, o.Creds, len(toks), o.MaxConnsPerUser); err != nil {
			return err
		}
	}
	if !o.SkipPreflight {
		// Every node: one that does not answer fails the run here, by
		// its URL, rather than as a pile of setup failures.
		for _, t := range s.nodes {
			if err := Check(ctx, t, toks[0].Token, true, o.Raw); err != nil {
				return err
			}
		}
	}
	n := len(s.nodes)
	s.perRoom = make([]int, o.Rooms)
	s.perNode = make([]int, o.Rooms*n)
	s.nodeFail = make([]map[string]uint64, n)
	for i := range s.nodeFail {
		s.nodeFail[i] = map[string]uint64{}
	}
	pace(ctx, o.Members, o.ConnectRate, 0, func(i int) {
		m := &member{idx: i, room: i % o.Rooms, node: nodeOf(i, o.Rooms, n)}
		if m.ws = s.connect(ctx, m.node, toks[i].Token, m.room, &m.lastID); m.ws == nil {
			return
		}
		s.mu.Lock()
		s.members = append(s.members, m)
		s.perRoom[m.room]++
		s.perNode[m.room*n+m.node]++
		s.mu.Unlock()
	})
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(s.members) < o.Publishers {
		return fmt.Errorf("%w: %d of %d members connected, fewer than the %d publishers; failures %v",
			errNoConnections, len(s.members), o.Members, o.Publishers, s.setupFail)
	}
	// The members with the lowest indexes publish: member i is in room
	// i%Rooms, so when all connect, every room has Publishers/Rooms.
	slices.SortFunc(s.members, func(a, b *member) int { return a.idx - b.idx })
	for k, m := range s.members[:o.Publishers] {
		s.pubs = append(s.pubs, &publisher{idx: k, ws: m.ws, room: m.room, node: m.node})
	}
	// Readers start only now: every pointer above is final.
	s.cur.Store(newRoundStats(-1, o.Rooms, n))
	for _, m := range s.members {
		m.lastSeq = make([]int64, o.Publishers)
		for i := range m.lastSeq {
			m.lastSeq[i] = -1
		}
		s.readers.Add(1)
		go s.receive(m)
	}
	s.settle(ctx)
	return nil
}

// Settling: every join makes the server tell the whole room, so M members
// leave O(M²) presence frames queued toward the bench when setup ends.
// Measuring before they are read would charge that backlog to the first
// round's latency.
const (
	settleQuiet = 300 * time.Millisecond // no frame for this long: settled
	settleMax   = 60 * time.Second
)

// settle waits until the readers have gone settleQuiet without a frame.
func (s *session) settle(ctx context.Context) {
	deadline := time.Now().Add(settleMax)
	last := s.frames.Load()
	t := time.NewTicker(settleQuiet)
	defer t.Stop()
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n := s.frames.Load()
		if n == last {
			return
		}
		last = n
	}
}

// connect dials one connection to node and joins room (not in raw mode),
// storing the highest message id the joined frame carried in lastID. On
// failure it counts the cause and returns nil.
func (s *session) connect(ctx context.Context, node int, token string, room int, lastID *int64) *wsConn {
	ws, cause := dialConn(ctx, s.endpoints[node], wsHeader(s.nodes[node], token, s.o.Raw), s.o.DialTimeout)
	if ws == nil {
		if cause != "canceled" && ctx.Err() == nil {
			s.fail(node, cause)
		}
		return nil
	}
	if s.o.Raw {
		return ws
	}
	if cause := s.join(ws, room, lastID); cause != "" {
		s.fail(node, cause)
		ws.Close("join failed")
		return nil
	}
	return ws
}

// join joins room and waits for the joined reply.
func (s *session) join(ws *wsConn, room int, lastID *int64) string {
	msg := `{"type":"join","room":"` + s.roomNames[room] + `"}`
	if err := ws.WriteText([]byte(msg)); err != nil {
		return "join_" + errKind(err)
	}
	ws.nc.SetReadDeadline(time.Now().Add(defaultDuration(s.o.DialTimeout, DefaultDialTimeout)))
	defer ws.nc.SetReadDeadline(time.Time{})
	var f frame
	for {
		_, data, err := ws.next()
		if err != nil {
			return "join_" + closeCause(err)
		}
		if !scanFrame(data, &f) {
			return "join_bad_frame"
		}
		switch string(f.typ) {
		case "joined":
			var j struct {
				Messages []struct {
					ID int64 `json:"id"`
				} `json:"messages"`
			}
			if json.Unmarshal(data, &j) == nil {
				for _, m := range j.Messages {
					*lastID = max(*lastID, m.ID)
				}
			}
			return ""
		case "error":
			return "join_" + string(f.code)
		} // presence of members joining meanwhile
	}
}

// fail counts a setup failure on node.
func (s *session) fail(node int, cause string) {
	s.mu.Lock()
	s.setupFail[cause]++
	s.nodeFail[node][cause]++
	s.mu.Unlock()
}

// nodeSummary describes what setup left on each node.
func (s *session) nodeSummary() []FanoutNode {
	out := make([]FanoutNode, len(s.nodes))
	for i := range out {
		out[i] = FanoutNode{Node: i + 1, Target: s.endpoints[i]}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.members {
		out[m.node].Members++
	}
	for _, p := range s.pubs {
		out[p.node].Publishers++
	}
	for i, f := range s.nodeFail {
		if len(f) > 0 {
			out[i].SetupFailures = maps.Clone(f)
		}
	}
	return out
}

// receive is a member's hot loop: it takes frames in place from the
// connection's buffer, scans instead of unmarshalling, and accounts each of
// this run's messages to the current round, as received when the read that
// brought it returned. A publishing member's acks and errors come here too.
func (s *session) receive(m *member) {
	defer s.readers.Done()
	var f frame
	for {
		_, buf, err := m.ws.next()
		if err != nil {
			if !s.closing.Load() {
				cause := closeCause(err)
				s.gone.Add(1)
				s.mu.Lock()
				s.goneWhy[cause]++
				s.mu.Unlock()
				st := s.cur.Load()
				st.count(&st.closed, cause)
			}
			return
		}
		s.frames.Add(1)
		now := m.ws.at
		st := s.cur.Load()
		if s.o.Raw {
			// The example joins queued messages with newlines in one frame.
			for line := range splitLines(buf) {
				s.deliver(m, st, line, 0, false, now)
			}
			continue
		}
		if id, text, ok := scanMessage(buf); ok {
			s.deliver(m, st, text, id, true, now)
			continue
		}
		if !scanFrame(buf, &f) {
			continue
		}
		switch string(f.typ) {
		case "message":
			s.deliver(m, st, f.text, f.id, f.hasID, now)
		case "ack":
			if round, room, ok := parseRef(f.ref); ok && round == st.round && room < len(st.acked) {
				st.acked[room].Add(1)
			}
		case "error":
			if round, _, ok := parseRef(f.ref); ok && round == st.round {
				st.refused.Add(1)
			}
			st.count(&st.errors, string(f.code))
		} // joined, presence, pong...
	}
}

// deliver accounts one received message.
func (s *session) deliver(m *member, st *roundStats, text []byte, id int64, hasID bool, now int64) {
	if hasID {
		switch {
		case m.lastID != 0 && id <= m.lastID:
			st.outOfOrder.Add(1)
		case m.lastID != 0 && id > m.lastID+1:
			st.gaps.Add(uint64(id - m.lastID - 1))
		}
		m.lastID = max(m.lastID, id)
	}
	p, ok := parsePayload(text)
	if !ok {
		return // not ours
	}
	if !hasID && p.pub >= 0 && p.pub < int64(len(m.lastSeq)) {
		last := m.lastSeq[p.pub]
		switch {
		case last >= 0 && p.seq <= last:
			st.outOfOrder.Add(1)
		case last >= 0 && p.seq > last+1:
			st.gaps.Add(uint64(p.seq - last - 1))
		}
		m.lastSeq[p.pub] = max(last, p.seq)
	}
	if p.round != st.round {
		st.late.Add(1)
		return
	}
	// Latency first: whoever sees the count (drain, judge) sees it
	// recorded too.
	h := 0
	if st.nodes > 1 {
		h = 2 * m.node // same node; +1 when the publisher was elsewhere
		if p.pub >= 0 && p.pub < int64(len(s.pubs)) && s.pubs[p.pub].node != m.node {
			h++
		}
	}
	st.hists[h].Record(m.idx, time.Duration(now-p.sent))
	st.received[m.room*st.nodes+m.node].Add(1)
}

// parseRef reads the "round-room" ref a publisher puts on every send.
func parseRef(ref []byte) (round int64, room int, ok bool) {
	for i, c := range ref {
		if c == '-' {
			r, ok1 := parseInt(ref[:i])
			m, ok2 := parseInt(ref[i+1:])
			return r, int(m), ok1 && ok2
		}
	}
	return 0, 0, false
}

// appendRef appends a ref for round and room.
func appendRef(dst []byte, round int64, room int) []byte {
	dst = strconv.AppendInt(dst, round, 10)
	dst = append(dst, '-')
	return strconv.AppendInt(dst, int64(room), 10)
}

// splitLines yields the newline-separated parts of b, skipping empty ones.
func splitLines(b []byte) func(yield func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for len(b) > 0 {
			i := 0
			for i < len(b) && b[i] != '\n' {
				i++
			}
			if i > 0 && !yield(b[:i]) {
				return
			}
			b = b[min(i+1, len(b)):]
		}
	}
}

// close closes every connection and waits for the readers.
func (s *session) close() {
	s.closing.Store(true)
	s.mu.Lock()
	var conns []*wsConn
	for _, m := range s.members {
		conns = append(conns, m.ws)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.Close("bench done")
	}
	s.readers.Wait()
}
