package auth

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// Ensure the length rules of SPEC §4, counted as the spec counts them.
func TestValidatePassword(t *testing.T) {
	tests := []struct {
		name, pw string
		want     error
	}{
		{"OK", "password", nil},
		{"ErrPasswordTooShort", "passwor", ErrPasswordTooShort},
		{"MultibyteCountsCharacters", "pässwörd", nil},
		{"Exactly72Bytes", strings.Repeat("a", 72), nil},
		{"ErrPasswordTooLong", strings.Repeat("a", 73), ErrPasswordTooLong},
		{"ErrTooLongInBytes", strings.Repeat("é", 37), ErrPasswordTooLong}, // 37 chars, 74 bytes
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := ValidatePassword(tc.pw, 8); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	if err := ValidatePassword(strings.Repeat("a", 73), 8); !strings.Contains(err.Error(), "never truncates") {
		t.Errorf("message %q does not explain", err)
	}
}

// Ensure hashing, checking and the rehash signal.
func TestHashAndCheck(t *testing.T) {
	h, err := HashPassword("correct horse", 8, bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if rehash, err := CheckPassword(h, "correct horse", bcrypt.MinCost); err != nil || rehash {
		t.Fatalf("check = %v, %v", rehash, err)
	}
	if rehash, err := CheckPassword(h, "correct horse", 10); err != nil || !rehash {
		t.Fatalf("cost differs but rehash = %v, %v", rehash, err)
	}
	if _, err := CheckPassword(h, "wrong horse", bcrypt.MinCost); !errors.Is(err, ErrPasswordMismatch) {
		t.Fatalf("wrong password: %v", err)
	}
	// bcrypt would compare only the first 72 bytes: refuse longer ones.
	long, _ := bcrypt.GenerateFromPassword([]byte(strings.Repeat("a", 72)), bcrypt.MinCost)
	if _, err := CheckPassword(string(long), strings.Repeat("a", 73), bcrypt.MinCost); !errors.Is(err, ErrPasswordMismatch) {
		t.Fatalf("73-byte password matched a 72-byte hash: %v", err)
	}
	if _, err := HashPassword("short", 8, bcrypt.MinCost); !errors.Is(err, ErrPasswordTooShort) {
		t.Fatalf("short: %v", err)
	}
}

// Ensure imported hashes in each prefix passlib and htpasswd write are
// accepted and verify, and malformed ones are refused.
func TestImportedHashes(t *testing.T) {
	h, _ := bcrypt.GenerateFromPassword([]byte("password123"), bcrypt.MinCost)
	for _, prefix := range []string{"$2a$", "$2b$", "$2y$"} {
		t.Run(prefix, func(t *testing.T) {
			imported := prefix + string(h[4:])
			if err := ValidateHash(imported); err != nil {
				t.Fatal(err)
			}
			if _, err := CheckPassword(imported, "password123", bcrypt.MinCost); err != nil {
				t.Fatalf("imported %s hash does not verify: %v", prefix, err)
			}
		})
	}
	// A cost-12 hash in the form passlib writes.
	if err := ValidateHash("$2b$12$GhvMmNVjRW29ulnudl.LbuAnUtN/LRfe1JsBm1Xu6LE3059z5Tr8m"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "password", "$2x$10$" + string(h[7:]), "$2b$1$" + string(h[7:]), string(h[:40]), string(h) + "x", "$1$abc$def"} {
		if err := ValidateHash(bad); !errors.Is(err, ErrBadHash) {
			t.Errorf("ValidateHash(%q) = %v, want ErrBadHash", bad, err)
		}
	}
}

// Ensure usernames follow SPEC §4 and are lower-cased.
func TestNormalizeName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"alice", "alice"},
		{"Alice", "alice"},
		{"a", "a"},
		{"0day", "0day"},
		{"j.doe_x-1", "j.doe_x-1"},
		{strings.Repeat("a", 32), strings.Repeat("a", 32)},
		{strings.Repeat("a", 33), ""},
		{"", ""},
		{".alice", ""},
		{"-alice", ""},
		{"_alice", ""},
		{"al ice", ""},
		{"bób", ""},
		{"\u212Aelvin", ""}, // the Kelvin sign must not fold into "k"
		{"alice@x", ""},
	}
	for _, tc := range tests {
		got, err := NormalizeName(tc.in)
		if tc.want == "" {
			if !errors.Is(err, ErrBadUsername) {
				t.Errorf("NormalizeName(%q) = %q, %v; want ErrBadUsername", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("NormalizeName(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// Ensure only the two roles exist.
func TestValidateRole(t *testing.T) {
	for role, ok := range map[string]bool{"admin": true, "user": true, "Admin": false, "root": false, "": false} {
		if err := ValidateRole(role); (err == nil) != ok {
			t.Errorf("ValidateRole(%q) = %v", role, err)
		}
	}
}

// Ensure DummyCheck does real bcrypt work at the requested cost.
func TestDummyCheck(t *testing.T) {
	DummyCheck("x", bcrypt.MinCost)
	h, ok := dummyHashes.Load(bcrypt.MinCost)
	if !ok {
		t.Fatal("no hash cached")
	}
	if c, _ := bcrypt.Cost(h.([]byte)); c != bcrypt.MinCost {
		t.Fatalf("dummy hash cost %d", c)
	}
}

// BenchmarkHash measures one bcrypt hash at the costs chatctl allows; the
// login limit of a server is its cores divided by this time.
func BenchmarkHash(b *testing.B) {
	for _, cost := range []int{10, 12} {
		b.Run(fmt.Sprintf("cost%d", cost), func(b *testing.B) {
			for b.Loop() {
				if _, err := bcrypt.GenerateFromPassword([]byte("correct horse"), cost); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// Ensure a password over 72 bytes never matches, even when its first 72
// bytes are the password, and still costs one bcrypt comparison at the
// hash's cost, like a wrong password and like DummyCheck.
func TestTooLongPasswordSameWork(t *testing.T) {
	pw := strings.Repeat("k", MaxPasswordBytes)
	h, err := HashPassword(pw, 8, bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		run  func() error
	}{
		{"WrongPassword", func() error { _, err := CheckPassword(h, "wrong password", bcrypt.MinCost); return err }},
		{"TooLong", func() error { _, err := CheckPassword(h, pw+"k", bcrypt.MinCost); return err }},
		{"MuchTooLong", func() error { _, err := CheckPassword(h, pw+strings.Repeat("k", 4000), bcrypt.MinCost); return err }},
		{"DummyTooLong", func() error { DummyCheck(pw+"k", bcrypt.MinCost); return ErrPasswordMismatch }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			DummyCheck("warm", bcrypt.MinCost)
			before := BcryptWork()
			if err := tc.run(); !errors.Is(err, ErrPasswordMismatch) {
				t.Fatalf("err = %v, want ErrPasswordMismatch", err)
			}
			after := BcryptWork()
			if after.Compares-before.Compares != 1 || after.Rounds-before.Rounds != 1<<bcrypt.MinCost {
				t.Errorf("work = %+v, want one comparison of 2^%d rounds", Work{after.Compares - before.Compares, after.Rounds - before.Rounds}, bcrypt.MinCost)
			}
		})
	}
}
