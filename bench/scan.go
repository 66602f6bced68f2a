package bench

import (
	"bytes"
	"math"
	"strconv"
)

// The fanout receivers handle well over 100,000 frames a second on one
// core, so they do not json.Unmarshal: scanFrame walks the top level of an
// object once and keeps sub-slices of the few fields it needs, with no
// allocation. Nested values (members, messages) are skipped, not parsed.

// frame holds the fields of one server frame that the bench looks at.
// The byte slices alias the scanned buffer and die with it. String values
// are kept raw: escapes are not decoded, which is fine for the ASCII the
// bench itself sends and for comparing type, room and code names.
type frame struct {
	typ, room, text, ref, code []byte
	id                         int64
	hasID                      bool
}

// scanFrame fills f from a JSON object; it reports false on malformed input.
func scanFrame(b []byte, f *frame) bool {
	*f = frame{}
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i++
	for {
		i = skipSpace(b, i)
		if i < len(b) && b[i] == '}' {
			return true
		}
		if i >= len(b) || b[i] != '"' {
			return false
		}
		ks, ke, ok := scanString(b, i)
		if !ok {
			return false
		}
		key := b[ks:ke]
		i = skipSpace(b, ke+1)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = skipSpace(b, i+1)
		vs := i
		if i, ok = skipValue(b, i); !ok {
			return false
		}
		val := b[vs:i]
		if len(val) >= 2 && val[0] == '"' {
			val = val[1 : len(val)-1]
		}
		switch string(key) { // no allocation: the compiler special-cases this
		case "type":
			f.typ = val
		case "room":
			f.room = val
		case "text":
			f.text = val
		case "ref":
			f.ref = val
		case "code":
			f.code = val
		case "id":
			f.id, f.hasID = parseInt(val)
		}
		i = skipSpace(b, i)
		if i < len(b) && b[i] == ',' {
			i++
			continue
		}
		return i < len(b) && b[i] == '}'
	}
}

// messagePrefix starts a message frame as chatctl encodes it.
const messagePrefix = `{"type":"message","room":"`

// scanMessage is the fast path for the frame a fanout member gets most: a
// message frame in the exact layout chatctl writes (type, room, id, from,
// text, ts, no spaces, nothing after). It returns the id and the raw text; ok is false for
// anything else, which scanFrame then reads in full. Strings are skipped
// with IndexByte, so a frame costs a few vector searches, not a walk.
func scanMessage(b []byte) (id int64, text []byte, ok bool) {
	if len(b) < len(messagePrefix) || string(b[:len(messagePrefix)]) != messagePrefix {
		return 0, nil, false
	}
	i := len(messagePrefix) - 1
	if i, ok = skipStringAt(b, i); !ok || !hasAt(b, i, `,"id":`) {
		return 0, nil, false
	}
	i += len(`,"id":`)
	j := i
	for j < len(b) && b[j] >= '0' && b[j] <= '9' {
		j++
	}
	if id, ok = parseInt(b[i:j]); !ok || !hasAt(b, j, `,"from":`) {
		return 0, nil, false
	}
	if i, ok = skipStringAt(b, j+len(`,"from":`)); !ok || !hasAt(b, i, `,"text":`) {
		return 0, nil, false
	}
	start := i + len(`,"text":`)
	end, ok := skipStringAt(b, start)
	if !ok || !hasAt(b, end, `,"ts":`) {
		return 0, nil, false
	}
	if i, ok = skipStringAt(b, end+len(`,"ts":`)); !ok || i != len(b)-1 || b[i] != '}' {
		return 0, nil, false
	}
	return id, b[start+1 : end-1], true
}

// skipStringAt takes b[i] == '"' and returns the index just past the
// closing quote.
func skipStringAt(b []byte, i int) (int, bool) {
	if i >= len(b) || b[i] != '"' {
		return 0, false
	}
	for j := i + 1; ; {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return 0, false
		}
		j += k
		esc := 0 // an odd run of backslashes escapes the quote
		for e := j - 1; e > i && b[e] == '\\'; e-- {
			esc++
		}
		if esc%2 == 0 {
			return j + 1, true
		}
		j++
	}
}

// hasAt reports whether b holds s at i.
func hasAt(b []byte, i int, s string) bool {
	return i <= len(b) && len(b)-i >= len(s) && string(b[i:i+len(s)]) == s
}

// skipSpace returns the index of the first non-space byte at or after i.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\t' || b[i] == '\r') {
		i++
	}
	return i
}

// scanString takes b[i] == '"' and returns the bounds of the contents.
func scanString(b []byte, i int) (start, end int, ok bool) {
	e, ok := skipStringAt(b, i)
	if !ok {
		return 0, 0, false
	}
	return i + 1, e - 1, true
}

// skipValue returns the index just past the JSON value starting at b[i].
func skipValue(b []byte, i int) (int, bool) {
	if i >= len(b) {
		return i, false
	}
	switch b[i] {
	case '"':
		_, e, ok := scanString(b, i)
		return e + 1, ok
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				_, e, ok := scanString(b, j)
				if !ok {
					return j, false
				}
				j = e
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, true
				}
			}
		}
		return len(b), false
	default: // number, true, false, null
		j := i
		for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\n' {
			j++
		}
		return j, j > i
	}
}

// parseInt parses a non-negative decimal integer without allocating.
func parseInt(b []byte) (int64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if n > (math.MaxInt64-d)/10 {
			return 0, false // overflow
		}
		n = n*10 + d
	}
	return n, true
}

// payloadPrefix starts every message text the bench sends, so that other
// traffic in the same rooms (or on a shared raw server) is ignored.
const payloadPrefix = "bench|"

// payload is what a bench message text carries: the step round, the
// publisher, its sequence number and the send time (Unix nanoseconds).
type payload struct {
	round, pub, seq, sent int64
}

// appendPayload appends the text of one message, padded with 'x' up to
// size bytes so that message size can be varied.
func appendPayload(dst []byte, p payload, size int) []byte {
	start := len(dst)
	dst = append(dst, payloadPrefix...)
	dst = strconv.AppendInt(dst, p.round, 10)
	dst = append(dst, '|')
	dst = strconv.AppendInt(dst, p.pub, 10)
	dst = append(dst, '|')
	dst = strconv.AppendInt(dst, p.seq, 10)
	dst = append(dst, '|')
	dst = strconv.AppendInt(dst, p.sent, 10)
	dst = append(dst, '|')
	for len(dst)-start < size {
		dst = append(dst, 'x')
	}
	return dst
}

// parsePayload reads a text written by appendPayload.
func parsePayload(b []byte) (payload, bool) {
	if len(b) < len(payloadPrefix) || string(b[:len(payloadPrefix)]) != payloadPrefix {
		return payload{}, false
	}
	b = b[len(payloadPrefix):]
	var f [4]int64
	for k := range f {
		j := 0
		for j < len(b) && b[j] != '|' {
			j++
		}
		if j == len(b) {
			return payload{}, false
		}
		n, ok := parseInt(b[:j])
		if !ok {
			return payload{}, false
		}
		f[k] = n
		b = b[j+1:]
	}
	return payload{round: f[0], pub: f[1], seq: f[2], sent: f[3]}, true
}
