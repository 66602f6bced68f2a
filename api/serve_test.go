package api

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/crypto/bcrypt"

	"github.com/chatctl/chatctl/admin"
	"github.com/chatctl/chatctl/configs"
	"github.com/chatctl/chatctl/store"
)

// Ensure Serve runs end to end: it calls Ready once it listens, answers
// /health, opens the admin socket (0600) that admin.Connect prefers while
// the store is held, and on cancel closes WebSockets with 1001, returns
// nil, removes the socket and releases the store.
func TestServe(t *testing.T) {
	cfg := configs.Default()
	cfg.DB = filepath.Join(socketDir(t), "c.db")
	cfg.Listen = "127.0.0.1:0"
	cfg.Password.BcryptCost = bcrypt.MinCost
	var logs logBuffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	var stdout bytes.Buffer

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan string, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- Serve(ctx, cfg, log, ServeOptions{Stdout: &stdout, Ready: func(addr string) { ready <- addr }})
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-errc:
		t.Fatalf("Serve returned before Ready: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("Serve never became ready")
	}
	base := "http://" + addr

	resp, err := http.Get(base + "/health")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != `{"status":"ok"}`+"\n" {
		t.Fatalf("/health = %d %s", resp.StatusCode, body)
	}

	fi, err := os.Stat(cfg.SocketPath())
	if err != nil {
		t.Fatalf("admin socket: %v", err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode = %v, want a socket with 0600", fi.Mode())
	}

	// The CLI's way in while the server holds the store.
	start := time.Now()
	a, err := admin.Connect(cfg)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	if _, ok := a.(*admin.Remote); !ok {
		t.Fatalf("Connect returned a %T, want *admin.Remote", a)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Connect took %v", d)
	}
	if _, err := a.AddUser(bg, admin.AddUserRequest{Name: "alice", Password: testPassword}); err != nil {
		t.Fatal(err)
	}
	it, err := a.IssueToken(bg, "alice", 0)
	if err != nil {
		t.Fatal(err)
	}
	a.Close()

	// A chat connection is told the server is going away.
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws?token="+it.AccessToken, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	closed := make(chan error, 1)
	go func() {
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				closed <- err
				return
			}
		}
	}()

	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("Serve = %v, want nil", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	select {
	case err := <-closed:
		if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
			t.Errorf("WebSocket ended with %v, want close 1001", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("the WebSocket was not closed")
	}
	if _, err := os.Stat(cfg.SocketPath()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file after Serve: %v", err)
	}
	db, err := store.Open(cfg.DB, store.Options{Timeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatalf("store after Serve: %v", err)
	}
	defer db.Close()
	if _, err := db.User("alice"); err != nil {
		t.Errorf("alice, added through the socket, is not in the store: %v", err)
	}
	if !strings.Contains(stdout.String(), addr) {
		t.Errorf("stdout = %q, want the address", stdout.String())
	}
}

// Ensure a second Serve on a store that a running server holds fails
// quickly with a message naming the running server.
func TestServeAlreadyRunning(t *testing.T) {
	cfg := configs.Default()
	cfg.DB = filepath.Join(socketDir(t), "c.db")
	cfg.Listen = "127.0.0.1:0"
	cfg.Password.BcryptCost = bcrypt.MinCost
	log := slog.New(slog.DiscardHandler)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	errc := make(chan error, 1)
	go func() { errc <- Serve(ctx, cfg, log, ServeOptions{Ready: func(a string) { ready <- a }}) }()
	defer func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("first Serve = %v", err)
		}
	}()
	select {
	case <-ready:
	case err := <-errc:
		t.Fatalf("Serve: %v", err)
	}
	start := time.Now()
	err := Serve(context.Background(), cfg, log, ServeOptions{})
	if err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("second Serve = %v, want already running", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("second Serve took %v", d)
	}
}
