package chat_test

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/chatctl/chatctl/api/chat"
	"github.com/gorilla/websocket"
)

// verifyRequest stands for the api package's token check (Authorization:
// Bearer or ?token=, never logged).
func verifyRequest(r *http.Request) (chat.Identity, bool) { return chat.Identity{}, false }

// This example shows how the HTTP layer wires the hub: authenticate and
// check Origin before the upgrade, upgrade with small buffers, hand over the
// connection, run the hub, and shut it down after the HTTP server.
func Example() {
	var store chat.Store        // *store.DB in chatctl
	var auth chat.Authenticator // wraps the JWT verifier and the user store
	hub := chat.NewHub(store, auth, chat.Config{}, slog.Default())

	upgrader := websocket.Upgrader{
		ReadBufferSize:   512,          // client frames are small; big ones are read in pieces
		WriteBufferSize:  1024,         // the hub frames its own messages; gorilla needs little
		WriteBufferPool:  &sync.Pool{}, // no write buffer held by idle connections
		CheckOrigin:      nil,          // same-origin only, or an allow-list from ws.allowed_origins
		HandshakeTimeout: 10 * time.Second,
	}
	ws := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := verifyRequest(r)
		if !ok { // refuse while we can still send HTTP
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("WWW-Authenticate", "Bearer")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"detail":"Could not validate credentials"}`))
			return
		}
		conn, err := upgrader.Upgrade(w, r, nil) // checks Origin; writes its own error
		if err != nil {
			return
		}
		hub.Serve(conn, id)
	})
	srv := &http.Server{Addr: "127.0.0.1:8000", Handler: ws}

	ctx, stop := context.WithCancel(context.Background())
	go hub.Run(ctx)
	go func() { _ = srv.ListenAndServe() }()

	// On SIGTERM: stop accepting, then close the WebSockets with 1001.
	// http.Server.Shutdown does not touch hijacked connections.
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdownCtx)
	_ = hub.Shutdown(shutdownCtx)
	stop()
}
