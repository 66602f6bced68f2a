// Package access decides who may read and write which chat room (SPEC §8):
// access rules with ntfy's precedence, private rooms, and direct-message
// rooms. A Table is an immutable snapshot built from the store's rules and
// memberships; the chat hub keeps the current one behind an atomic
// pointer, so checking a join or a send costs a few map lookups and never
// a store read. The package knows neither the store nor the hub.
package access

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Perm is what a user may do in a room.
type Perm string

// The permissions of a rule, and of rooms.default_access.
const (
	ReadWrite Perm = "read-write"
	ReadOnly  Perm = "read-only"
	Deny      Perm = "deny"
)

// Everyone is the user of a rule that applies to every user.
const Everyone = "*"

// CanRead reports whether p lets a user join and read a room.
func (p Perm) CanRead() bool { return p == ReadWrite || p == ReadOnly }

// CanWrite reports whether p lets a user send (and type) in a room.
func (p Perm) CanWrite() bool { return p == ReadWrite }

// Errors of the parsers, for errors.Is.
var (
	// ErrBadPerm is returned for a permission other than read-write,
	// read-only and deny.
	ErrBadPerm = errors.New("permission must be read-write, read-only or deny")
	// ErrBadPattern is returned for a pattern that is neither a room name
	// nor a prefix of one followed by *.
	ErrBadPattern = errors.New("room pattern must be a room name (1..64 of [a-z0-9._-]) or a prefix of one ending in *")
	// ErrBadDM is returned for a direct-message name that does not name
	// two different valid users.
	ErrBadDM = errors.New("a direct message is @USER or @USER1+USER2, two different users")
)

// ParsePerm parses a permission; "rw", "ro", "write-only"… are refused so
// that a typo never grants more than meant.
func ParsePerm(s string) (Perm, error) {
	switch p := Perm(s); p {
	case ReadWrite, ReadOnly, Deny:
		return p, nil
	}
	return "", fmt.Errorf("%w, not %q", ErrBadPerm, s)
}

// CheckPattern reports whether p is a room name or a prefix of one ending
// in "*" ("*" alone matches every room).
func CheckPattern(p string) error {
	name, wild := strings.CutSuffix(p, "*")
	switch {
	case wild && name == "":
		return nil
	case wild && len(name) < MaxRoomName && validChars(name):
		return nil
	case !wild && ValidRoom(name):
		return nil
	}
	return fmt.Errorf("%w, not %q", ErrBadPattern, p)
}

// MaxRoomName is the longest room name (SPEC §6).
const MaxRoomName = 64

// ValidRoom reports whether name is a public room name: 1..64 of
// [a-z0-9._-], and neither "." nor ".." (they would be path segments in
// every URL naming the room). DM names (@…) are not room names.
func ValidRoom(name string) bool {
	return len(name) > 0 && len(name) <= MaxRoomName && name != "." && name != ".." && validChars(name)
}

func validChars(s string) bool {
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !(b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '.' || b == '_' || b == '-') {
			return false
		}
	}
	return true
}

// validUser is the username rule of SPEC §4 (lower-case already).
func validUser(s string) bool {
	if len(s) == 0 || len(s) > 32 || !validChars(s) {
		return false
	}
	return s[0] >= 'a' && s[0] <= 'z' || s[0] >= '0' && s[0] <= '9'
}

// IsDM reports whether name is a direct-message room name (it starts
// with @; no other room name may).
func IsDM(name string) bool { return strings.HasPrefix(name, "@") }

// DM returns the canonical name of the direct-message room that user
// means by name: "@bob" (as alice) and "@alice+bob" or "@bob+alice" all
// give "@alice+bob", the two names sorted and joined by "+". It also
// returns the two users. It fails with ErrBadDM when name does not name
// two different valid users, or when user is not one of them.
func DM(user, name string) (canonical string, a, b string, err error) {
	rest, ok := strings.CutPrefix(strings.ToLower(name), "@")
	if !ok {
		return "", "", "", ErrBadDM
	}
	a, b, two := strings.Cut(rest, "+")
	if !two {
		a, b = user, rest
	}
	if a > b {
		a, b = b, a
	}
	if !validUser(a) || !validUser(b) || a == b {
		return "", "", "", ErrBadDM
	}
	return "@" + a + "+" + b, a, b, nil
}

// Rule is one access rule (see store.AccessRule).
type Rule struct {
	User    string // a lower-case username, or Everyone
	Pattern string
	Perm    Perm
}

// Table is a snapshot of the access rules and private-room memberships,
// with the default permission. It is never changed after New, so any
// number of goroutines may read it.
type Table struct {
	def     Perm
	users   map[string][]Rule          // rules by user; Everyone's under "*"; each slice longest pattern first
	private map[string]map[string]bool // private room -> its members
}

// New builds a Table. def is rooms.default_access; private maps each
// private room to its members.
func New(def Perm, rules []Rule, private map[string][]string) *Table {
	if def == "" {
		def = ReadWrite
	}
	t := &Table{def: def, users: map[string][]Rule{}, private: map[string]map[string]bool{}}
	for _, r := range rules {
		u := strings.ToLower(r.User)
		r.User = u
		t.users[u] = append(t.users[u], r)
	}
	for _, rs := range t.users {
		// Longest pattern first; among equal lengths an exact name beats a
		// prefix ("ab*" and "abc" are as long, "abc" names fewer rooms).
		slices.SortFunc(rs, func(a, b Rule) int {
			if la, lb := len(a.Pattern), len(b.Pattern); la != lb {
				return lb - la
			}
			aw, bw := strings.HasSuffix(a.Pattern, "*"), strings.HasSuffix(b.Pattern, "*")
			switch {
			case aw == bw:
				return strings.Compare(a.Pattern, b.Pattern)
			case aw:
				return 1
			}
			return -1
		})
	}
	for room, ms := range private {
		set := make(map[string]bool, len(ms))
		for _, m := range ms {
			set[strings.ToLower(m)] = true
		}
		t.private[room] = set
	}
	return t
}

// Default returns the table's default permission.
func (t *Table) Default() Perm { return t.def }

// match reports whether pattern names room.
func match(pattern, room string) bool {
	if prefix, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(room, prefix)
	}
	return pattern == room
}

// Check returns what user (an admin when admin is true) may do in room, a
// canonical room name (DM names as DM returns them):
//   - a DM room: read-write for its two users, deny for everyone else,
//     admins included;
//   - a private room: deny for non-members, admins included;
//   - otherwise admins may do anything;
//   - otherwise the user's own rules, longest pattern first, then the "*"
//     rules likewise, then the default.
//
// A member of a private room is subject to the rules like anyone else,
// so a rule can make a member read-only.
func (t *Table) Check(user string, admin bool, room string) Perm {
	if IsDM(room) {
		_, a, b, err := DM(user, room)
		if err != nil || (user != a && user != b) {
			return Deny
		}
		return ReadWrite
	}
	if ms, ok := t.private[room]; ok && !ms[user] {
		return Deny
	}
	if admin {
		return ReadWrite
	}
	for _, u := range [2]string{user, Everyone} {
		for _, r := range t.users[u] {
			if match(r.Pattern, room) {
				return r.Perm
			}
		}
	}
	return t.def
}

// Private reports whether room is a private room (not a DM).
func (t *Table) Private(room string) bool {
	_, ok := t.private[room]
	return ok
}

// PrivateRooms returns the private rooms user is a member of, sorted.
func (t *Table) PrivateRooms(user string) []string {
	var out []string
	for room, ms := range t.private {
		if ms[user] {
			out = append(out, room)
		}
	}
	slices.Sort(out)
	return out
}
