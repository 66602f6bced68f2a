package api

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/chatctl/chatctl/admin"
	"github.com/chatctl/chatctl/store"
)

// Ensure drain reports both kinds of failure at the shutdown deadline,
// and (under -race) that the HTTP servers' errors and the hub's are
// appended without a data race: an HTTP request that never finishes its
// body and a WebSocket peer that never answers the close frame both
// outlive http.shutdown_timeout.
func TestDrainDeadline(t *testing.T) {
	cfg := testConfig(t)
	cfg.HTTP.ShutdownTimeout = 200 * time.Millisecond
	db, err := store.Open(cfg.DB, store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := admin.New(db, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	if _, err := svc.AddUser(bg, admin.AddUserRequest{Name: "alice", Password: testPassword}); err != nil {
		t.Fatal(err)
	}
	it, err := svc.IssueToken(bg, "alice", 0)
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(slog.New(slog.NewTextHandler(io.Discard, nil)), cfg, svc, Options{})
	hubCtx, stopHub := context.WithCancel(context.Background())
	defer stopHub()
	hubDone := make(chan struct{})
	go func() {
		defer close(hubDone)
		srv.Hub().Run(hubCtx)
	}()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	public := &http.Server{Handler: srv}
	go public.Serve(ln)
	private := &http.Server{Handler: srv.SocketHandler()} // never started

	// A chat member that joins, then never reads again.
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+ln.Addr().String()+"/ws?token="+it.AccessToken, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := ws.WriteJSON(map[string]any{"type": "join", "room": "general"}); err != nil {
		t.Fatal(err)
	}
	for {
		var f map[string]any
		if err := ws.ReadJSON(&f); err != nil {
			t.Fatal(err)
		}
		if f["type"] == "joined" {
			break
		}
	}
	// A request whose body never arrives in full.
	slow, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	io.WriteString(slow, "POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nusername=")

	start := time.Now()
	err = drain(cfg, srv.log, public, private, srv, stopHub, hubDone)
	if err == nil {
		t.Fatal("drain = nil, want the deadline errors")
	}
	if msg := err.Error(); !strings.Contains(msg, "close chat connections") || !strings.Contains(msg, context.DeadlineExceeded.Error()) {
		t.Errorf("drain = %q, want the hub's and the HTTP server's deadline errors", msg)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("drain took %v with a %v deadline", d, cfg.HTTP.ShutdownTimeout)
	}
}
