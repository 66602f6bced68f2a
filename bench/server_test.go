package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"
)

// fakeServer implements just enough of SPEC §5 and §6 for the runners'
// end-to-end tests: /users/me, /token, and /ws with join, send, message,
// ack, presence, the per-connection send limit and the per-user cap. The
// real api package will replace it.
type fakeServer struct {
	*httptest.Server
	sendRate  rate.Limit
	sendBurst int
	perUser   int

	mu    sync.Mutex           // guards the fields below
	users map[string]string    // username → password
	conns map[string]int       // username → open WebSocket connections
	rooms map[string]*fakeRoom // by name
	joins int                  // join requests, over all connections
	hold  bool                 // broadcasts wait in held until release
	held  []heldMessage
	mute  bool           // sends are swallowed: neither acked nor delivered
	hosts map[string]int // Host header → WebSocket connections opened through it
	evict bool           // a send closes every other member of its room with 4008, as for slow consumers
}

// heldMessage is a broadcast the fake holds back (see release).
type heldMessage struct {
	room *fakeRoom
	msg  []byte
}

// release sends the held broadcasts, in order, and stops holding.
func (s *fakeServer) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, h := range s.held {
		for m := range h.room.members {
			m.trySend(h.msg)
		}
	}
	s.hold, s.held = false, nil
}

// fakeRoom is one chat room: its members and last message id.
type fakeRoom struct {
	members map[*fakeConn]bool
	lastID  int64
}

// fakeConn is one WebSocket client with gorilla's write-pump shape.
type fakeConn struct {
	ws   *websocket.Conn
	send chan []byte
	user string
}

// tokenFor is the fake's token scheme: opaque, derived from the name.
func tokenFor(user string) string { return "tok-" + user }

// newFakeServer starts a fake server with users u0..u{n-1} (password "pw").
func newFakeServer(t *testing.T, nUsers int) *fakeServer {
	t.Helper()
	s := &fakeServer{sendRate: 20, sendBurst: 40, perUser: DefaultMaxConnsPerUser,
		users: map[string]string{}, conns: map[string]int{}, rooms: map[string]*fakeRoom{}, hosts: map[string]int{}}
	for i := 0; i < nUsers; i++ {
		s.users[fmt.Sprintf("u%d", i)] = "pw"
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /users/me", func(w http.ResponseWriter, r *http.Request) {
		user, ok := s.auth(r)
		if !ok {
			unauthorized(w)
			return
		}
		writeJSON(w, 200, map[string]string{"username": user, "message": "You are authenticated!", "role": "user"})
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		user, pw := r.PostFormValue("username"), r.PostFormValue("password")
		s.mu.Lock()
		want, ok := s.users[user]
		s.mu.Unlock()
		if !ok || want != pw {
			w.Header().Set("WWW-Authenticate", "Bearer")
			writeJSON(w, 401, map[string]string{"detail": "Incorrect username or password"})
			return
		}
		writeJSON(w, 200, map[string]any{"access_token": tokenFor(user), "token_type": "bearer"})
	})
	mux.HandleFunc("GET /ws", s.serveWS)
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

// another returns the URL of one more listener serving the same state:
// a second node of a perfectly shared cluster.
func (s *fakeServer) another(t *testing.T) string {
	t.Helper()
	ts := httptest.NewServer(s.Config.Handler)
	t.Cleanup(ts.Close)
	return ts.URL
}

// creds returns a StaticUsers over all of the fake's users.
func (s *fakeServer) creds() *StaticUsers {
	p := &StaticUsers{URL: s.URL}
	for i := 0; i < len(s.users); i++ {
		p.Creds = append(p.Creds, Cred{Username: fmt.Sprintf("u%d", i), Token: tokenFor(fmt.Sprintf("u%d", i))})
	}
	return p
}

// auth returns the user named by a valid bearer token.
func (s *fakeServer) auth(r *http.Request) (string, bool) {
	user, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer tok-")
	if !ok {
		return "", false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok = s.users[user]
	return user, ok
}

func unauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", "Bearer")
	writeJSON(w, 401, map[string]string{"detail": "Could not validate credentials"})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// upgrader keeps gorilla's default same-origin check, as the real server.
var upgrader = websocket.Upgrader{}

// serveWS authenticates before the upgrade, then runs the two pumps.
func (s *fakeServer) serveWS(w http.ResponseWriter, r *http.Request) {
	user, ok := s.auth(r)
	if !ok {
		unauthorized(w)
		return
	}
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // gorilla has answered (403 for a foreign origin)
	}
	s.mu.Lock()
	s.conns[user]++
	s.hosts[r.Host]++
	over := s.conns[user] > s.perUser
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.conns[user]--
		s.mu.Unlock()
	}()
	if over {
		ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4029, "too many connections"), time.Now().Add(time.Second))
		ws.Close()
		return
	}
	c := &fakeConn{ws: ws, send: make(chan []byte, 256), user: user}
	go func() {
		for m := range c.send {
			if m == nil { // see evict
				ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4008, "too slow"), time.Now().Add(time.Second))
				break
			}
			ws.WriteMessage(websocket.TextMessage, m)
		}
		ws.Close()
	}()
	s.readPump(c)
}

// readPump handles client frames until the connection ends.
func (s *fakeServer) readPump(c *fakeConn) {
	lim := rate.NewLimiter(s.sendRate, s.sendBurst)
	defer func() {
		s.mu.Lock()
		for _, rm := range s.rooms {
			delete(rm.members, c)
		}
		s.mu.Unlock()
		close(c.send)
	}()
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		var in struct{ Type, Room, Text, Ref string }
		if json.Unmarshal(data, &in) != nil {
			c.reply(map[string]any{"type": "error", "code": "bad_request"})
			continue
		}
		switch in.Type {
		case "join":
			s.mu.Lock()
			rm := s.rooms[in.Room]
			if rm == nil {
				rm = &fakeRoom{members: map[*fakeConn]bool{}}
				s.rooms[in.Room] = rm
			}
			for m := range rm.members {
				m.reply(map[string]any{"type": "presence", "room": in.Room, "user": c.user, "event": "join"})
			}
			rm.members[c] = true
			s.joins++
			c.reply(map[string]any{"type": "joined", "room": in.Room, "members": []string{c.user}, "messages": []any{}})
			s.mu.Unlock()
		case "send":
			s.mu.Lock()
			mute := s.mute
			s.mu.Unlock()
			if mute {
				continue
			}
			if !lim.Allow() {
				c.reply(map[string]any{"type": "error", "code": "rate_limited", "ref": in.Ref})
				continue
			}
			s.mu.Lock() // one lock for id and fan-out keeps ids in order per receiver
			rm := s.rooms[in.Room]
			if rm == nil || !rm.members[c] {
				s.mu.Unlock()
				c.reply(map[string]any{"type": "error", "code": "forbidden", "ref": in.Ref})
				continue
			}
			rm.lastID++
			msg, _ := json.Marshal(map[string]any{"type": "message", "room": in.Room, "id": rm.lastID,
				"from": c.user, "text": in.Text, "ts": time.Now().UTC().Format(time.RFC3339)})
			if s.evict {
				for m := range rm.members {
					if m != c {
						m.trySend(nil) // the writer closes with 4008
						delete(rm.members, m)
					}
				}
			}
			if s.hold {
				s.held = append(s.held, heldMessage{rm, msg})
			} else {
				for m := range rm.members {
					m.trySend(msg)
				}
			}
			c.reply(map[string]any{"type": "ack", "ref": in.Ref, "room": in.Room, "id": rm.lastID})
			s.mu.Unlock()
		}
	}
}

// reply queues a frame for c; callers may hold s.mu.
func (c *fakeConn) reply(v any) {
	b, _ := json.Marshal(v)
	c.trySend(b)
}

// trySend never blocks: a full queue drops the frame (the real server
// closes with 4008; dropping is enough to show up as loss in tests).
func (c *fakeConn) trySend(b []byte) {
	select {
	case c.send <- b:
	default:
	}
}

// newRawServer starts a copy of gorilla's examples/chat hub: no auth, no
// rooms, every text frame goes to every client, queued frames are joined
// by newlines into one.
func newRawServer(t *testing.T) *httptest.Server {
	t.Helper()
	var mu sync.Mutex
	clients := map[chan []byte]bool{}
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		ws, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		send := make(chan []byte, 256)
		mu.Lock()
		clients[send] = true
		mu.Unlock()
		go func() {
			for m := range send {
				var buf bytes.Buffer
				buf.Write(m)
				for n := len(send); n > 0; n-- {
					buf.WriteByte('\n')
					buf.Write(<-send)
				}
				if ws.WriteMessage(websocket.TextMessage, buf.Bytes()) != nil {
					break
				}
			}
			ws.Close()
		}()
		for {
			_, msg, err := ws.ReadMessage()
			if err != nil {
				break
			}
			mu.Lock()
			for c := range clients {
				select {
				case c <- msg:
				default:
				}
			}
			mu.Unlock()
		}
		mu.Lock()
		delete(clients, send)
		close(send)
		mu.Unlock()
	})
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}
