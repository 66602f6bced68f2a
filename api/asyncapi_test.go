package api

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/chatctl/chatctl/api/chat"
)

// asyncAPIDoc is the part of /asyncapi.json the tests read.
type asyncAPIDoc struct {
	AsyncAPI string `json:"asyncapi"`
	Channels map[string]struct {
		Address  string                     `json:"address"`
		Messages map[string]json.RawMessage `json:"messages"`
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
// and sends (the frames package chat builds), and exactly its error codes.
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
