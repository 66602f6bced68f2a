package admin

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// Ensure a Service call without an Actor is recorded as this process's
// OS user working on the store ("local"), and WithActor overrides it.
func TestAuditActor(t *testing.T) {
	s, _ := newService(t, nil)
	mustAdd(t, s, "alice", "user")
	if _, err := s.SetRole(WithActor(ctx, Actor{Name: "root", From: "192.0.2.1"}), "alice", "admin"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddUser(WithActor(ctx, Actor{From: "192.0.2.2", Signup: true}), AddUserRequest{Name: "Bob", Password: "password123"}); err != nil {
		t.Fatal(err)
	}
	list, err := s.Audit(ctx, AuditQuery{})
	if err != nil || len(list) != 3 {
		t.Fatalf("Audit = %+v, %v", list, err)
	}
	me := OSUser(uint32(os.Geteuid()), true)
	for i, want := range []AuditEntry{
		{Action: ActionUserAdd, Actor: me, From: FromLocal, Target: "alice", Outcome: "ok", Detail: "role user"},
		{Action: ActionUserRole, Actor: "root", From: "192.0.2.1", Target: "alice", Outcome: "ok", Detail: "role admin"},
		{Action: ActionUserSignup, Actor: "bob", From: "192.0.2.2", Target: "bob", Outcome: "ok", Detail: "role user"},
	} {
		got := list[i]
		want.Time, want.Seq = got.Time, got.Seq
		if got != want {
			t.Errorf("entry %d = %+v, want %+v", i, got, want)
		}
	}
}

// Ensure names and inputs are kept escaped and bounded: an invalid name
// quoted and cut at 64 bytes, control bytes escaped, valid UTF-8 kept.
func TestAuditText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Alice", "alice"},
		{"bad name", `"bad name"`},
		{"a\x00b\nc\"d", `"a\x00b\nc"d"`},
		{strings.Repeat("x", 100), `"` + strings.Repeat("x", 64) + `…"`},
		{strings.Repeat("é", 40), `"` + strings.Repeat("é", 32) + `…"`},
		{"\xff\xfe", `"\xff\xfe"`},
	}
	for _, tc := range tests {
		if got := auditName(tc.in); got != tc.want {
			t.Errorf("auditName(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// Ensure Audit bounds its limit and ParseSince takes durations and RFC
// 3339 times, refusing anything else with a clear message.
func TestAuditQueryInput(t *testing.T) {
	s, _ := newService(t, nil)
	for _, n := range []int{-1, MaxAuditLimit + 1} {
		if _, err := s.Audit(ctx, AuditQuery{Limit: n}); !errors.Is(err, ErrBadRequest) {
			t.Errorf("limit %d: %v", n, err)
		}
	}
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time
		err  string
	}{
		{"1h", now.Add(-time.Hour), ""},
		{"2026-10-01T00:00:00Z", time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC), ""},
		{"-5m", time.Time{}, "want a positive duration"},
		{"yesterday", time.Time{}, "want a duration such as 1h"},
	} {
		got, err := ParseSince(tc.in, now)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseSince(%q) = %v, %v; want error %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("ParseSince(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

// Ensure a backup is an audited admin action: one store.backup entry with
// the copy's size, taken after the copy (so the copy does not hold it).
func TestAuditBackup(t *testing.T) {
	s, _ := newService(t, nil)
	var buf strings.Builder
	n, err := s.Backup(WithActor(ctx, Actor{Name: "root", From: FromSocket}), &buf)
	if err != nil || n != int64(buf.Len()) {
		t.Fatalf("Backup = %d, %v (wrote %d)", n, err, buf.Len())
	}
	list, err := s.Audit(ctx, AuditQuery{Action: ActionStoreBackup})
	if err != nil || len(list) != 1 {
		t.Fatalf("Audit = %+v, %v", list, err)
	}
	if e := list[0]; e.Actor != "root" || e.From != FromSocket || e.Outcome != "ok" || e.Detail != fmt.Sprintf("%d bytes", n) {
		t.Errorf("entry = %+v", e)
	}
}
