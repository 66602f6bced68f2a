package bench

import (
	"bytes"
	"context"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// Ensure RunConns opens, holds and closes authenticated connections and
// measures the server's memory when given its pid.
func TestRunConns(t *testing.T) {
	s := newFakeServer(t, 4)
	var progress bytes.Buffer
	r, err := RunConns(context.Background(), ConnsOptions{Target: Target{URL: s.URL}, Creds: s.creds(),
		N: 40, Rate: 2000, Hold: 200 * time.Millisecond, ServerPID: os.Getpid(),
		Progress: &progress, ProgressInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if r.Opened != 40 || r.Failed != 0 || r.OpenAtEnd != 40 || len(r.Closed) != 0 || r.ConnectRate <= 0 {
		t.Fatalf("unexpected result %+v", r)
	}
	if r.Handshake.Count != 40 || r.RSSBefore == 0 || r.RSSAfter == 0 {
		t.Fatalf("missing handshake or rss figures: %+v", r)
	}
	var out bytes.Buffer
	r.WriteText(&out)
	if !strings.Contains(out.String(), "per connection") || !strings.Contains(progress.String(), "open") {
		t.Fatalf("summary %q, progress %q", out.String(), progress.String())
	}
}

// Ensure connections beyond the server's per-user cap show up as 4029
// closes, and too few users is an error before anything is dialled.
func TestRunConnsPerUserCap(t *testing.T) {
	s := newFakeServer(t, 1)
	r, err := RunConns(context.Background(), ConnsOptions{Target: Target{URL: s.URL}, Creds: s.creds(),
		MaxConnsPerUser: 20, N: 20, Rate: 1000, Hold: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if r.Closed["close_4029"] != 4 || r.OpenAtEnd != 16 {
		t.Fatalf("want 4 closes with 4029 and 16 open, got %+v", r)
	}
	if _, err := RunConns(context.Background(), ConnsOptions{Target: Target{URL: s.URL}, Creds: s.creds(), N: 17}); err == nil {
		t.Fatal("17 connections over one user should need a second user")
	}
}

// Ensure source addresses are spread only for a loopback target past the
// per-address port budget.
func TestSourceAddrs(t *testing.T) {
	tests := []struct {
		host string
		n    int
		want int
	}{
		{"127.0.0.1", 1000, 0},
		{"127.0.0.1", 28001, 2},
		{"localhost", 60000, 3},
		{"10.0.0.1", 60000, 0},
		{"::1", 60000, 0},
	}
	for _, tt := range tests {
		got := sourceAddrs(tt.host, tt.n, 28000)
		if len(got) != tt.want {
			t.Errorf("sourceAddrs(%s, %d) = %v, want %d addresses", tt.host, tt.n, got, tt.want)
		}
		for i, ip := range got {
			if !ip.Equal(net.IPv4(127, 0, 0, byte(i+1))) {
				t.Errorf("address %d = %v", i, ip)
			}
		}
	}
}
