package bench_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/chatctl/chatctl/admin"
	"github.com/chatctl/chatctl/api"
	"github.com/chatctl/chatctl/bench"
	"github.com/chatctl/chatctl/cluster"
	"github.com/chatctl/chatctl/configs"
	"github.com/chatctl/chatctl/internal/natstest"
	"github.com/chatctl/chatctl/internal/pgtest"
	"github.com/chatctl/chatctl/store"
	"github.com/chatctl/chatctl/store/pg"
)

// node is one chatctl server of a test cluster, wired as `chatctl serve`
// wires one from the exported parts: its own PostgreSQL handle, admin
// service, hub and NATS broker, on the shared database.
type node struct {
	svc *admin.Service
	srv *api.Server
	ts  *httptest.Server
}

func newNode(t *testing.T, name, dbURL, natsURL string) *node {
	t.Helper()
	cfg := configs.Default()
	cfg.DB = t.TempDir() + "/unused.db"
	cfg.Password.BcryptCost = bcrypt.MinCost
	cfg.Store, cfg.Broker, cfg.Cluster.NodeID = dbURL, natsURL, name
	db, err := pg.Open(context.Background(), dbURL, pg.Options{Access: store.Create})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := admin.New(db, cfg, nil)
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	srv := api.NewServer(slog.New(slog.DiscardHandler), cfg, svc, api.Options{})
	b, err := cluster.NewNATS(cluster.Options{URL: natsURL, Node: name, Heartbeat: 200 * time.Millisecond,
		PresenceTTL: 2 * time.Second, RosterWait: 50 * time.Millisecond, ReconnectWait: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.JoinCluster(b); err != nil {
		t.Fatal(err)
	}
	n := &node{svc: svc, srv: srv, ts: httptest.NewServer(srv)}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		srv.Hub().Run(ctx)
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

// metric returns the value of the unlabelled series name in n's /metrics.
func (n *node) metric(t *testing.T, name string) float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	n.srv.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	sc := bufio.NewScanner(rec.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", sc.Text(), err)
			}
			return f
		}
	}
	t.Fatalf("no %s in /metrics", name)
	return 0
}

// Ensure RunFanout spreads its members over two nodes of a real cluster
// (PostgreSQL and an in-process nats-server) so that every room has
// members and publishers on both, and that every member, on either node,
// gets every message once and in order: the cross-node path loses nothing.
func TestRunFanoutCluster(t *testing.T) {
	dbURL := pgtest.URL(t)
	ns := natstest.Start(t, -1)
	a := newNode(t, "a", dbURL, ns.ClientURL())
	b := newNode(t, "b", dbURL, ns.ClientURL())

	ctx := context.Background()
	creds := &bench.StaticUsers{URL: a.ts.URL}
	for i := range 3 {
		name := fmt.Sprintf("u%d", i)
		if _, err := a.svc.AddUser(ctx, admin.AddUserRequest{Name: name, Password: "password123"}); err != nil {
			t.Fatal(err)
		}
		// Tokens issued through node a verify on node b: one store.
		tok, err := a.svc.IssueToken(ctx, name, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		creds.Creds = append(creds.Creds, bench.Cred{Username: name, Token: tok.AccessToken})
	}
	r, err := bench.RunFanout(ctx, bench.FanoutOptions{
		Nodes: []bench.Target{{URL: a.ts.URL}, {URL: b.ts.URL}}, Creds: creds,
		Members: 40, Rooms: 2, Rate: 60, Duration: time.Second, Drain: 20 * time.Second, ConnectRate: 2000})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Nodes) != 2 || r.Nodes[0].Members != 20 || r.Nodes[1].Members != 20 ||
		r.Nodes[0].Publishers == 0 || r.Nodes[1].Publishers == 0 {
		t.Fatalf("members not on both nodes: %+v (setup failures %v)", r.Nodes, r.SetupFailures)
	}
	rd := r.Rounds[0]
	// Not rd.Held: a loaded machine may make the bench miss its pace,
	// which is not what this test checks.
	if rd.Sent == 0 || rd.Acked != rd.Sent || rd.Delivered != rd.Expected || rd.Expected != rd.Sent*20 {
		t.Fatalf("not everything delivered: sent %d acked %d delivered %d of %d (%s)",
			rd.Sent, rd.Acked, rd.Delivered, rd.Expected, rd.Reason)
	}
	if rd.Lost+rd.Extra+rd.OutOfOrder+rd.Gaps+rd.Unacked != 0 || rd.MembersClosed != 0 || len(rd.Errors) != 0 {
		t.Fatalf("lost %d extra %d out of order %d gaps %d unacked %d closed %d errors %v",
			rd.Lost, rd.Extra, rd.OutOfOrder, rd.Gaps, rd.Unacked, rd.MembersClosed, rd.Errors)
	}
	for _, n := range rd.Nodes {
		if n.Delivered == 0 || n.Lost != 0 || n.Delivered != n.Expected {
			t.Fatalf("node %d: delivered %d of %d", n.Node, n.Delivered, n.Expected)
		}
	}
	if rd.CrossNode == nil || rd.CrossNode.Count == 0 || rd.SameNode.Count == 0 {
		t.Fatalf("no cross-node deliveries: cross %+v same %+v", rd.CrossNode, rd.SameNode)
	}
	// Each node received the other's messages from the broker.
	for name, n := range map[string]*node{"a": a, "b": b} {
		if got := n.metric(t, "chatctl_cluster_messages_received_total"); got == 0 {
			t.Fatalf("node %s received no message from the other node", name)
		}
	}
}
