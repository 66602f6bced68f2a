package cluster

import (
	"encoding/json"
	"errors"
	"time"
)

// wireMessages is the payload of <prefix>.room.<token>: short keys, the
// timestamp as Unix ns. The room is the subject's.
type wireMessages struct {
	Node  string        `json:"n"`
	Epoch string        `json:"e,omitempty"`
	Msgs  []wireMessage `json:"m"`
}

type wireMessage struct {
	ID   uint64 `json:"i"`
	From string `json:"f"`
	Text string `json:"x"`
	TS   int64  `json:"t"`
}

// appendMessages appends the payload of msgs to buf.
func appendMessages(buf []byte, node, epoch string, msgs []Message) []byte {
	w := wireMessages{Node: node, Epoch: epoch, Msgs: make([]wireMessage, len(msgs))}
	for i, m := range msgs {
		w.Msgs[i] = wireMessage{ID: m.ID, From: m.From, Text: m.Text, TS: m.TS.UnixNano()}
	}
	data, err := json.Marshal(&w)
	if err != nil { // cannot happen: every field encodes
		return buf
	}
	return append(buf, data...)
}

// errPayload is a room payload that does not decode.
var errPayload = errors.New("cluster: malformed message payload")

// decodeMessages parses a room payload.
func decodeMessages(data []byte) (node, epoch string, msgs []Message, err error) {
	var w wireMessages
	if err := json.Unmarshal(data, &w); err != nil {
		return "", "", nil, errors.Join(errPayload, err)
	}
	msgs = make([]Message, len(w.Msgs))
	for i, m := range w.Msgs {
		if m.ID == 0 {
			return "", "", nil, errPayload
		}
		msgs[i] = Message{ID: m.ID, From: m.From, Text: m.Text, TS: time.Unix(0, m.TS).UTC()}
	}
	return w.Node, w.Epoch, msgs, nil
}
