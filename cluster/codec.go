package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// The payload of <prefix>.room.<token> is binary, not JSON: on the hot path
// of every cross-node message, encoding/json cost about 10 µs and 18
// allocations per message (encode and decode) against under 1 µs and 2
// allocations for this (BenchmarkCodec). The room is the subject's. The
// first byte is the payload's kind. Kind 1, committed messages, is the
// format unchanged (that byte was its version, 1), so payloads of nodes
// that predate typing decode as they always did:
//
//	byte     kind (1: messages)
//	string   node      (a string is a uvarint length, then the bytes)
//	string   epoch
//	uvarint  count
//	count ×  uvarint id, string from, string text, varint ts (Unix ns)
//
//	byte     kind (2: typing)
//	string   node
//	string   user      (1..MaxUserName bytes)
//
// Typing rides on the room's subject rather than on a second subject per
// room: a node is subscribed to exactly the rooms it has members in, which
// are exactly the rooms whose typing it needs, so a second subscription
// would double the subscriptions, the join round trips and the server's
// interest state for nothing; a typing payload is a few bytes, capped at
// one per user and room per second at its origin. Sharing the subject
// also delivers a room's typing in order with its messages (same delivery
// goroutine). A node too old to know kind 2 drops the payload as
// malformed (and logs it); a node that meets a kind newer than it knows
// skips it quietly. Typing is ephemeral either way.
const (
	kindMessages = 1
	kindTyping   = 2
)

// MaxUserName bounds the user names a typing payload may carry: far above
// any legal user name, far below NATS limits.
const MaxUserName = 255

// appendMessages appends the payload of msgs to buf.
func appendMessages(buf []byte, node, epoch string, msgs []Message) []byte {
	n := 1 + 2*binary.MaxVarintLen64 + len(node) + len(epoch)
	for _, m := range msgs {
		n += 4*binary.MaxVarintLen64 + len(m.From) + len(m.Text)
	}
	if cap(buf)-len(buf) < n {
		buf = append(make([]byte, 0, len(buf)+n), buf...)
	}
	buf = append(buf, kindMessages)
	buf = appendString(buf, node)
	buf = appendString(buf, epoch)
	buf = binary.AppendUvarint(buf, uint64(len(msgs)))
	for _, m := range msgs {
		buf = binary.AppendUvarint(buf, m.ID)
		buf = appendString(buf, m.From)
		buf = appendString(buf, m.Text)
		buf = binary.AppendVarint(buf, m.TS.UnixNano())
	}
	return buf
}

func appendString(buf []byte, s string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

// errPayload is a room payload that does not decode.
var errPayload = errors.New("cluster: malformed message payload")

// errKind is a room payload of a kind this node does not know: one a
// newer node sends. It is skipped quietly (a rolling upgrade), never
// logged per payload.
var errKind = fmt.Errorf("%w: unknown kind", errPayload)

// decoder reads a payload at off; the strings it returns share s, one
// copy of the payload.
type decoder struct {
	b   []byte
	s   string
	off int
	err bool
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.err, d.off = true, len(d.b)
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b[d.off:])
	if n <= 0 {
		d.err, d.off = true, len(d.b)
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) str() string {
	n := d.uvarint()
	if n > uint64(len(d.b)-d.off) {
		d.err, d.off = true, len(d.b)
		return ""
	}
	v := d.s[d.off : d.off+int(n)]
	d.off += int(n)
	return v
}

// decodeMessages parses a room payload.
func decodeMessages(data []byte) (node, epoch string, msgs []Message, err error) {
	if len(data) == 0 || data[0] != kindMessages {
		return "", "", nil, errPayload
	}
	d := &decoder{b: data, s: string(data), off: 1}
	node, epoch = d.str(), d.str()
	count := d.uvarint()
	if d.err || count > uint64(len(data)-d.off)/4 { // a message takes at least 4 bytes
		return "", "", nil, errPayload
	}
	msgs = make([]Message, count)
	for i := range msgs {
		m := &msgs[i]
		m.ID, m.From, m.Text = d.uvarint(), d.str(), d.str()
		m.TS = time.Unix(0, d.varint()).UTC()
		if d.err || m.ID == 0 {
			return "", "", nil, errPayload
		}
	}
	if d.off != len(data) {
		return "", "", nil, errPayload
	}
	return node, epoch, msgs, nil
}

// appendTyping appends the payload of a typing indicator of user to buf.
func appendTyping(buf []byte, node, user string) []byte {
	buf = append(buf, kindTyping)
	buf = appendString(buf, node)
	return appendString(buf, user)
}

// decodeTyping parses a typing payload.
func decodeTyping(data []byte) (node, user string, err error) {
	if len(data) == 0 || data[0] != kindTyping {
		return "", "", errPayload
	}
	d := &decoder{b: data, s: string(data), off: 1}
	node, user = d.str(), d.str()
	if d.err || d.off != len(data) || user == "" || len(user) > MaxUserName {
		return "", "", errPayload
	}
	return node, user, nil
}

// roomPayload is one decoded payload of a room subject, of either kind.
type roomPayload struct {
	kind  byte
	node  string
	epoch string    // kindMessages
	msgs  []Message // kindMessages
	user  string    // kindTyping
}

// decodeRoom parses a payload of a room subject by its kind.
func decodeRoom(data []byte) (p roomPayload, err error) {
	if len(data) == 0 {
		return p, errPayload
	}
	p.kind = data[0]
	switch p.kind {
	case kindMessages:
		p.node, p.epoch, p.msgs, err = decodeMessages(data)
	case kindTyping:
		p.node, p.user, err = decodeTyping(data)
	default:
		err = errKind
	}
	if err != nil {
		return roomPayload{}, err
	}
	return p, nil
}
