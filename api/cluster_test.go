package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"

	"github.com/chatctl/chatctl/admin"
	"github.com/chatctl/chatctl/cluster"
	"github.com/chatctl/chatctl/configs"
	"github.com/chatctl/chatctl/internal/natstest"
	"github.com/chatctl/chatctl/internal/pgtest"
	"github.com/chatctl/chatctl/store"
	"github.com/chatctl/chatctl/store/pg"
)

// clusterWait bounds every wait on a condition in the cluster tests:
// generous, because the machine may be loaded. Nothing sleeps to wait.
const clusterWait = 30 * time.Second

// node is one chatctl server of a test cluster: its own PostgreSQL
// handle, admin Service, hub and NATS broker, on the shared database.
type node struct {
	name string
	db   *pg.DB
	svc  *admin.Service
	srv  *Server
	ts   *httptest.Server
	b    *cluster.NATS
}

// newNode starts a node on the database url and the NATS server natsURL,
// with the change feed followed as Serve does.
func newNode(t *testing.T, name, url, natsURL string, o nodeOpts) *node {
	t.Helper()
	cfg := testConfig(t)
	cfg.Store, cfg.Broker, cfg.Cluster.NodeID = url, natsURL, name
	if o.mutate != nil {
		o.mutate(cfg)
	}
	db, err := pg.Open(context.Background(), url, pg.Options{Access: store.Create})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := admin.New(db, cfg, nil)
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	srv := NewServer(log, cfg, svc, Options{})
	b, err := cluster.NewNATS(cluster.Options{URL: natsURL, Node: name, Heartbeat: 200 * time.Millisecond,
		PresenceTTL: 2 * time.Second, RosterWait: 50 * time.Millisecond, ReconnectWait: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.JoinCluster(b); err != nil {
		t.Fatal(err)
	}
	n := &node{name: name, db: db, svc: svc, srv: srv, b: b, ts: httptest.NewServer(srv)}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		srv.Hub().Run(ctx)
	}()
	go func() {
		defer wg.Done()
		if !o.noFeed {
			_ = db.Watch(ctx, changePoll, srv.applyChange)
		}
	}()
	t.Cleanup(func() {
		n.ts.CloseClientConnections()
		n.ts.Close()
		cancel()
		wg.Wait()
		srv.Close()
		if err := svc.Close(); err != nil {
			t.Error(err)
		}
	})
	return n
}

// get returns the body of a GET of path on n, failing unless it is 200.
func (n *node) get(t *testing.T, path string) string {
	t.Helper()
	resp, err := http.Get(n.ts.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s %v", path, resp.StatusCode, b, err)
	}
	return string(b)
}

// grepLines returns the lines of s that start with one of prefixes.
func grepLines(s string, prefixes ...string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		for _, p := range prefixes {
			if strings.HasPrefix(l, p) {
				out = append(out, l)
			}
		}
	}
	return strings.Join(out, "\n")
}

// frame is what the cluster tests read of a server frame.
type frame struct {
	Type    string   `json:"type"`
	Room    string   `json:"room"`
	ID      uint64   `json:"id"`
	From    string   `json:"from"`
	Text    string   `json:"text"`
	Ref     string   `json:"ref"`
	User    string   `json:"user"`
	Event   string   `json:"event"`
	Members []string `json:"members"`
	Code    string   `json:"code"`

	Messages []frame `json:"messages"`
	Rooms    []struct {
		Room   string `json:"room"`
		Online int    `json:"online"`
		Unread int    `json:"unread"`
	} `json:"rooms"`
}

// wsClient is a test connection whose reader keeps every frame.
type wsClient struct {
	t    *testing.T
	user string
	conn *websocket.Conn

	mu     sync.Mutex // guards frames, closed, code
	frames []frame
	closed bool
	code   int           // close code when closed
	wake   chan struct{} // one pending wake-up
}

// dial opens a WebSocket to n as user.
func (n *node) dial(t *testing.T, user, tok string) *wsClient {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial("ws://"+n.ts.Listener.Addr().String()+"/ws?token="+tok, nil)
	if err != nil {
		t.Fatalf("dial %s as %s: %v", n.name, user, err)
	}
	c := &wsClient{t: t, user: user, conn: conn, wake: make(chan struct{}, 1)}
	t.Cleanup(func() { conn.Close() })
	go c.read()
	return c
}

func (c *wsClient) read() {
	for {
		var f frame
		err := c.conn.ReadJSON(&f)
		c.mu.Lock()
		if err != nil {
			c.closed = true
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				c.code = ce.Code
			}
			c.mu.Unlock()
			c.poke()
			return
		}
		c.frames = append(c.frames, f)
		c.mu.Unlock()
		c.poke()
	}
}

func (c *wsClient) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// closeCode is the close code the server sent (0: none yet).
func (c *wsClient) closeCode() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.code
}

// send writes a frame.
func (c *wsClient) send(v map[string]any) {
	c.t.Helper()
	if err := c.conn.WriteJSON(v); err != nil {
		c.t.Fatalf("%s: write: %v", c.user, err)
	}
}

// waitUntil waits until cond holds over the frames read so far (or the
// connection's end), failing after clusterWait.
func (c *wsClient) waitUntil(what string, cond func(fs []frame, closed bool, code int) bool) {
	c.t.Helper()
	deadline := time.NewTimer(clusterWait)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		ok := cond(c.frames, c.closed, c.code)
		n := len(c.frames)
		c.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-c.wake:
		case <-deadline.C:
			c.t.Fatalf("%s: timed out waiting for %s (%d frames read)", c.user, what, n)
		}
	}
}

// of returns the frames of type typ read so far.
func (c *wsClient) of(typ string) []frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []frame
	for _, f := range c.frames {
		if f.Type == typ {
			out = append(out, f)
		}
	}
	return out
}

// count returns how many frames satisfy match.
func count(fs []frame, match func(frame) bool) int {
	n := 0
	for _, f := range fs {
		if match(f) {
			n++
		}
	}
	return n
}

// join joins room and waits for the joined frame.
func (c *wsClient) join(room string) frame {
	c.t.Helper()
	ref := "j-" + room
	c.send(map[string]any{"type": "join", "room": room, "ref": ref})
	var got frame
	c.waitUntil("joined "+room, func(fs []frame, _ bool, _ int) bool {
		for _, f := range fs {
			if f.Ref == ref && (f.Type == "joined" || f.Type == "error") {
				got = f
				return true
			}
		}
		return false
	})
	if got.Type != "joined" {
		c.t.Fatalf("%s: join %s: %+v", c.user, room, got)
	}
	return got
}

// barrier sends a ping and waits for its pong: every frame the server
// queued for c before handling the ping has been read by then.
func (c *wsClient) barrier(ref string) {
	c.t.Helper()
	c.send(map[string]any{"type": "ping", "ref": ref})
	c.waitUntil("pong "+ref, func(fs []frame, _ bool, _ int) bool {
		return count(fs, func(f frame) bool { return f.Type == "pong" && f.Ref == ref }) > 0
	})
}

// waitCond polls cond (state owned by the servers, no event to wait on)
// until it holds, failing after clusterWait.
func waitCond(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(clusterWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not a wait for an event
	}
}

// nodeOpts are the optional parts of a test node.
type nodeOpts struct {
	mutate func(*configs.Config) // adjusts the config
	noFeed bool                  // the node does not follow the change feed: only the broker tells it
}

// newCluster starts n nodes on one fresh database and one NATS server.
func newCluster(t *testing.T, n int, natsURL string, opts ...nodeOpts) []*node {
	t.Helper()
	url := pgtest.URL(t)
	nodes := make([]*node, n)
	for i := range nodes {
		var o nodeOpts
		if len(opts) > 0 {
			o = opts[0]
		}
		nodes[i] = newNode(t, fmt.Sprintf("node%d", i+1), url, natsURL, o)
	}
	waitCond(t, "every node to see the others", func() bool {
		for _, nd := range nodes {
			if len(nd.b.View().Nodes()) != n {
				return false
			}
		}
		return true
	})
	return nodes
}

// token adds user (once) and issues an access token for it.
func (n *node) token(t *testing.T, user string) string {
	t.Helper()
	_, err := n.svc.AddUser(bg, admin.AddUserRequest{Name: user, Password: testPassword, IgnoreExists: true})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := n.svc.IssueToken(bg, user, 0)
	if err != nil {
		t.Fatal(err)
	}
	return tok.AccessToken
}

// wantSequence checks that msgs are exactly ids 1..len(msgs) and agree
// with want (id → from/text).
func wantSequence(t *testing.T, who string, msgs []frame, want map[uint64]frame) {
	t.Helper()
	if len(msgs) != len(want) {
		t.Fatalf("%s: %d messages, want %d", who, len(msgs), len(want))
	}
	for i, m := range msgs {
		if m.ID != uint64(i+1) {
			t.Fatalf("%s: message %d has id %d: not the gapless sequence", who, i, m.ID)
		}
		if w := want[m.ID]; w.From != m.From || w.Text != m.Text {
			t.Fatalf("%s: id %d is %s %q, the ack and the store say %s %q", who, m.ID, m.From, m.Text, w.From, w.Text)
		}
	}
}

// Ensure three nodes on one database and one NATS server are one service
// (SPEC §7): 30 clients spread over the nodes, senders on all three into
// one room, and every client sees the same gapless sequence 1..N, which
// matches the acks and the database.
func TestClusterTotalOrder(t *testing.T) {
	ns := natstest.Start(t, -1)
	nodes := newCluster(t, 3, natstest.URL(ns))
	const clients, each = 30, 20
	cs := make([]*wsClient, clients)
	for i := range cs {
		user := fmt.Sprintf("u%02d", i)
		nd := nodes[i%len(nodes)]
		cs[i] = nd.dial(t, user, nd.token(t, user))
		cs[i].join("r")
	}
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range each {
				if err := c.conn.WriteJSON(map[string]any{"type": "send", "room": "r", "text": fmt.Sprintf("%s-%d", c.user, j), "ref": fmt.Sprint(j)}); err != nil {
					t.Errorf("%s: send: %v", c.user, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	const total = clients * each
	want := map[uint64]frame{}
	for _, c := range cs {
		c.waitUntil("every message and ack", func(fs []frame, _ bool, _ int) bool {
			return count(fs, func(f frame) bool { return f.Type == "message" && f.Room == "r" }) >= total &&
				count(fs, func(f frame) bool { return f.Type == "ack" }) >= each
		})
		for _, a := range c.of("ack") {
			if _, dup := want[a.ID]; dup || a.ID == 0 {
				t.Fatalf("%s: ack id %d given twice (or zero)", c.user, a.ID)
			}
			want[a.ID] = frame{From: c.user, Text: c.user + "-" + a.Ref}
		}
		if errs := c.of("error"); len(errs) > 0 {
			t.Fatalf("%s: error frames: %+v", c.user, errs)
		}
	}
	if len(want) != total {
		t.Fatalf("%d acks, want %d", len(want), total)
	}
	stored, err := nodes[0].db.MessagesAfter("r", 0, 2*total)
	if err != nil {
		t.Fatal(err)
	}
	var db []frame
	for _, m := range stored {
		db = append(db, frame{ID: m.ID, From: m.From, Text: m.Text})
	}
	wantSequence(t, "database", db, want)
	for _, c := range cs {
		wantSequence(t, c.user, c.of("message"), want)
	}
	// A client that saw everything on one node resumes on another with
	// since and misses nothing, gets nothing twice.
	late := nodes[1].dial(t, "late", nodes[1].token(t, "late"))
	late.send(map[string]any{"type": "join", "room": "r", "since": total - 5, "ref": "since"})
	late.barrier("after-join")
	j := late.of("joined")
	if len(j) != 1 || len(j[0].Messages) != 5 || j[0].Messages[0].ID != total-4 || j[0].Messages[4].ID != total {
		t.Fatalf("join with since %d on another node: %+v", total-5, j)
	}
	if msgs := late.of("message"); len(msgs) != 0 {
		t.Fatalf("late joiner got %d live messages, want none", len(msgs))
	}
}

// Ensure presence counts a user once across tabs on different nodes: one
// join when the first tab joins anywhere, one leave when the last leaves,
// and joined.members is the union over the live nodes.
func TestClusterPresence(t *testing.T) {
	ns := natstest.Start(t, -1)
	nodes := newCluster(t, 3, natstest.URL(ns))
	obs := nodes[2].dial(t, "obs", nodes[2].token(t, "obs"))
	obs.join("p")
	patTok := nodes[0].token(t, "pat")
	a := nodes[0].dial(t, "pat", patTok)
	a.join("p")
	patEvents := func(fs []frame) []string {
		var ev []string
		for _, f := range fs {
			if f.Type == "presence" && f.User == "pat" {
				ev = append(ev, f.Event)
			}
		}
		return ev
	}
	obs.waitUntil("pat's join", func(fs []frame, _ bool, _ int) bool { return len(patEvents(fs)) == 1 })
	waitCond(t, "node2 to see obs and pat", func() bool {
		v := nodes[1].b.View()
		return v.Present("p", "obs") && v.Present("p", "pat")
	})
	b := nodes[1].dial(t, "pat", patTok)
	j := b.join("p")
	if !slices.Equal(j.Members, []string{"obs", "pat"}) {
		t.Fatalf("joined.members on node2 = %v, want the union [obs pat]", j.Members)
	}
	waitCond(t, "every node to count both of pat's tabs", func() bool {
		for _, nd := range nodes {
			if nd.b.View().Count("p", "pat") != 2 {
				return false
			}
		}
		return true
	})
	// The directory counts users online on every node.
	obs.send(map[string]any{"type": "rooms", "ref": "dir"})
	obs.waitUntil("rooms", func(fs []frame, _ bool, _ int) bool {
		return count(fs, func(f frame) bool { return f.Type == "rooms" }) > 0
	})
	if rs := obs.of("rooms")[0].Rooms; len(rs) != 1 || rs[0].Room != "p" || rs[0].Online != 2 {
		t.Fatalf("directory on node3 = %+v, want p with 2 users online", rs)
	}
	for _, c := range []*wsClient{a, b} {
		c.send(map[string]any{"type": "leave", "room": "p", "ref": "bye"})
		c.waitUntil("leave ack", func(fs []frame, _ bool, _ int) bool {
			return count(fs, func(f frame) bool { return f.Type == "ack" && f.Ref == "bye" }) > 0
		})
	}
	obs.waitUntil("pat's leave", func(fs []frame, _ bool, _ int) bool { return len(patEvents(fs)) >= 2 })
	obs.barrier("done")
	obs.mu.Lock()
	ev := patEvents(obs.frames)
	obs.mu.Unlock()
	if !slices.Equal(ev, []string{"join", "leave"}) {
		t.Fatalf("obs saw pat's presence %v, want [join leave] once across tabs", ev)
	}
}

// Ensure `user disable` through the admin Service of node 1 closes the
// user's sockets on nodes 2 and 3 with 4003 within 1 s, through the
// broker alone (the nodes do not follow the change feed here), and so
// does a token revoked by its id.
func TestClusterKick(t *testing.T) {
	ns := natstest.Start(t, -1)
	nodes := newCluster(t, 3, natstest.URL(ns), nodeOpts{noFeed: true})
	tok := nodes[0].token(t, "vic")
	other := nodes[1].dial(t, "ann", nodes[1].token(t, "ann"))
	conns := []*wsClient{nodes[1].dial(t, "vic", tok), nodes[2].dial(t, "vic", tok)}
	for _, c := range conns {
		c.barrier("up")
	}
	start := time.Now()
	if _, err := nodes[0].svc.SetDisabled(bg, "vic", true); err != nil {
		t.Fatal(err)
	}
	for _, c := range conns {
		c.waitUntil("close 4003", func(_ []frame, closed bool, _ int) bool { return closed })
		if code := c.closeCode(); code != 4003 {
			t.Fatalf("vic's socket closed with %d, want 4003", code)
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("sockets on other nodes closed after %v, want within 1s", d)
	}
	other.barrier("still-up") // somebody else's connection is untouched

	// One token revoked by its id on node 3 closes the socket it opened
	// on node 2, and only that one.
	if _, err := nodes[0].svc.AddUser(bg, admin.AddUserRequest{Name: "jo", Password: testPassword}); err != nil {
		t.Fatal(err)
	}
	revoked, err := nodes[0].svc.IssueToken(bg, "jo", 0)
	if err != nil {
		t.Fatal(err)
	}
	kept := nodes[1].dial(t, "jo", nodes[0].token(t, "jo"))
	gone := nodes[1].dial(t, "jo", revoked.AccessToken)
	kept.barrier("up")
	gone.barrier("up")
	start = time.Now()
	if _, err := nodes[2].svc.Revoke(bg, admin.RevokeRequest{ID: revoked.JTI}); err != nil {
		t.Fatal(err)
	}
	gone.waitUntil("close 4003", func(_ []frame, closed bool, _ int) bool { return closed })
	if code := gone.closeCode(); code != 4003 {
		t.Fatalf("socket of a revoked token closed with %d, want 4003", code)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("socket of a revoked token closed after %v, want within 1s", d)
	}
	kept.barrier("still-up")
}

// Ensure the nodes keep serving their own members while NATS is down,
// deliver across nodes from the store meanwhile, and leave no gap once it
// is back (SPEC §7).
func TestClusterNATSRestart(t *testing.T) {
	ns := natstest.Start(t, -1)
	port := natstest.Port(ns)
	nodes := newCluster(t, 2, fmt.Sprintf("nats://127.0.0.1:%d", port))
	a := nodes[0].dial(t, "amy", nodes[0].token(t, "amy"))
	b := nodes[1].dial(t, "ben", nodes[1].token(t, "ben"))
	a.join("n")
	b.join("n")
	sent := 0
	sendBoth := func(k int) {
		for i := range k {
			for _, c := range []*wsClient{a, b} {
				c.send(map[string]any{"type": "send", "room": "n", "text": fmt.Sprintf("%s-%d", c.user, sent+i), "ref": fmt.Sprint(sent + i)})
			}
		}
		sent += k
	}
	seen := func(c *wsClient, n int) {
		c.waitUntil(fmt.Sprintf("%d messages", n), func(fs []frame, _ bool, _ int) bool {
			return count(fs, func(f frame) bool { return f.Type == "message" }) >= n
		})
	}
	sendBoth(5)
	seen(a, 10)
	seen(b, 10)

	ns.Shutdown()
	ns.WaitForShutdown()
	waitCond(t, "the brokers to notice", func() bool { return !nodes[0].b.Up() && !nodes[1].b.Up() })
	sendBoth(5) // acked by each node meanwhile; delivered across from the store
	seen(a, 20)
	seen(b, 20)
	if body := nodes[0].get(t, "/health"); !strings.Contains(body, `"status":"degraded"`) || !strings.Contains(body, "broker") {
		t.Fatalf("/health with NATS down = %s, want 200 degraded naming the broker", body)
	}
	m := nodes[0].get(t, "/metrics")
	if !strings.Contains(m, "chatctl_broker_up 0") || strings.Contains(m, "chatctl_cluster_holes_filled_total 0") {
		t.Fatalf("/metrics with NATS down: want chatctl_broker_up 0 and holes filled from the store:\n%s", grepLines(m, "chatctl_cluster_", "chatctl_broker_"))
	}

	natstest.Start(t, port)
	waitCond(t, "the brokers to reconnect", func() bool { return nodes[0].b.Up() && nodes[1].b.Up() })
	if body := nodes[0].get(t, "/health"); body != `{"status":"ok"}`+"\n" {
		t.Fatalf("/health with NATS back = %s", body)
	}
	sendBoth(5)
	seen(a, 30)
	seen(b, 30)
	for _, c := range []*wsClient{a, b} {
		c.barrier("end")
		msgs := c.of("message")
		for i, m := range msgs {
			if m.ID != uint64(i+1) {
				t.Fatalf("%s: message %d has id %d: a gap or a duplicate", c.user, i, m.ID)
			}
		}
		if len(msgs) != 30 || len(c.of("ack")) != 15 {
			t.Fatalf("%s: %d messages and %d acks, want 30 and 15", c.user, len(msgs), len(c.of("ack")))
		}
		if errs := c.of("error"); len(errs) > 0 {
			t.Fatalf("%s: error frames %+v", c.user, errs)
		}
	}
}

// Ensure the per-user connection cap counts a user's connections on every
// node (SPEC §7): a connection over the cap on another node is refused
// with 4029; two nodes that admitted one each while they could not see
// each other overshoot for a moment, then the newest extra is closed with
// 4029 and the others stay.
func TestClusterConnCap(t *testing.T) {
	ns := natstest.Start(t, -1)
	port := natstest.Port(ns)
	nodes := newCluster(t, 3, fmt.Sprintf("nats://127.0.0.1:%d", port), nodeOpts{mutate: func(c *configs.Config) { c.WS.MaxConnsPerUser = 2 }})
	tok := nodes[0].token(t, "cap")
	counted := func(n int) func() bool {
		return func() bool {
			for _, nd := range nodes {
				if c, _ := nd.b.View().Conns("cap"); c != n {
					return false
				}
			}
			return true
		}
	}
	a := nodes[0].dial(t, "cap", tok)
	a.barrier("a")
	b := nodes[1].dial(t, "cap", tok)
	b.barrier("b")
	waitCond(t, "every node to count 2 connections", counted(2))
	over := nodes[2].dial(t, "cap", tok)
	over.waitUntil("close 4029", func(_ []frame, closed bool, code int) bool { return closed })
	if code := over.closeCode(); code != 4029 {
		t.Fatalf("third connection on a third node closed with %d, want 4029", code)
	}
	b.conn.Close()
	waitCond(t, "every node to count 1 connection", counted(1))

	// NATS down: node 1 and node 2 each admit one more, unaware of the other's.
	ns.Shutdown()
	ns.WaitForShutdown()
	waitCond(t, "the brokers to notice", func() bool { return !nodes[0].b.Up() && !nodes[1].b.Up() })
	older := nodes[0].dial(t, "cap", tok)
	older.barrier("older")
	newest := nodes[1].dial(t, "cap", tok)
	newest.barrier("newest")
	natstest.Start(t, port)
	newest.waitUntil("close 4029", func(_ []frame, closed bool, code int) bool { return closed })
	if code := newest.closeCode(); code != 4029 {
		t.Fatalf("the newest extra connection closed with %d, want 4029", code)
	}
	waitCond(t, "every node to count 2 connections", counted(2))
	a.barrier("a-alive")
	older.barrier("older-alive")
}

// Ensure the change feed is the fallback when NATS is down: a user
// disabled on node 1 is closed with 4003 on node 2 within 1 s.
func TestClusterKickFeedFallback(t *testing.T) {
	ns := natstest.Start(t, -1)
	port := natstest.Port(ns)
	nodes := newCluster(t, 2, fmt.Sprintf("nats://127.0.0.1:%d", port))
	c := nodes[1].dial(t, "vic", nodes[0].token(t, "vic"))
	c.barrier("up")
	ns.Shutdown()
	ns.WaitForShutdown()
	waitCond(t, "the brokers to notice", func() bool { return !nodes[0].b.Up() && !nodes[1].b.Up() })
	start := time.Now()
	if _, err := nodes[0].svc.SetDisabled(bg, "vic", true); err != nil {
		t.Fatal(err)
	}
	c.waitUntil("close 4003", func(_ []frame, closed bool, _ int) bool { return closed })
	if code := c.closeCode(); code != 4003 {
		t.Fatalf("closed with %d, want 4003", code)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("closed after %v with NATS down, want within 1s (change feed)", d)
	}
}

// Ensure the members of a node that dies without a goodbye leave after
// the presence TTL: a "ghost" node announces a member over NATS and then
// falls silent; the live nodes announce its join, and its leave once its
// roster expires (cluster.presence_ttl, 2 s here).
func TestClusterDeadNodeLeaves(t *testing.T) {
	ns := natstest.Start(t, -1)
	nodes := newCluster(t, 2, natstest.URL(ns))
	obs := nodes[0].dial(t, "obs", nodes[0].token(t, "obs"))
	obs.join("g")
	nc, err := nats.Connect(natstest.URL(ns))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	data, _ := json.Marshal(cluster.Roster{Node: "ghost", Inc: 1, Seq: 1, Full: true,
		Entries: []cluster.Entry{{Room: "g", User: "casper", Conns: 1}, {User: "casper", Conns: 1}}})
	if err := nc.Publish(cluster.DefaultName+".roster", data); err != nil {
		t.Fatal(err)
	}
	events := func(fs []frame) []string {
		var ev []string
		for _, f := range fs {
			if f.Type == "presence" && f.User == "casper" {
				ev = append(ev, f.Event)
			}
		}
		return ev
	}
	obs.waitUntil("casper's join", func(fs []frame, _ bool, _ int) bool { return len(events(fs)) == 1 })
	start := time.Now()
	obs.waitUntil("casper's leave", func(fs []frame, _ bool, _ int) bool { return len(events(fs)) == 2 })
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("a dead node's member left after %v, want about the presence TTL (2s)", d)
	}
	obs.mu.Lock()
	ev := events(obs.frames)
	obs.mu.Unlock()
	if !slices.Equal(ev, []string{"join", "leave"}) {
		t.Fatalf("presence of a dead node's member: %v", ev)
	}
}

// Ensure typing and read echoes cross nodes (SPEC §8 as on one node): alice
// types on node 1, bob on node 2 gets typing and alice's own tab on node 2
// does not; alice reads on node 1, and her tabs on node 2 (one in the
// room, one that joined nothing) get the read frame, bob does not, and the
// directory on node 2 shows the room read.
func TestClusterTypingRead(t *testing.T) {
	ns := natstest.Start(t, -1)
	nodes := newCluster(t, 2, natstest.URL(ns))
	aliceTok := nodes[0].token(t, "alice")
	a1 := nodes[0].dial(t, "alice", aliceTok)
	a2 := nodes[1].dial(t, "alice", aliceTok)
	a3 := nodes[1].dial(t, "alice", aliceTok) // joins nothing
	bob := nodes[1].dial(t, "bob", nodes[1].token(t, "bob"))
	for _, c := range []*wsClient{a1, a2, bob} {
		c.join("ty")
	}
	typing := func(fs []frame) []frame {
		var out []frame
		for _, f := range fs {
			if f.Type == "typing" {
				out = append(out, f)
			}
		}
		return out
	}
	a1.send(map[string]any{"type": "typing", "room": "ty"})
	bob.waitUntil("alice typing", func(fs []frame, _ bool, _ int) bool { return len(typing(fs)) > 0 })
	if got := bob.of("typing"); len(got) != 1 || got[0].User != "alice" || got[0].Room != "ty" {
		t.Fatalf("bob on node2 got %+v, want one typing of alice in ty", got)
	}
	// Node 2 relayed to bob and to alice's tab there in one go: by now a
	// frame for a2 would be queued before its pong.
	a2.barrier("typing")
	if got := a2.of("typing"); len(got) != 0 {
		t.Fatalf("alice's own tab on node2 got %+v: typing echoed to the typist", got)
	}

	for i := range 3 {
		bob.send(map[string]any{"type": "send", "room": "ty", "text": fmt.Sprint("m", i), "ref": fmt.Sprint(i)})
	}
	a1.waitUntil("bob's 3 messages", func(fs []frame, _ bool, _ int) bool {
		return count(fs, func(f frame) bool { return f.Type == "message" }) == 3
	})
	waitCond(t, "node1 to count alice's tabs on node2", func() bool {
		total, _ := nodes[0].b.View().Conns("alice")
		return total == 3
	})
	a2.send(map[string]any{"type": "rooms", "ref": "before"})
	a2.waitUntil("rooms before", func(fs []frame, _ bool, _ int) bool {
		return count(fs, func(f frame) bool { return f.Type == "rooms" && f.Ref == "before" }) > 0
	})
	if rs := a2.of("rooms")[0].Rooms; len(rs) != 1 || rs[0].Unread != 3 {
		t.Fatalf("directory before the read: %+v, want ty with 3 unread", rs)
	}

	a1.send(map[string]any{"type": "read", "room": "ty", "id": 3, "ref": "rd"})
	a1.waitUntil("read ack", func(fs []frame, _ bool, _ int) bool {
		return count(fs, func(f frame) bool { return f.Type == "ack" && f.Ref == "rd" }) > 0
	})
	for _, c := range []*wsClient{a2, a3} {
		c.waitUntil("the read echo", func(fs []frame, _ bool, _ int) bool {
			return count(fs, func(f frame) bool { return f.Type == "read" }) > 0
		})
		if got := c.of("read"); len(got) != 1 || got[0].Room != "ty" || got[0].ID != 3 {
			t.Fatalf("alice's tab on node2 got %+v, want one read of ty at 3", got)
		}
	}
	bob.barrier("read")
	if got := bob.of("read"); len(got) != 0 {
		t.Fatalf("bob got alice's read echo: %+v", got)
	}
	if got := a1.of("read"); len(got) != 0 {
		t.Fatalf("the reading tab got its own echo: %+v", got)
	}
	a2.send(map[string]any{"type": "rooms", "ref": "after"})
	a2.waitUntil("rooms after", func(fs []frame, _ bool, _ int) bool {
		return count(fs, func(f frame) bool { return f.Type == "rooms" && f.Ref == "after" }) > 0
	})
	if rs := a2.of("rooms")[1].Rooms; len(rs) != 1 || rs[0].Unread != 0 {
		t.Fatalf("directory after the read: %+v, want ty with 0 unread", rs)
	}
}
