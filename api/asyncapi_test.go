package api

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/chatctl/chatctl/api/chat"
)

// asyncAPIDoc is the part of /asyncapi.json the tests read.
type asyncAPIDoc struct {
	AsyncAPI string `json:"asyncapi"`
	Channels map[string]struct {
		Address    string                     `json:"address"`
		Messages   map[string]json.RawMessage `json:"messages"`
		CloseCodes []struct {
			Code   int    `json:"code"`
			Reason string `json:"reason"`
		} `json:"x-close-codes"`
	} `json:"channels"`
	Operations map[string]struct {
		Action   string      `json:"action"`
		Messages []asyncRef  `json:"messages"`
		Reply    *asyncReply `json:"reply"`
	} `json:"operations"`
	Components struct {
		Messages map[string]struct {
			Payload asyncRef `json:"payload"`
		} `json:"messages"`
		Schemas map[string]asyncSchema `json:"schemas"`
	} `json:"components"`
}

type asyncRef struct {
	Ref string `json:"$ref"`
}

type asyncReply struct {
	Messages []asyncRef `json:"messages"`
}

type asyncSchema struct {
	Type       string                 `json:"type"`
	Const      any                    `json:"const"`
	Enum       []string               `json:"enum"`
	Properties map[string]asyncSchema `json:"properties"`
}

// frameType resolves an operation's message reference
// (#/channels/chat/messages/KEY → components.messages.KEY → its payload
// schema) to the const of the payload's "type" property.
func (d *asyncAPIDoc) frameType(t *testing.T, ref string) string {
	t.Helper()
	key, ok := strings.CutPrefix(ref, "#/channels/chat/messages/")
	if !ok {
		t.Fatalf("message reference %q is not into channel chat", ref)
	}
	var cref asyncRef
	if err := json.Unmarshal(d.Channels["chat"].Messages[key], &cref); err != nil {
		t.Fatalf("channel message %q: %v", key, err)
	}
	mkey, ok := strings.CutPrefix(cref.Ref, "#/components/messages/")
	if !ok {
		t.Fatalf("channel message %q is %q, want a components.messages reference", key, cref.Ref)
	}
	msg, ok := d.Components.Messages[mkey]
	if !ok {
		t.Fatalf("components.messages has no %q", mkey)
	}
	skey, _ := strings.CutPrefix(msg.Payload.Ref, "#/components/schemas/")
	typ, _ := d.Components.Schemas[skey].Properties["type"].Const.(string)
	if typ == "" {
		t.Fatalf("message %q: payload %q has no type const", mkey, msg.Payload.Ref)
	}
	return typ
}

// Ensure /asyncapi.json is served, is AsyncAPI 3 for the /ws channel, and
// documents exactly the frame types the hub accepts (its dispatch table)
// and sends (the frames package chat builds), and exactly its error codes
// and close codes.
// A type added to the hub without documentation fails here.
func TestAsyncAPIFrameTypes(t *testing.T) {
	e := newEnv(t, nil)
	r := e.request(http.MethodGet, "/asyncapi.json", nil, nil)
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET /asyncapi.json = %d %q", r.status, r.header.Get("Content-Type"))
	}
	var doc asyncAPIDoc
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if !strings.HasPrefix(doc.AsyncAPI, "3.") {
		t.Errorf("asyncapi = %q, want 3.x", doc.AsyncAPI)
	}
	if doc.Channels["chat"].Address != "/ws" {
		t.Errorf("channel chat has address %q, want /ws", doc.Channels["chat"].Address)
	}

	accepts, sends := map[string]bool{}, map[string]bool{}
	for name, op := range doc.Operations {
		in := accepts // what the server receives
		if op.Action == "send" {
			in = sends
		} else if op.Action != "receive" {
			t.Errorf("operation %s: action %q", name, op.Action)
		}
		for _, m := range op.Messages {
			in[doc.frameType(t, m.Ref)] = true
		}
		if op.Reply != nil { // replies always go server to client
			for _, m := range op.Reply.Messages {
				sends[doc.frameType(t, m.Ref)] = true
			}
		}
	}
	keys := func(m map[string]bool) []string {
		out := make([]string, 0, len(m))
		for k := range m {
			out = append(out, k)
		}
		slices.Sort(out)
		return out
	}
	if got, want := keys(accepts), chat.ClientFrameTypes(); !slices.Equal(got, want) {
		t.Errorf("/asyncapi.json: the server receives %v; the hub accepts %v", got, want)
	}
	if got, want := keys(sends), chat.ServerFrameTypes(); !slices.Equal(got, want) {
		t.Errorf("/asyncapi.json: the server sends %v; the hub sends %v", got, want)
	}
	codes := slices.Sorted(slices.Values(doc.Components.Schemas["ErrorCode"].Enum))
	if want := chat.ErrorCodes(); !slices.Equal(codes, want) {
		t.Errorf("/asyncapi.json: error codes %v; the hub has %v", codes, want)
	}
	var closes []int
	for _, c := range doc.Channels["chat"].CloseCodes {
		closes = append(closes, c.Code)
	}
	slices.Sort(closes)
	if want := chat.CloseCodes(); !slices.Equal(closes, want) {
		t.Errorf("/asyncapi.json: x-close-codes %v; the hub closes with %v", closes, want)
	}
}

// Ensure the /docs page links to /asyncapi.json, and the link works.
func TestDocsLinksAsyncAPI(t *testing.T) {
	e := newEnv(t, nil)
	r := e.request(http.MethodGet, "/docs", nil, nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET /docs = %d", r.status)
	}
	if !strings.Contains(string(r.body), `<a href="/asyncapi.json">`) {
		t.Errorf("/docs has no link to /asyncapi.json")
	}
	if r := e.request(http.MethodGet, "/asyncapi.json", nil, nil); r.status != http.StatusOK {
		t.Errorf("GET /asyncapi.json = %d", r.status)
	}
}

// asyncSchemas maps each frame type of /asyncapi.json to its payload
// schema, for frames the server receives (client) and sends (server).
func asyncSchemas(t *testing.T, s *apiSpec) (client, server map[string]any) {
	t.Helper()
	client, server = map[string]any{}, map[string]any{}
	payload := func(ref string) (string, any) {
		chanMsg, err := s.resolve(ref)
		if err != nil {
			t.Fatal(err)
		}
		msg, err := s.deref(chanMsg.(map[string]any))
		if err != nil {
			t.Fatal(err)
		}
		sch, err := s.deref(msg["payload"].(map[string]any))
		if err != nil {
			t.Fatal(err)
		}
		typ := sch["properties"].(map[string]any)["type"].(map[string]any)["const"].(string)
		return typ, sch
	}
	refs := func(list any) []string {
		var out []string
		for _, m := range list.([]any) {
			out = append(out, m.(map[string]any)["$ref"].(string))
		}
		return out
	}
	for _, op := range s.root["operations"].(map[string]any) {
		op := op.(map[string]any)
		into := client
		if op["action"] == "send" {
			into = server
		}
		for _, ref := range refs(op["messages"]) {
			typ, sch := payload(ref)
			into[typ] = sch
		}
		if reply, ok := op["reply"].(map[string]any); ok {
			for _, ref := range refs(reply["messages"]) {
				typ, sch := payload(ref)
				server[typ] = sch
			}
		}
	}
	return client, server
}

// Ensure what the server really sends matches /asyncapi.json: a session
// that draws every server frame type, each frame checked against the
// payload schema of its type, with undocumented fields refused; and the
// document's own examples match its schemas.
func TestAsyncAPIFramesConform(t *testing.T) {
	s, err := newAPISpec(asyncAPI)
	if err != nil {
		t.Fatal(err)
	}
	clientSch, serverSch := asyncSchemas(t, s)

	// The examples of every message.
	for key, m := range s.root["components"].(map[string]any)["messages"].(map[string]any) {
		m := m.(map[string]any)
		sch, err := s.deref(m["payload"].(map[string]any))
		if err != nil {
			t.Fatal(err)
		}
		for _, ex := range m["examples"].([]any) {
			for _, p := range s.validate(sch, ex.(map[string]any)["payload"], "example of "+key, true) {
				t.Error(p)
			}
		}
	}

	e := newEnv(t, nil)
	e.addUser("alice", "")
	e.addUser("bob", "")
	dial := func(name string) *websocket.Conn {
		conn, r, err := e.dialWS(e.issue(name), false, nil)
		if err != nil {
			t.Fatalf("dial as %s: %v (%d %s)", name, err, r.status, r.body)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	alice, bob := dial("alice"), dial("bob")
	seen := map[string]bool{}
	send := func(conn *websocket.Conn, frame map[string]any) {
		t.Helper()
		sch, ok := clientSch[frame["type"].(string)]
		if !ok {
			t.Fatalf("/asyncapi.json has no client frame %q", frame["type"])
		}
		var decoded any // as JSON has it: numbers are float64
		b, _ := json.Marshal(frame)
		_ = json.Unmarshal(b, &decoded)
		for _, p := range s.validate(sch, decoded, "client frame "+frame["type"].(string), true) {
			t.Error(p)
		}
		if err := conn.WriteJSON(frame); err != nil {
			t.Fatal(err)
		}
	}
	// until reads frames, each checked against the document, until one of
	// type typ arrives, and returns it.
	until := func(conn *websocket.Conn, typ string) map[string]any {
		t.Helper()
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			var f map[string]any
			if err := conn.ReadJSON(&f); err != nil {
				t.Fatalf("waiting for %s: %v", typ, err)
			}
			got, _ := f["type"].(string)
			sch, ok := serverSch[got]
			if !ok {
				t.Errorf("the server sent type %q, which /asyncapi.json does not document: %v", got, f)
			} else {
				for _, p := range s.validate(sch, f, "server frame "+got, true) {
					t.Error(p)
				}
			}
			seen[got] = true
			if got == typ {
				return f
			}
		}
	}

	send(alice, map[string]any{"type": "join", "room": "general", "ref": "j1"})
	until(alice, "joined")
	send(bob, map[string]any{"type": "join", "room": "general"})
	until(bob, "joined")
	until(alice, "presence")
	send(alice, map[string]any{"type": "send", "room": "general", "text": "hi", "ref": "c1"})
	until(alice, "ack")
	until(bob, "message")
	send(bob, map[string]any{"type": "history", "room": "general", "before": 0, "limit": 10, "ref": "h1"})
	until(bob, "history")
	send(bob, map[string]any{"type": "join", "room": "general", "since": 0, "epoch": "another-epoch", "ref": "j2"})
	if f := until(bob, "joined"); f["reset"] != true || len(f["messages"].([]any)) != 1 {
		t.Errorf("join with another epoch: %v, want reset and the one message", f)
	}
	send(bob, map[string]any{"type": "send", "room": "random", "text": "x", "ref": "c2"})
	if f := until(bob, "error"); f["code"] != "forbidden" || f["ref"] != "c2" {
		t.Errorf("send to a room not joined: %v", f)
	}
	send(bob, map[string]any{"type": "auth", "token": e.issue("bob"), "ref": "a1"})
	until(bob, "ack")
	send(bob, map[string]any{"type": "leave", "room": "general", "ref": "l1"})
	until(bob, "ack")
	send(bob, map[string]any{"type": "ping", "ref": "p1"})
	until(bob, "pong")
	until(alice, "presence") // bob left

	// Rooms (SPEC §8): read markers on another tab, typing, the
	// directory, and access taken away.
	alice2 := dial("alice")
	send(alice2, map[string]any{"type": "ping"}) // registered in the hub once it answers
	until(alice2, "pong")
	send(alice, map[string]any{"type": "read", "room": "general", "id": 1, "ref": "r1"})
	until(alice, "ack")
	until(alice2, "read")
	send(bob, map[string]any{"type": "join", "room": "general"})
	until(bob, "joined")
	send(bob, map[string]any{"type": "typing", "room": "general"})
	until(alice, "typing")
	send(alice, map[string]any{"type": "rooms", "ref": "d1"})
	until(alice, "rooms")
	e.addUser("root", "admin")
	if r := e.call(http.MethodPut, "/admin/access", e.issue("root"), map[string]any{"user": "bob", "pattern": "general", "permission": "deny"}); r.status != http.StatusOK {
		t.Fatalf("PUT /admin/access: %d %s", r.status, r.body)
	}
	until(bob, "left")

	for _, typ := range chat.ServerFrameTypes() {
		if !seen[typ] {
			t.Errorf("the session drew no %q frame to check", typ)
		}
	}
}
