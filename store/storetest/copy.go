package storetest

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chatctl/chatctl/access"
	"github.com/chatctl/chatctl/auth"
	"github.com/chatctl/chatctl/store"
)

// Helpers for the tests of `store copy`: a store filled through the public
// API with every kind of record, and a dump of an export to compare two
// stores record by record.

// Filled is what Fill put in a store that a copy must carry.
type Filled struct {
	// Live is a refresh token of a live session, never used: it must
	// refresh on a copy.
	Live string
	// Spent is a refresh token already spent: on a copy, presenting it
	// must still be recognised as reuse.
	Spent string
	// Next is the token that replaced Spent (live).
	Next string
	// Rooms maps each room to its last id.
	Rooms map[string]uint64
	// Private maps each private room to its members; Markers each user
	// to its read markers; Declared each kind to its list.
	Private  map[string][]string
	Markers  map[string]map[string]uint64
	Declared map[string][]string
	// Access is an access token of alice, valid; Denied one of bob whose
	// jti is on the deny list; Dave one minted before dave's tokens were
	// revoked; Retired one signed with the key retired early.
	Access, Denied, Dave, Retired string
}

// tokenState adapts a store.Store to auth's Keys and Users, as the
// server does.
type tokenState struct{ s store.Store }

func (k tokenState) SigningKey(ttl time.Duration) (string, []byte, error) {
	key, err := k.s.ActiveKey()
	return key.Kid, key.Secret, err
}

func (k tokenState) VerifyKey(kid string) ([]byte, bool) {
	keys, err := k.s.Keys()
	if err != nil {
		return nil, false
	}
	for _, key := range keys {
		if key.Kid == kid && key.Verifies(time.Now()) {
			return key.Secret, true
		}
	}
	return nil, false
}

func (k tokenState) TokenState(name string) (auth.UserState, error) {
	u, err := k.s.User(name)
	if errors.Is(err, store.ErrNotFound) {
		return auth.UserState{}, nil
	}
	return auth.UserState{Found: err == nil, Disabled: u.Disabled, Version: u.TokenVersion, Role: u.Role}, err
}

func (k tokenState) Denied(id string) bool { return k.s.Denied(id) }

// Tokens returns the access tokens of s, as a server on s checks them.
func Tokens(s store.Store) *auth.Tokens {
	return auth.NewTokens(tokenState{s}, tokenState{s}, "chatctl", time.Minute, nil)
}

// Hash is a bcrypt hash ("password" at cost 10) for users made by Fill.
const Hash = "$2a$10$HwhPlplaIAZBG9Nhx/z/eOS1Ywhm9yGqwxKVZJw0fkAmfx7UVqgoq"

// Fill puts every kind of record into s through store.Store: users (one
// disabled, one with revoked tokens), keys (rotated, one retired early),
// sessions with spent refresh tokens, a family ended by reuse, denied
// tokens, rooms (one deleted and created again, one capped by retention,
// one with a name outside ASCII), messages and audit entries, some of
// them pruned so that the audit sequence is ahead of the count, access
// rules (a user's, '*' ones, prefix patterns), private rooms (one with two
// members and history, one whose member was kicked, one with none), read
// markers and the declared lists of the config file.
func Fill(t testing.TB, s store.Store) Filled {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	for _, u := range []store.User{{Name: "alice", Role: "admin"}, {Name: "bob", Role: "user"}, {Name: "carol", Role: "user"}, {Name: "dave", Role: "user"}} {
		u.Hash = Hash
		_, err := s.CreateUser(u)
		must(err)
	}
	yes := true
	_, err := s.UpdateUser("carol", store.Change{Disabled: &yes})
	must(err)

	var f Filled
	tokens := Tokens(s)
	mint := func(name string) (string, *auth.Claims) {
		t.Helper()
		u, err := s.User(name)
		must(err)
		tok, c, err := tokens.Mint(u.Name, u.Role, u.TokenVersion, time.Hour)
		must(err)
		return tok, c
	}
	k1, err := s.ActiveKey()
	must(err)
	must(s.NoteTTL(k1.Kid, time.Hour))
	k2, err := s.RotateKey()
	must(err)
	f.Retired, _ = mint("alice")
	must(s.NoteTTL(k2.Kid, time.Hour))
	_, err = s.RotateKey()
	must(err)
	_, err = s.RetireKey(k2.Kid)
	must(err)
	f.Access, _ = mint("alice")
	f.Dave, _ = mint("dave")
	_, err = s.UpdateUser("dave", store.Change{RevokeTokens: true})
	must(err)
	var denied *auth.Claims
	f.Denied, denied = mint("bob")
	must(s.DenyToken(denied.ID, denied.ExpiresAt.Time))
	for _, c := range []struct {
		tok  string
		want auth.Reason
	}{{f.Access, ""}, {f.Denied, auth.ReasonRevoked}, {f.Dave, auth.ReasonRevoked}, {f.Retired, auth.ReasonUnknownKey}} {
		if _, err := tokens.Verify(c.tok); auth.ReasonOf(err) != c.want {
			t.Fatalf("token on the source: %v, want %q", err, c.want)
		}
	}

	_, f.Live, err = s.CreateSession("alice", "192.0.2.1:1234", time.Hour)
	must(err)
	_, f.Spent, err = s.CreateSession("alice", "192.0.2.2:1234", time.Hour)
	must(err)
	_, f.Next, err = s.Refresh(f.Spent, "192.0.2.2:1235", time.Hour)
	must(err)
	_, reused, err := s.CreateSession("bob", "[2001:db8::1]:80", time.Hour)
	must(err)
	_, _, err = s.Refresh(reused, "[2001:db8::1]:80", time.Hour)
	must(err)
	if _, _, err := s.Refresh(reused, "[2001:db8::1]:80", time.Hour); !errors.Is(err, store.ErrRefreshReused) {
		t.Fatalf("reuse: %v", err)
	}
	_, _, err = s.CreateSession("dave", "198.51.100.7:9", 2*time.Hour)
	must(err)
	must(s.DenyToken("jti-revoked-1", time.Now().Add(time.Hour)))

	send := func(room string, n int) {
		t.Helper()
		for i := range n {
			_, err := s.AppendMessage(ctx, room, "alice", fmt.Sprintf("message %d in %s: ünïcødé ✓\nsecond line", i+1, room), time.Now())
			must(err)
		}
	}
	send("general", 40)
	send("random", 5)
	must(s.DeleteRoom("random"))
	send("random", 3) // a new epoch, ids from 1 again
	s.SetRetention(store.Retention{MaxPerRoom: 10})
	send("capped", 25) // ids 16..25 kept, last id 25
	s.SetRetention(store.Retention{})
	send("café ☕", 2)
	send("Zeta", 1) // upper case sorts before lower case in byte order

	for _, r := range []store.AccessRule{
		{User: "*", Pattern: "ops-*", Perm: "deny"},
		{User: "*", Pattern: "general", Perm: "read-only"},
		{User: "Bob", Pattern: "ops-*", Perm: "read-write"},
		{User: "bob", Pattern: "general", Perm: "read-write"},
		{User: "dave", Pattern: "café*", Perm: "deny"},
		{User: "carol", Pattern: "random", Perm: "read-only"},
	} {
		must(s.SetAccessRule(r))
	}
	_, err = s.ResetAccess("carol", "random")
	must(err)
	must(s.CreatePrivateRoom("staff", []string{"Alice", "dave"}))
	send("staff", 4)
	must(s.CreatePrivateRoom("ops-board", []string{"bob", "carol"}))
	must(s.SetMember("ops-board", "carol", false))
	must(s.CreatePrivateRoom("empty", nil))
	for _, m := range []struct {
		user, room string
		id         uint64
	}{{"alice", "general", 30}, {"alice", "staff", 4}, {"Bob", "general", 12}, {"bob", "capped", 20}, {"dave", "café ☕", 2}, {"dave", "staff", 3}, {"dave", "staff", 1}} {
		_, err := s.SetReadMarker(m.user, m.room, m.id)
		must(err)
	}
	must(s.SetDeclared("auth.users", []string{"bob", "alice"}))
	must(s.SetDeclared("auth.access", []string{"*:ops-*", "bob:ops-*"}))
	must(s.SetDeclared("empty", nil))

	for i := range 8 {
		must(s.AppendAudit(store.AuditEntry{Action: "user.add", Actor: "root", From: "local", Target: fmt.Sprintf("user%d", i), Outcome: store.AuditOK}))
	}
	s.RecordAudit(store.AuditEntry{Action: "login.failed", Actor: "mallory", From: "203.0.113.9", Outcome: store.AuditFailed, Detail: "bad password"})
	s.FlushAudit()
	_, err = s.PruneAudit(0, 6)
	must(err)

	rooms, err := s.Rooms()
	must(err)
	f.Rooms = map[string]uint64{}
	for _, r := range rooms {
		f.Rooms[r.Name] = r.LastID
	}
	private, err := s.PrivateRooms()
	must(err)
	f.Private = map[string][]string{}
	for _, p := range private {
		f.Private[p.Name] = p.Members
	}
	f.Markers = map[string]map[string]uint64{}
	for _, u := range []string{"alice", "bob", "carol", "dave"} {
		f.Markers[u], err = s.ReadMarkers(u)
		must(err)
	}
	f.Declared = map[string][]string{}
	for _, kind := range []string{"auth.users", "auth.access", "empty"} {
		f.Declared[kind], err = s.Declared(kind)
		must(err)
	}
	return f
}

// Dump exports e and returns one line per record, sorted (the backends
// export some kinds in different orders), with times cut to microseconds
// when micro is set (PostgreSQL keeps no more). It fails the test when
// the messages of a room do not come in increasing id order, or when the
// Counts that open the export do not match the records.
func Dump(t testing.TB, e store.Exporter, micro bool) []string {
	t.Helper()
	ts := func(tm time.Time) string {
		if micro {
			tm = tm.Truncate(time.Microsecond)
		}
		return tm.UTC().Format(time.RFC3339Nano)
	}
	var out []string
	var counts *store.Counts
	var seen store.Counts
	last := map[string]uint64{}
	err := e.Export(context.Background(), func(r store.Record) error {
		var line string
		switch r := r.(type) {
		case store.Counts:
			counts = &r
			return nil
		case store.User:
			seen.Users++
			line = fmt.Sprintf("user %s hash=%s role=%s disabled=%t version=%d created=%s updated=%s", r.Name, r.Hash, r.Role, r.Disabled, r.TokenVersion, ts(r.CreatedAt), ts(r.UpdatedAt))
		case store.Key:
			seen.Keys++
			line = fmt.Sprintf("key %s secret=%x created=%s retired=%s maxttl=%s revoked=%s", r.Kid, r.Secret, ts(r.CreatedAt), ts(r.RetiredAt), r.MaxTTL, ts(r.RevokedAt))
		case store.Session:
			seen.Sessions++
			line = fmt.Sprintf("session %s user=%s created=%s used=%s addr=%s expires=%s", r.ID, r.User, ts(r.CreatedAt), ts(r.LastUsed), r.ClientAddr, ts(r.ExpiresAt))
		case store.RefreshToken:
			seen.RefreshTokens++
			line = fmt.Sprintf("refresh %s session=%s user=%s expires=%s spent=%t", hex.EncodeToString(r.Hash), r.Session, r.User, ts(r.ExpiresAt), r.Spent)
		case store.DenyEntry:
			seen.Denied++
			line = fmt.Sprintf("denied %s expires=%s", r.ID, ts(r.ExpiresAt))
		case store.RoomRecord:
			seen.Rooms++
			line = fmt.Sprintf("room %q epoch=%s last=%d count=%d created=%s", r.Name, r.Epoch, r.LastID, r.Count, ts(r.CreatedAt))
		case store.Message:
			seen.Messages++
			if r.ID <= last[r.Room] {
				return fmt.Errorf("room %q: message %d after %d", r.Room, r.ID, last[r.Room])
			}
			last[r.Room] = r.ID
			line = fmt.Sprintf("message %q %020d from=%s text=%q ts=%s", r.Room, r.ID, r.From, r.Text, ts(r.TS))
		case store.AccessRule:
			seen.AccessRules++
			line = fmt.Sprintf("access %q %q perm=%s", r.User, r.Pattern, r.Perm)
		case store.PrivateRoom:
			seen.PrivateRooms++
			seen.Members += int64(len(r.Members))
			if !slices.IsSorted(r.Members) {
				return fmt.Errorf("private room %q: members %q not sorted", r.Name, r.Members)
			}
			line = fmt.Sprintf("private %q members=%q", r.Name, r.Members)
		case store.ReadMarker:
			seen.ReadMarkers++
			line = fmt.Sprintf("read %q %q id=%d", r.User, r.Room, r.ID)
		case store.DeclaredList:
			seen.Declared++
			line = fmt.Sprintf("declared %q names=%q", r.Kind, r.Names)
		case store.AuditEntry:
			seen.Audit++
			line = fmt.Sprintf("audit %020d time=%s action=%s actor=%s from=%s target=%s outcome=%s detail=%q", r.Seq, ts(r.Time), r.Action, r.Actor, r.From, r.Target, r.Outcome, r.Detail)
		case store.AuditSequence:
			line = fmt.Sprintf("audit-sequence %d", r.Last)
		default:
			return fmt.Errorf("unknown record %T", r)
		}
		out = append(out, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if counts == nil || *counts != seen {
		t.Fatalf("export counts %+v, records %+v", counts, seen)
	}
	slices.Sort(out)
	return out
}

// Diff returns the lines only in a and only in b, for a failure message;
// "" when a and b are equal.
func Diff(a, b []string) string {
	var sb strings.Builder
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || i < len(a) && a[i] < b[j]:
			fmt.Fprintf(&sb, "- %s\n", a[i])
			i++
		case i == len(a) || b[j] < a[i]:
			fmt.Fprintf(&sb, "+ %s\n", b[j])
			j++
		default:
			i++
			j++
		}
	}
	return sb.String()
}

// CheckCopy checks that to serves what from served: the same records
// (see Dump), the refresh tokens of f as before the copy (the live ones
// refresh, the spent one is reuse), every room going on at its last id +
// 1, a signing key, and the access of f's rules and private rooms as a
// server on to decides it (members get in, outsiders and admins who are
// not members do not), read markers that still never move backwards,
// and the declared lists.
func CheckCopy(t *testing.T, from store.Exporter, to interface {
	store.Store
	store.Exporter
}, f Filled, micro bool) {
	t.Helper()
	want, got := Dump(t, from, micro), Dump(t, to, micro)
	if d := Diff(want, got); d != "" {
		t.Fatalf("the copy differs (- source, + copy):\n%s", d)
	}
	if _, _, err := to.Refresh(f.Live, "192.0.2.9:1", time.Hour); err != nil {
		t.Errorf("refresh of a live token on the copy: %v", err)
	}
	if _, _, err := to.Refresh(f.Next, "192.0.2.9:1", time.Hour); err != nil {
		t.Errorf("refresh of a rotated token on the copy: %v", err)
	}
	if _, _, err := to.Refresh(f.Spent, "192.0.2.9:1", time.Hour); !errors.Is(err, store.ErrRefreshReused) {
		t.Errorf("spent token on the copy: %v, want reuse", err)
	}
	for room, last := range f.Rooms {
		m, err := to.AppendMessage(context.Background(), room, "bob", "after the copy", time.Now())
		if err != nil || m.ID != last+1 {
			t.Errorf("room %q: next message %d, %v; want id %d", room, m.ID, err, last+1)
		}
	}
	tokens := Tokens(to)
	for _, c := range []struct {
		name, tok string
		want      auth.Reason
	}{
		{"alice's", f.Access, ""}, {"a denied", f.Denied, auth.ReasonRevoked},
		{"dave's revoked", f.Dave, auth.ReasonRevoked}, {"a retired key's", f.Retired, auth.ReasonUnknownKey},
	} {
		if _, err := tokens.Verify(c.tok); auth.ReasonOf(err) != c.want || c.want == "" && err != nil {
			t.Errorf("%s token on the copy: %v, want %q", c.name, err, c.want)
		}
	}
	if _, _, err := tokens.Mint("alice", "admin", 1, time.Minute); err != nil {
		t.Error(err)
	}
	checkAccess(t, to, f)
}

// table builds the access table of s as the server does (rooms.default_access
// read-write).
func table(t *testing.T, s store.Store) *access.Table {
	t.Helper()
	rules, err := s.AccessRules()
	if err != nil {
		t.Fatal(err)
	}
	private, err := s.PrivateRooms()
	if err != nil {
		t.Fatal(err)
	}
	rs := make([]access.Rule, len(rules))
	for i, r := range rules {
		rs[i] = access.Rule{User: r.User, Pattern: r.Pattern, Perm: access.Perm(r.Perm)}
	}
	ps := map[string][]string{}
	for _, p := range private {
		ps[p.Name] = p.Members
	}
	return access.New(access.ReadWrite, rs, ps)
}

// checkAccess checks on the copy to what Fill set: who gets into which
// room, the private rooms' members (who can still be changed), the read
// markers and the declared lists.
func checkAccess(t *testing.T, to store.Store, f Filled) {
	t.Helper()
	admin := map[string]bool{"alice": true}
	tab := table(t, to)
	for _, c := range []struct {
		user, room string
		want       access.Perm
	}{
		{"alice", "staff", access.ReadWrite}, // a member (and an admin)
		{"dave", "staff", access.ReadWrite},  // a member
		{"bob", "staff", access.Deny},        // an outsider
		{"carol", "staff", access.Deny},
		{"bob", "ops-board", access.ReadWrite},  // a member, by his own rule over '*'
		{"carol", "ops-board", access.Deny},     // kicked before the copy
		{"alice", "ops-board", access.Deny},     // an admin who is no member
		{"alice", "empty", access.Deny},         // no members at all
		{"carol", "general", access.ReadOnly},   // the '*' rule
		{"bob", "general", access.ReadWrite},    // his own rule beats '*'
		{"carol", "ops-east", access.Deny},      // the '*' prefix rule
		{"bob", "ops-east", access.ReadWrite},   // his own prefix rule
		{"dave", "café ☕", access.Deny},         // his prefix rule, outside ASCII
		{"carol", "café ☕", access.ReadWrite},   // the default
		{"carol", "random", access.ReadWrite},   // her rule was reset before the copy
		{"alice", "ops-east", access.ReadWrite}, // rules never apply to admins
	} {
		if got := tab.Check(c.user, admin[c.user], c.room); got != c.want {
			t.Errorf("on the copy, %s in %q: %s, want %s", c.user, c.room, got, c.want)
		}
	}
	private, err := to.PrivateRooms()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, p := range private {
		got[p.Name] = p.Members
	}
	if want := map[string][]string{"staff": {"alice", "dave"}, "ops-board": {"bob"}, "empty": {}}; !sameLists(got, want) || !sameLists(got, f.Private) {
		t.Errorf("private rooms on the copy %q, want %q (the source had %q)", got, want, f.Private)
	}
	if err := to.CreatePrivateRoom("staff", nil); !errors.Is(err, store.ErrRoomExists) {
		t.Errorf("creating the copied private room again: %v, want ErrRoomExists", err)
	}
	if err := to.SetMember("staff", "bob", true); err != nil {
		t.Errorf("adding a member on the copy: %v", err)
	} else if table(t, to).Check("bob", false, "staff") != access.ReadWrite {
		t.Error("a member added on the copy does not get in")
	}

	for user, want := range f.Markers {
		got, err := to.ReadMarkers(user)
		if err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(got, want) {
			t.Errorf("read markers of %s on the copy %v, want %v", user, got, want)
		}
	}
	if want := map[string]uint64{"general": 30, "staff": 4}; !maps.Equal(f.Markers["alice"], want) {
		t.Errorf("alice's read markers on the source %v, want %v", f.Markers["alice"], want)
	}
	if m, err := to.SetReadMarker("alice", "general", 29); err != nil || m.Moved || m.ID != 30 {
		t.Errorf("a lower read marker on the copy: %+v, %v; want 30, not moved", m, err)
	}
	if m, err := to.SetReadMarker("alice", "general", 31); err != nil || !m.Moved || m.ID != 31 {
		t.Errorf("a higher read marker on the copy: %+v, %v; want 31, moved", m, err)
	}
	for kind, want := range f.Declared {
		got, err := to.Declared(kind)
		if err != nil || !slices.Equal(got, want) || got == nil {
			t.Errorf("declared %s on the copy: %q, %v; want %q", kind, got, err, want)
		}
	}
	if want := []string{"alice", "bob"}; !slices.Equal(f.Declared["auth.users"], want) {
		t.Errorf("declared auth.users on the source %q, want %q", f.Declared["auth.users"], want)
	}
}

// sameLists reports whether a and b hold the same keys with equal lists
// (nil and empty alike).
func sameLists(a, b map[string][]string) bool {
	return maps.EqualFunc(a, b, func(x, y []string) bool { return slices.Equal(x, y) })
}

// OpenFile opens a bbolt store at path (without fsync), closed at cleanup.
func OpenFile(t testing.TB, path string) *store.DB {
	t.Helper()
	db, err := store.Open(path, store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
