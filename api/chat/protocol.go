package chat

import (
	"encoding/binary"
	"encoding/json"
	"slices"
)

// Frame types: the "type" field of every frame (SPEC §6). Client frames
// are dispatched through handlers (handle.go), the one list of what the hub
// accepts; server frames are built with these constants only, and
// serverTypes lists them (a test holds every frame the package builds to
// it). /asyncapi.json documents both lists; a test in package api holds the
// document to ClientFrameTypes and ServerFrameTypes.
const (
	// Client to server.
	TypeJoin    = "join"
	TypeLeave   = "leave"
	TypeSend    = "send"
	TypeHistory = "history" // also the server's reply
	TypeAuth    = "auth"
	TypePing    = "ping"
	TypeRooms   = "rooms"  // the directory; also the server's reply
	TypeRead    = "read"   // move the read marker; also relayed to the user's other connections
	TypeTyping  = "typing" // typing indicator; also relayed to the room's other users

	// Server to client.
	TypeJoined   = "joined"
	TypeMessage  = "message"
	TypeAck      = "ack"
	TypePresence = "presence"
	TypeError    = "error"
	TypePong     = "pong"
	TypeLeft     = "left" // access to a joined room was taken away
)

// serverTypes lists the type of every frame the hub sends.
var serverTypes = []string{TypeJoined, TypeMessage, TypeAck, TypePresence, TypeHistory, TypeError, TypePong,
	TypeLeft, TypeRooms, TypeRead, TypeTyping}

// ClientFrameTypes returns the frame types the hub accepts, sorted: the
// keys of its dispatch table.
func ClientFrameTypes() []string {
	out := make([]string, 0, len(handlers))
	for t := range handlers {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// ServerFrameTypes returns the frame types the hub sends, sorted.
func ServerFrameTypes() []string { return slices.Sorted(slices.Values(serverTypes)) }

// ErrorCodes returns every code an error frame can carry, sorted.
func ErrorCodes() []string { return slices.Sorted(slices.Values(errorCodes)) }

// errorCodes lists the Code constants below.
var errorCodes = []string{CodeBadRequest, CodeUnauthorized, CodeForbidden, CodeNotFound,
	CodeTooLarge, CodeRateLimited, CodeTokenExpired, CodeUnavailable, CodeInternal}

// Error codes carried in the "code" field of an error frame (SPEC §6).
const (
	CodeBadRequest   = "bad_request"   // undecodable frame, unknown type, invalid field
	CodeUnauthorized = "unauthorized"  // an auth frame whose token is invalid or names another user
	CodeForbidden    = "forbidden"     // acting on a room the connection has not joined, or without access (SPEC §8)
	CodeNotFound     = "not_found"     // leaving a room not joined; the room was deleted
	CodeTooLarge     = "too_large"     // text longer than Config.MaxText
	CodeRateLimited  = "rate_limited"  // more sends than Config.SendRate/SendBurst allow
	CodeTokenExpired = "token_expired" // the connection's token reached exp; send auth now
	// CodeUnavailable reports a store that could not be used (PostgreSQL
	// down, a failed commit): the request did not take effect, nothing was
	// acked, and the client may retry (SPEC §7).
	CodeUnavailable = "unavailable"
	// CodeInternal reports a send during shutdown. SPEC §6 lists no code
	// for it; this is an addition, and the client may retry after
	// reconnecting.
	CodeInternal = "internal"
)

// WebSocket close codes this package sends (SPEC §6). 1001 and 1009 are
// standard (RFC 6455); the 4xxx codes are application codes.
const (
	CloseGoingAway    = 1001 // server shutting down: reconnect with backoff, join with since
	CloseInvalidData  = 1007 // a text frame that is not valid UTF-8 (RFC 6455 §8.1)
	CloseTooLarge     = 1009 // frame larger than Config.MaxFrame
	CloseTokenExpired = 4001 // token expired and no auth frame arrived in time
	CloseRevoked      = 4003 // user disabled, removed or tokens revoked (Hub.Kick)
	CloseTooSlow      = 4008 // too far behind: see Config.Queue, QueueWait, QueueBytes
	CloseTooManyConns = 4029 // more than Config.MaxConnsPerUser connections
)

// closeCodes lists the Close constants above.
var closeCodes = []int{CloseGoingAway, CloseInvalidData, CloseTooLarge, CloseTokenExpired,
	CloseRevoked, CloseTooSlow, CloseTooManyConns}

// CloseCodes returns every close code the hub sends of its own accord
// (besides echoing a client's close), ascending.
func CloseCodes() []int { return slices.Sorted(slices.Values(closeCodes)) }

const (
	closeNormal  = 1000 // our echo of a peer's close frame that had no code
	closeNoFrame = -1   // close request: the socket is dead, drop it without a close frame

	maxRoomName         = 64
	defaultHistoryLimit = 50                              // history "limit" when the client sends none
	maxRefLen           = 128                             // longer refs are refused, so errors cannot amplify input
	timestampLayout     = "2006-01-02T15:04:05.000Z07:00" // RFC 3339, ms, UTC renders as Z
)

// inbound is every client frame decoded into one struct: the fields that a
// type does not use are ignored, unknown fields are ignored too (forward
// compatibility), and pointers tell "absent" from zero where that matters.
type inbound struct {
	Type   string  `json:"type"`
	Ref    string  `json:"ref"`
	Room   string  `json:"room"`
	Since  *uint64 `json:"since"`
	Epoch  *string `json:"epoch"` // with since: the epoch the client's ids belong to
	Text   string  `json:"text"`
	Before uint64  `json:"before"`
	Limit  int     `json:"limit"`
	Token  string  `json:"token"`
	ID     *uint64 `json:"id"` // read: the id read up to
}

// wireMessage is one chat message as it appears inside joined and history
// frames.
type wireMessage struct {
	Room string `json:"room"`
	ID   uint64 `json:"id"`
	From string `json:"from"`
	Text string `json:"text"`
	TS   string `json:"ts"`
}

// messageFrame is the live broadcast of one committed message.
type messageFrame struct {
	Type string `json:"type"` // TypeMessage
	wireMessage
}

type joinedFrame struct {
	Type string `json:"type"` // TypeJoined
	Ref  string `json:"ref,omitempty"`
	Room string `json:"room"`
	// Epoch is the room's epoch (Store.Epoch), "" while it has no history.
	// A client resuming with since sends it back; if the room was deleted
	// and created again meanwhile the epochs differ, and the joined frame
	// has Reset: the client's ids are void, and Messages replay the room
	// from the start (as for since 0).
	Epoch    string        `json:"epoch"`
	Reset    bool          `json:"reset,omitempty"`
	Members  []string      `json:"members"`
	Messages []wireMessage `json:"messages"`
	// More is true when the replay was capped at Config.MaxReplay: the
	// client pages older messages with history before=messages[0].id.
	More bool `json:"more,omitempty"`
	// Read is the user's read marker in the room; Unread counts the
	// messages of others after it (at most maxUnread). Joining reads
	// nothing by itself.
	Read   uint64 `json:"read"`
	Unread int    `json:"unread"`
}

// leftFrame tells a member it is no longer in a room it did not leave:
// Reason "forbidden" when access was taken away (SPEC §8).
type leftFrame struct {
	Type   string `json:"type"` // TypeLeft
	Room   string `json:"room"`
	Reason string `json:"reason"`
}

// roomsFrame is the directory (SPEC §8).
type roomsFrame struct {
	Type  string      `json:"type"` // TypeRooms
	Ref   string      `json:"ref,omitempty"`
	Rooms []RoomEntry `json:"rooms"`
}

// readFrame tells the user's other connections that its read marker
// moved.
type readFrame struct {
	Type string `json:"type"` // TypeRead
	Room string `json:"room"`
	ID   uint64 `json:"id"`
}

// typingFrame relays a typing indicator.
type typingFrame struct {
	Type string `json:"type"` // TypeTyping
	Room string `json:"room"`
	User string `json:"user"`
}

type historyFrame struct {
	Type     string        `json:"type"` // TypeHistory
	Ref      string        `json:"ref,omitempty"`
	Room     string        `json:"room"`
	Epoch    string        `json:"epoch"` // as in joinedFrame
	Messages []wireMessage `json:"messages"`
}

type ackFrame struct {
	Type string `json:"type"` // TypeAck
	Ref  string `json:"ref,omitempty"`
	Room string `json:"room,omitempty"`
	ID   uint64 `json:"id,omitempty"`
}

type presenceFrame struct {
	Type  string `json:"type"` // TypePresence
	Room  string `json:"room"`
	User  string `json:"user"`
	Event string `json:"event"` // "join" | "leave"
}

type errorFrame struct {
	Type   string `json:"type"` // TypeError
	Code   string `json:"code"`
	Detail string `json:"detail"`
	Ref    string `json:"ref,omitempty"`
	Room   string `json:"room,omitempty"`
}

type pongFrame struct {
	Type string `json:"type"` // TypePong
	Ref  string `json:"ref,omitempty"`
}

// toWire converts a stored message to its wire shape (RFC 3339 UTC, ms).
func toWire(m Message) wireMessage {
	return wireMessage{Room: m.Room, ID: m.ID, From: m.From, Text: m.Text, TS: m.TS.UTC().Format(timestampLayout)}
}

func toWireList(ms []Message) []wireMessage {
	out := make([]wireMessage, len(ms)) // never nil: "messages":[] rather than null
	for i, m := range ms {
		out[i] = toWire(m)
	}
	return out
}

// encode marshals a frame. The frame types above contain only strings,
// numbers and slices of them, so Marshal cannot fail.
func encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("chat: encode: " + err.Error())
	}
	return b
}

// frame is one complete server-to-client WebSocket text frame, header
// included, ready for the socket. A broadcast frame is built once and shared,
// read-only, by every recipient's queue: encoding happens once per message,
// not once per member (the job websocket.PreparedMessage does, without its
// per-message scratch connection), and a queue of frames can be written with
// a single write.
type frame = []byte

// textFrame frames payload as an unmasked, final text frame (RFC 6455 §5.2:
// servers never mask, and we never compress).
func textFrame(payload []byte) frame {
	n := len(payload)
	var f []byte
	switch {
	case n < 126:
		f = append(make([]byte, 0, 2+n), 0x81, byte(n))
	case n <= 0xffff:
		f = append(make([]byte, 0, 4+n), 0x81, 126, byte(n>>8), byte(n))
	default:
		f = append(make([]byte, 0, 10+n), 0x81, 127)
		f = binary.BigEndian.AppendUint64(f, uint64(n))
	}
	return append(f, payload...)
}

// encodeFrame encodes v as a text frame.
func encodeFrame(v any) frame { return textFrame(encode(v)) }

// validRoom reports whether name is 1..64 of [a-z0-9._-] (SPEC §6), and
// neither "." nor "..": those would be path segments in every URL that
// names a room (/admin/rooms/NAME), where clients and proxies resolve them
// away.
func validRoom(name string) bool {
	if len(name) == 0 || len(name) > maxRoomName || name == "." || name == ".." {
		return false
	}
	for i := 0; i < len(name); i++ {
		b := name[i]
		if !(b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '.' || b == '_' || b == '-') {
			return false
		}
	}
	return true
}
