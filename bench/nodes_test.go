package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

// Ensure --url and --ws-url lists become one Target per node, and bad
// input gets one line naming the element at fault.
func TestParseTargets(t *testing.T) {
	tests := []struct {
		name, urls, ws string
		want           []Target // URL and WSURL; Origin is always "o"
		wantErr        string
	}{
		{"One", "http://a:1", "", []Target{{URL: "http://a:1"}}, ""},
		{"Two", "http://a:1,https://b:2/", "", []Target{{URL: "http://a:1"}, {URL: "https://b:2/"}}, ""},
		{"Spaces", " http://a:1 , http://b:2", "", []Target{{URL: "http://a:1"}, {URL: "http://b:2"}}, ""},
		{"WSPerNode", "http://a:1,http://b:2", "ws://x:1,wss://y:2", []Target{{URL: "http://a:1", WSURL: "ws://x:1"}, {URL: "http://b:2", WSURL: "wss://y:2"}}, ""},
		{"ErrEmpty", "", "", nil, "--url is empty"},
		{"ErrEmptyElement", "http://a:1,,http://b:2", "", nil, `element 2 of 3 is empty`},
		{"ErrTrailingComma", "http://a:1,", "", nil, `--url "http://a:1,": element 2 of 2 is empty`},
		{"ErrScheme", "http://a:1,ftp://b", "", nil, `--url: bad url "ftp://b"`},
		{"ErrNoHost", "http://a:1,http://", "", nil, `bad url "http://"`},
		{"ErrTwice", "http://a:1,http://b:2,http://a:1/", "", nil, "lists the node http://a:1 twice (elements 1 and 3)"},
		{"ErrWSCount", "http://a:1,http://b:2", "ws://x:1", nil, "--ws-url lists 1 URLs but --url 2"},
		{"ErrWSScheme", "http://a:1,http://b:2", "ws://x:1,http://y:2", nil, `--ws-url: bad ws url "http://y:2"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseTargets(tt.urls, tt.ws, "o")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("err = %v, want one line containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || len(got) != len(tt.want) {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
			for i := range got {
				w := tt.want[i]
				w.Origin = "o"
				if got[i] != w {
					t.Fatalf("node %d = %+v, want %+v", i, got[i], w)
				}
			}
		})
	}
}

// Ensure members go round-robin over the nodes in every room: each room
// has members on every node (as evenly as can be), the nodes carry the
// same load, and the publishers (each room's first members) spread too.
func TestNodeOf(t *testing.T) {
	tests := []struct{ members, rooms, nodes, pubs int }{
		{1000, 1, 2, 64}, {1000, 1, 3, 63}, {30, 3, 2, 6}, {40, 4, 2, 4}, {40, 4, 4, 8}, {30, 3, 1, 3}, {12, 5, 3, 5},
	}
	for _, tt := range tests {
		perNode := make([]int, tt.nodes)
		perRoomNode := make([][]int, tt.rooms)
		pubsPerNode := make([]int, tt.nodes)
		for r := range perRoomNode {
			perRoomNode[r] = make([]int, tt.nodes)
		}
		for i := range tt.members {
			n := nodeOf(i, tt.rooms, tt.nodes)
			if n < 0 || n >= tt.nodes {
				t.Fatalf("%+v: member %d on node %d", tt, i, n)
			}
			perNode[n]++
			perRoomNode[i%tt.rooms][n]++
			if i < tt.pubs {
				pubsPerNode[n]++
			}
		}
		for r, counts := range perRoomNode {
			lo, hi := minMax(counts)
			if hi-lo > 1 {
				t.Fatalf("%+v: room %d members per node %v: not round-robin", tt, r, counts)
			}
		}
		if lo, hi := minMax(perNode); hi-lo > tt.rooms {
			t.Fatalf("%+v: members per node %v", tt, perNode)
		}
		if lo, hi := minMax(pubsPerNode); hi-lo > 1 {
			t.Fatalf("%+v: publishers per node %v", tt, pubsPerNode)
		}
	}
}

func minMax(v []int) (lo, hi int) {
	lo, hi = v[0], v[0]
	for _, x := range v {
		lo, hi = min(lo, x), max(hi, x)
	}
	return lo, hi
}

// Ensure a fanout over two nodes of one (fake, perfectly shared) cluster
// connects half the members and publishers through each, accounts every
// delivery to its node, splits same- and cross-node latency, and reports
// both nodes in text and JSON.
func TestRunFanoutNodes(t *testing.T) {
	s := newFakeServer(t, 4)
	second := s.another(t)
	nodes := []Target{{URL: s.URL}, {URL: second}}
	r, err := RunFanout(context.Background(), FanoutOptions{Nodes: nodes, Creds: s.creds(),
		Members: 30, Rooms: 3, Rate: 90, Duration: 400 * time.Millisecond, Drain: 2 * time.Second,
		ConnectRate: 5000, ServerPIDs: []int{os.Getpid()}})
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	h1, h2 := s.hosts[strings.TrimPrefix(s.URL, "http://")], s.hosts[strings.TrimPrefix(second, "http://")]
	s.mu.Unlock()
	// The pre-flight's upgrade is one more on each.
	if h1 != 16 || h2 != 16 {
		t.Fatalf("connections per node %d, %d; want 15 members + 1 pre-flight each", h1, h2)
	}
	if len(r.Nodes) != 2 || r.Nodes[0].Members != 15 || r.Nodes[1].Members != 15 ||
		r.Nodes[0].Publishers != 3 || r.Nodes[1].Publishers != 3 || r.Target != "ws"+strings.TrimPrefix(s.URL, "http")+"/ws,ws"+strings.TrimPrefix(second, "http")+"/ws" {
		t.Fatalf("nodes %+v target %q", r.Nodes, r.Target)
	}
	rd := r.Rounds[0]
	// Not rd.Held: on a loaded machine the bench may fall behind its pace,
	// which is not what this test is about.
	if rd.Sent == 0 || rd.Acked != rd.Sent || rd.Delivered != rd.Sent*10 || rd.Lost+rd.OutOfOrder+rd.Gaps != 0 || len(rd.Nodes) != 2 {
		t.Fatalf("round %+v", rd)
	}
	var sum, exp uint64
	for _, n := range rd.Nodes {
		if n.Delivered == 0 || n.Delivered != n.Expected || n.Lost != 0 || n.Latency.Count != n.Delivered {
			t.Fatalf("node %+v", n)
		}
		sum += n.Delivered
		exp += n.Expected
	}
	if sum != rd.Delivered || exp != rd.Expected {
		t.Fatalf("per-node deliveries %d of %d, round %d of %d", sum, exp, rd.Delivered, rd.Expected)
	}
	// Each room's 2 publishers are on different nodes and its 10 members
	// 5 and 5: every message reaches 5 members on each side.
	if rd.CrossNode == nil || rd.SameNode == nil || rd.CrossNode.Count == 0 || rd.SameNode.Count == 0 ||
		rd.CrossNode.Count+rd.SameNode.Count != rd.Delivered {
		t.Fatalf("cross %+v same %+v of %d", rd.CrossNode, rd.SameNode, rd.Delivered)
	}
	if len(rd.ServerCPU) != 1 || rd.ServerCPU[0].PID != os.Getpid() || rd.ServerCPU[0].CPU < 0 {
		t.Fatalf("server cpu %+v", rd.ServerCPU)
	}
	var out bytes.Buffer
	r.WriteText(&out)
	for _, want := range []string{"round-robin over 2 nodes", "node 1  ws://", "node 2  ws://", "15 members, 3 publishing",
		"publisher on another node", "server cpu r0: pid "} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("text report lacks %q:\n%s", want, out.String())
		}
	}
}

// Ensure one node left out of a list fails the run by its URL, and raw
// mode refuses several nodes.
func TestRunFanoutNodesPreflight(t *testing.T) {
	s := newFakeServer(t, 1)
	down := closedURL(t)
	_, err := RunFanout(context.Background(), FanoutOptions{Nodes: []Target{{URL: s.URL}, {URL: down}},
		Creds: s.creds(), Members: 2, Rate: 10, ConnectRate: 5000})
	if err == nil || !strings.Contains(err.Error(), "connection refused at "+down) {
		t.Fatalf("err = %v, want the down node named", err)
	}
	_, err = RunFanout(context.Background(), FanoutOptions{Nodes: []Target{{URL: s.URL}, {URL: s.another(t)}}, Raw: true})
	if err == nil || !strings.Contains(err.Error(), "raw mode takes one URL") {
		t.Fatalf("err = %v", err)
	}
}

// Ensure readCPU reads a process's CPU time and sees it grow.
func TestReadCPU(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	before, err := readCPU([]int{os.Getpid()})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	x := 0
	for {
		for i := range 1_000_000 {
			x += i
		}
		now, err := readCPU([]int{os.Getpid()})
		if err != nil {
			t.Fatal(err)
		}
		if now[0] > before[0] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cpu time stuck at %v (%d)", now[0], x)
		}
	}
	if _, err := readCPU([]int{1 << 30}); err == nil || !strings.Contains(err.Error(), "pid 1073741824") {
		t.Fatalf("err = %v", err)
	}
}

// Ensure a run against one URL reports as before: no per-node fields in
// its JSON, the one endpoint as target; and that a run over two nodes
// has them.
func TestRunFanoutNodesJSON(t *testing.T) {
	s := newFakeServer(t, 1)
	one, err := RunFanout(context.Background(), FanoutOptions{Target: Target{URL: s.URL}, Creds: s.creds(),
		Members: 4, Rate: 20, Duration: 200 * time.Millisecond, ConnectRate: 5000})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(one)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"nodes"`, `"cross_node_latency"`, `"same_node_latency"`, `"server_cpu"`, `"cpu_per_message_ns"`} {
		if strings.Contains(string(b), key) {
			t.Fatalf("one URL's JSON has %s: %s", key, b)
		}
	}
	if one.Target != "ws"+strings.TrimPrefix(s.URL, "http")+"/ws" {
		t.Fatalf("target %q", one.Target)
	}
	two, err := RunFanout(context.Background(), FanoutOptions{Nodes: []Target{{URL: s.URL}, {URL: s.another(t)}},
		Creds: s.creds(), Members: 4, Rate: 20, Duration: 200 * time.Millisecond, ConnectRate: 5000})
	if err != nil {
		t.Fatal(err)
	}
	if b, err = json.Marshal(two); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"nodes":[{"node":1,`, `"cross_node_latency":{`, `"same_node_latency":{`} {
		if !strings.Contains(string(b), key) {
			t.Fatalf("two nodes' JSON lacks %s: %s", key, b)
		}
	}
}
