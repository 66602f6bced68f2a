package cluster

import (
	"encoding/base32"
	"errors"
	"fmt"
)

// tokenEncoding maps a room name to one NATS subject token: base32
// (RFC 4648) with a lower-case alphabet and no padding, so the token holds
// only [a-z2-7]. Room names may contain '.', and may one day contain '@',
// '+', '*' or '>', none of which may appear raw in a token; base32 keeps
// every possible name (any bytes at all) safe, distinct and reversible.
var tokenEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// ErrRoomName is returned for a room name that cannot be a subject: the
// empty string, or a name longer than MaxRoomName bytes.
var ErrRoomName = errors.New("cluster: invalid room name")

// MaxRoomName bounds the room names the broker accepts. SPEC §6 allows 64
// bytes; the margin leaves room for longer names (direct-message rooms) while
// keeping subjects well under NATS limits.
const MaxRoomName = 255

// RoomToken returns the subject token of room: the lower-case base32 of its
// bytes, without padding.
func RoomToken(room string) (string, error) {
	if room == "" || len(room) > MaxRoomName {
		return "", fmt.Errorf("%w: %d bytes", ErrRoomName, len(room))
	}
	return tokenEncoding.EncodeToString([]byte(room)), nil
}

// RoomFromToken reverses RoomToken.
func RoomFromToken(token string) (string, error) {
	b, err := tokenEncoding.DecodeString(token)
	if err != nil || len(b) == 0 {
		return "", fmt.Errorf("%w: token %q", ErrRoomName, token)
	}
	return string(b), nil
}

// validPrefix reports whether s may be the cluster name, the first token of
// every subject: 1..64 of [A-Za-z0-9_-] (configs validates the same rule
// for cluster.name).
func validPrefix(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// subjects are the subjects of one cluster (prefix = cluster.name).
type subjects struct {
	roomPrefix string // "<prefix>.room."
	roster     string // full rosters and deltas, every node to every node
	rosterReq  string // "send me your full roster" (request, many replies)
	kick       string // revocations
	changed    string // change-feed hints
	read       string // read-marker echoes, every node to every node
}

func newSubjects(prefix string) subjects {
	return subjects{
		roomPrefix: prefix + ".room.",
		roster:     prefix + ".roster",
		rosterReq:  prefix + ".roster.req",
		kick:       prefix + ".kick",
		changed:    prefix + ".changed",
		read:       prefix + ".read",
	}
}

// room returns the subject of a room.
func (s subjects) room(room string) (string, error) {
	tok, err := RoomToken(room)
	if err != nil {
		return "", err
	}
	return s.roomPrefix + tok, nil
}

// roomOf returns the room of a room subject.
func (s subjects) roomOf(subject string) (string, error) {
	if len(subject) <= len(s.roomPrefix) || subject[:len(s.roomPrefix)] != s.roomPrefix {
		return "", fmt.Errorf("%w: subject %q", ErrRoomName, subject)
	}
	return RoomFromToken(subject[len(s.roomPrefix):])
}
