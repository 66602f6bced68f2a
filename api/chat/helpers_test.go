package chat

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// waitTimeout bounds every wait in these tests; nothing should come close.
const waitTimeout = 5 * time.Second

// harness is a Hub behind a real HTTP server, as the api package wires it,
// with an in-memory store and a fake authenticator.
type harness struct {
	t     testing.TB
	hub   *Hub
	store *memStore
	auth  *fakeAuth
	srv   *httptest.Server
}

// testUpgrader is what the HTTP layer should use: small buffers and a
// shared write buffer pool keep idle connections cheap.
var testUpgrader = websocket.Upgrader{
	ReadBufferSize:  512,
	WriteBufferSize: 1024,
	WriteBufferPool: &sync.Pool{},
}

type harnessOpt func(*httptest.Server)

// withSmallSendBuffers shrinks the kernel send buffer of accepted
// connections, so a client that does not read backs up within a few KiB.
func withSmallSendBuffers(srv *httptest.Server) {
	ln := srv.Listener
	srv.Listener = smallBufListener{ln}
}

type smallBufListener struct{ net.Listener }

func (l smallBufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4096)
	}
	return c, err
}

// withTLS serves the harness over HTTPS (wss://), HTTP/1.1 only, as chatctl
// serve does with tls.* set.
func withTLS(srv *httptest.Server) {
	srv.TLS = &tls.Config{NextProtos: []string{"http/1.1"}}
}

// clientTLS is a client TLS config that trusts the harness's certificate.
func (h *harness) clientTLS() *tls.Config {
	return h.srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
}

// newHarness starts a hub with cfg and a server for it; cleanup shuts both
// down and fails the test if the hub does not stop.
func newHarness(t testing.TB, cfg Config, opts ...harnessOpt) *harness {
	t.Helper()
	h := &harness{t: t, store: newMemStore(), auth: &fakeAuth{tokens: map[string]Identity{}}}
	h.hub = NewHub(h.store, h.auth, cfg, nil)
	// The test server trusts ?user= and ?exp=; the real one verifies a JWT.
	h.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := Identity{User: r.URL.Query().Get("user"), Admin: r.URL.Query().Get("admin") == "1"}
		if s := r.URL.Query().Get("exp"); s != "" {
			id.Expires, _ = time.Parse(time.RFC3339Nano, s)
		}
		conn, err := testUpgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		h.hub.Serve(conn, id)
	}))
	for _, o := range opts {
		o(h.srv)
	}
	if h.srv.TLS != nil {
		h.srv.StartTLS()
	} else {
		h.srv.Start()
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { h.hub.Run(ctx); close(ran) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-ran:
		case <-time.After(2 * waitTimeout):
			t.Error("Hub.Run did not return after cancel")
		}
		h.srv.Close()
	})
	return h
}

// wsClient is a test client on a real WebSocket connection.
type wsClient struct {
	t    testing.TB
	conn *websocket.Conn
}

// srvFrame holds any server frame.
type srvFrame struct {
	Type     string        `json:"type"`
	Ref      string        `json:"ref"`
	Room     string        `json:"room"`
	ID       uint64        `json:"id"`
	From     string        `json:"from"`
	Text     string        `json:"text"`
	TS       string        `json:"ts"`
	Members  []string      `json:"members"`
	Messages []wireMessage `json:"messages"`
	More     bool          `json:"more"`
	Epoch    *string       `json:"epoch"`
	Reset    bool          `json:"reset"`
	User     string        `json:"user"`
	Event    string        `json:"event"`
	Code     string        `json:"code"`
	Detail   string        `json:"detail"`
	Reason   string        `json:"reason"`
	Read     *uint64       `json:"read"`
	Unread   int           `json:"unread"`
	Rooms    []RoomEntry   `json:"rooms"`
}

// dial connects as user; exp, when not zero, is the token expiry.
func (h *harness) dial(user string, exp time.Time) *wsClient {
	h.t.Helper()
	c, err := h.tryDial(websocket.DefaultDialer, user, exp)
	if err != nil {
		h.t.Fatalf("dial %s: %v", user, err)
	}
	return c
}

func (h *harness) tryDial(d *websocket.Dialer, user string, exp time.Time) (*wsClient, error) {
	q := url.Values{"user": {user}}
	if !exp.IsZero() {
		q.Set("exp", exp.Format(time.RFC3339Nano))
	}
	u := "ws" + strings.TrimPrefix(h.srv.URL, "http") + "/ws?" + q.Encode()
	if h.srv.TLS != nil { // wss://, trusting the test server's certificate
		dd := *d
		dd.TLSClientConfig = h.clientTLS()
		d = &dd
	}
	conn, _, err := d.Dial(u, nil)
	if err != nil {
		return nil, err
	}
	c := &wsClient{t: h.t, conn: conn}
	h.t.Cleanup(func() { conn.Close() })
	return c, nil
}

// join dials user and joins room, returning the client and its joined frame.
func (h *harness) join(user, room string) (*wsClient, srvFrame) {
	h.t.Helper()
	c := h.dial(user, time.Time{})
	c.send(map[string]any{"type": "join", "room": room})
	return c, c.expect("joined")
}

func (c *wsClient) send(v any) {
	c.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(b)
}

func (c *wsClient) sendRaw(b []byte) {
	c.t.Helper()
	_ = c.conn.SetWriteDeadline(time.Now().Add(waitTimeout))
	if err := c.conn.WriteMessage(websocket.TextMessage, b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// next reads one frame, failing the test on error or after waitTimeout.
func (c *wsClient) next() srvFrame {
	c.t.Helper()
	f, err := c.tryNext(waitTimeout)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return f
}

func (c *wsClient) tryNext(d time.Duration) (srvFrame, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(d))
	_, b, err := c.conn.ReadMessage()
	if err != nil {
		return srvFrame{}, err
	}
	var f srvFrame
	if err := json.Unmarshal(b, &f); err != nil {
		return srvFrame{}, err
	}
	return f, nil
}

// expect reads one frame and checks its type.
func (c *wsClient) expect(typ string) srvFrame {
	c.t.Helper()
	f := c.next()
	if f.Type != typ {
		c.t.Fatalf("got %+v, want type %q", f, typ)
	}
	return f
}

// expectError reads one frame and checks it is an error with code and ref.
func (c *wsClient) expectError(code, ref string) srvFrame {
	c.t.Helper()
	f := c.expect("error")
	if f.Code != code || f.Ref != ref {
		c.t.Fatalf("got error %+v, want code %q ref %q", f, code, ref)
	}
	return f
}

// skipUntil reads frames until one has type typ, skipping others.
func (c *wsClient) skipUntil(typ string) srvFrame {
	c.t.Helper()
	for {
		if f := c.next(); f.Type == typ {
			return f
		}
	}
}

// expectClose reads until the connection ends and checks the close code.
// Each read may take waitTimeout: a backlog may come before the close.
func (c *wsClient) expectClose(code int) {
	c.t.Helper()
	for {
		_ = c.conn.SetReadDeadline(time.Now().Add(waitTimeout))
		_, _, err := c.conn.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != code {
			c.t.Fatalf("connection ended with %v, want close %d", err, code)
		}
		c.conn.Close() // as a browser does once the close handshake is over
		return
	}
}

// ping round-trips a protocol ping: proof that the connection is up and
// that everything sent before it was handled.
func (c *wsClient) ping() {
	c.t.Helper()
	c.send(map[string]any{"type": "ping", "ref": "p"})
	if f := c.expect("pong"); f.Ref != "p" {
		c.t.Fatalf("pong ref %q", f.Ref)
	}
}

// eventually waits until cond holds, checking on a ticker, and fails the
// test after waitTimeout.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(waitTimeout)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}
