package access

import (
	"errors"
	"testing"
)

// Ensure Check applies SPEC §8's precedence: DMs and private rooms first,
// admins past every rule, a user's rules before "*" rules, the longest
// pattern first, then the default.
func TestCheck(t *testing.T) {
	tab := New(ReadWrite, []Rule{
		{User: "*", Pattern: "ops-*", Perm: Deny},
		{User: "*", Pattern: "ops-public", Perm: ReadOnly},
		{User: "bob", Pattern: "ops-*", Perm: ReadOnly},
		{User: "bob", Pattern: "ops-secret*", Perm: Deny},
		{User: "carol", Pattern: "*", Perm: ReadOnly},
		{User: "Dave", Pattern: "ab*", Perm: Deny},
		{User: "dave", Pattern: "abc", Perm: ReadWrite},
	}, map[string][]string{"board": {"Alice"}})
	tests := []struct {
		user  string
		admin bool
		room  string
		want  Perm
	}{
		{"alice", false, "general", ReadWrite},    // default
		{"alice", false, "ops-x", Deny},           // * prefix
		{"alice", false, "ops-public", ReadOnly},  // longer * rule wins
		{"bob", false, "ops-public", ReadOnly},    // any own rule beats every * rule
		{"bob", false, "ops-x", ReadOnly},         // own rule beats * deny
		{"bob", false, "ops-secret-1", Deny},      // longest own pattern
		{"carol", false, "ops-x", ReadOnly},       // own "*" beats * rules
		{"dave", false, "abc", ReadWrite},         // exact beats prefix of the same length
		{"dave", false, "abd", Deny},              //
		{"root", true, "ops-x", ReadWrite},        // rules never apply to admins
		{"alice", false, "board", ReadWrite},      // member
		{"bob", false, "board", Deny},             // outsider
		{"root", true, "board", Deny},             // admins too
		{"alice", false, "@alice+bob", ReadWrite}, // DM party
		{"bob", false, "@alice+bob", ReadWrite},   //
		{"carol", false, "@alice+bob", Deny},      // outsider
		{"root", true, "@alice+bob", Deny},        // admins too
		{"alice", false, "@alice+alice", Deny},    // not a DM
	}
	for _, tt := range tests {
		if got := tab.Check(tt.user, tt.admin, tt.room); got != tt.want {
			t.Errorf("Check(%s, admin=%v, %s) = %s, want %s", tt.user, tt.admin, tt.room, got, tt.want)
		}
	}
	if got := New(Deny, nil, nil).Check("alice", false, "general"); got != Deny {
		t.Errorf("default deny: %s", got)
	}
}

// Ensure DM canonicalises both name forms and refuses bad ones.
func TestDM(t *testing.T) {
	for _, in := range []string{"@bob", "@alice+bob", "@bob+alice", "@BOB"} {
		got, a, b, err := DM("alice", in)
		if err != nil || got != "@alice+bob" || a != "alice" || b != "bob" {
			t.Errorf("DM(alice, %s) = %q %q %q %v", in, got, a, b, err)
		}
	}
	for _, in := range []string{"@alice", "@", "bob", "@bob+", "@a+b+c", "@b!b", "@alice+alice"} {
		if _, _, _, err := DM("alice", in); !errors.Is(err, ErrBadDM) {
			t.Errorf("DM(alice, %q) = %v, want ErrBadDM", in, err)
		}
	}
}

// Ensure patterns and permissions are parsed strictly.
func TestParse(t *testing.T) {
	for _, p := range []string{"*", "general", "ops-*", "a.b_c-*"} {
		if err := CheckPattern(p); err != nil {
			t.Errorf("CheckPattern(%q): %v", p, err)
		}
	}
	for _, p := range []string{"", "Ops", "a*b", "**", "@alice+bob", ".", "x y*"} {
		if err := CheckPattern(p); !errors.Is(err, ErrBadPattern) {
			t.Errorf("CheckPattern(%q) = %v, want ErrBadPattern", p, err)
		}
	}
	for _, p := range []string{"read-write", "read-only", "deny"} {
		if _, err := ParsePerm(p); err != nil {
			t.Errorf("ParsePerm(%q): %v", p, err)
		}
	}
	if _, err := ParsePerm("rw"); !errors.Is(err, ErrBadPerm) {
		t.Errorf("ParsePerm(rw) = %v", err)
	}
}

// BenchmarkCheck measures the check a send pays: one user with a few
// rules, some "*" rules, a private room, against a public room.
func BenchmarkCheck(b *testing.B) {
	tab := New(ReadWrite, []Rule{
		{User: "*", Pattern: "ops-*", Perm: Deny},
		{User: "*", Pattern: "news", Perm: ReadOnly},
		{User: "bob", Pattern: "ops-*", Perm: ReadOnly},
		{User: "bob", Pattern: "secret", Perm: Deny},
	}, map[string][]string{"board": {"alice"}})
	b.ReportAllocs()
	for b.Loop() {
		if !tab.Check("bob", false, "general").CanWrite() {
			b.Fatal("denied")
		}
	}
}
