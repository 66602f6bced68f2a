package auth

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
)

// MaxPasswordBytes is bcrypt's input limit. Longer passwords are refused,
// never silently truncated.
const MaxPasswordBytes = 72

var (
	// ErrPasswordTooShort is returned for a password under the minimum length.
	ErrPasswordTooShort = errors.New("password too short")
	// ErrPasswordTooLong is returned for a password over MaxPasswordBytes.
	ErrPasswordTooLong = errors.New("password too long")
	// ErrPasswordMismatch is returned by CheckPassword for a wrong password.
	ErrPasswordMismatch = errors.New("wrong password")
	// ErrBadHash is returned for a string that is not a usable bcrypt hash.
	ErrBadHash = errors.New("not a bcrypt hash")
)

// ValidatePassword checks the length rules of SPEC §4: at least minLen
// characters and at most 72 bytes.
func ValidatePassword(password string, minLen int) error {
	if n := utf8.RuneCountInString(password); n < minLen {
		return fmt.Errorf("%w: %d characters, at least %d required", ErrPasswordTooShort, n, minLen)
	}
	if len(password) > MaxPasswordBytes {
		return fmt.Errorf("%w: %d bytes, at most %d allowed (bcrypt's limit; chatctl never truncates)", ErrPasswordTooLong, len(password), MaxPasswordBytes)
	}
	return nil
}

// HashPassword validates password and returns its bcrypt hash at cost.
func HashPassword(password string, minLen, cost int) (string, error) {
	if err := ValidatePassword(password, minLen); err != nil {
		return "", err
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(h), nil
}

// bcryptHash matches the modular crypt format of bcrypt as passlib,
// htpasswd and OpenBSD write it: $2a$, $2b$ or $2y$, a two-digit cost, then
// 53 characters of bcrypt's base64 (22 of salt, 31 of hash).
var bcryptHash = regexp.MustCompile(`^\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}$`)

// ValidateHash checks that hash is a bcrypt hash chatctl can verify.
func ValidateHash(hash string) error {
	if !bcryptHash.MatchString(hash) {
		return fmt.Errorf("%w: want $2a$, $2b$ or $2y$, a two-digit cost and 53 characters, as htpasswd -B or passlib write", ErrBadHash)
	}
	if _, err := bcrypt.Cost([]byte(hash)); err != nil {
		return fmt.Errorf("%w: %v", ErrBadHash, err)
	}
	return nil
}

// CheckPassword compares password with hash. It returns nil on a match,
// ErrPasswordMismatch otherwise, and reports whether the hash should be
// replaced because its cost differs from cost. Every call spends one
// bcrypt comparison at the hash's cost, whatever the password, so that
// the answer's timing says nothing about the account.
func CheckPassword(hash, password string, cost int) (rehash bool, err error) {
	if len(password) > MaxPasswordBytes {
		// bcrypt would compare only the first 72 bytes; such a password
		// can never have been set, so it cannot match. Compare anyway and
		// throw the result away: answering at once would tell an existing
		// user (fast) from an unknown one (a dummy check) (issue 10, item 3).
		_ = compare([]byte(hash), []byte(password[:MaxPasswordBytes]))
		return false, ErrPasswordMismatch
	}
	if err := compare([]byte(hash), []byte(password)); err != nil {
		return false, ErrPasswordMismatch
	}
	c, err := bcrypt.Cost([]byte(hash))
	return err == nil && c != cost, nil
}

// dummyHashes caches one hash per cost (int -> []byte) for DummyCheck;
// costs are bounded (bcrypt's 4..31), and so is the map.
var dummyHashes sync.Map

// DummyCheck spends the same bcrypt work as CheckPassword at cost, for
// logins of unknown users and invalid names: a wrong username then takes
// as long as a wrong password and cannot be told apart by timing.
func DummyCheck(password string, cost int) {
	h, ok := dummyHashes.Load(cost)
	if !ok {
		// The result is thrown away, so any constant will do.
		fresh, _ := bcrypt.GenerateFromPassword([]byte("chatctl timing equaliser"), cost)
		h, _ = dummyHashes.LoadOrStore(cost, fresh)
	}
	if len(password) > MaxPasswordBytes {
		password = password[:MaxPasswordBytes] // as CheckPassword does
	}
	_ = compare(h.([]byte), []byte(password))
}

// Work counts the bcrypt comparisons of CheckPassword and DummyCheck, and
// the rounds they cost (2^cost each), since the process started. Tests
// use it to show that every login path spends the same work; its values
// only ever grow.
type Work struct {
	Compares int64
	Rounds   int64
}

// work is the process-wide count behind BcryptWork; atomics, no lock.
var work struct{ compares, rounds atomic.Int64 }

// BcryptWork returns the bcrypt work spent so far (see Work).
func BcryptWork() Work {
	return Work{Compares: work.compares.Load(), Rounds: work.rounds.Load()}
}

// compare is bcrypt's comparison, counted in work.
func compare(hash, password []byte) error {
	work.compares.Add(1)
	if c, err := bcrypt.Cost(hash); err == nil {
		work.rounds.Add(1 << c)
	}
	return bcrypt.CompareHashAndPassword(hash, password)
}

// SamePassword compares a password with its confirmation in constant time.
func SamePassword(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// usernameRE is SPEC §4's rule after lower-casing.
var usernameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,31}$`)

// ErrBadUsername is returned for a name outside SPEC §4's rule.
var ErrBadUsername = errors.New("invalid username")

// NormalizeName lower-cases name and checks it: 1..32 of [a-z0-9._-],
// starting with a letter or digit.
func NormalizeName(name string) (string, error) {
	// Lower-case ASCII only: strings.ToLower would also fold look-alikes
	// such as the Kelvin sign into "k".
	n := strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, name)
	if !usernameRE.MatchString(n) {
		return "", fmt.Errorf("%w %s: use 1 to 32 of a-z, 0-9, '.', '_' and '-', starting with a letter or digit", ErrBadUsername, Quote(name))
	}
	return n, nil
}

// Roles.
const (
	RoleAdmin = "admin"
	RoleUser  = "user"
)

// ErrBadRole is returned for a role other than admin or user.
var ErrBadRole = errors.New("invalid role")

// ValidateRole checks that role is admin or user.
func ValidateRole(role string) error {
	if role != RoleAdmin && role != RoleUser {
		return fmt.Errorf("%w %s: must be admin or user", ErrBadRole, Quote(role))
	}
	return nil
}

// quoteMax is how many bytes of an input Quote shows.
const quoteMax = 40

// Quote returns s quoted for an error message, cut after about 40 bytes
// with its full length noted: an error never echoes unbounded input (a
// 1 GiB "username" must not come back in a 422).
func Quote(s string) string {
	if len(s) <= quoteMax {
		return fmt.Sprintf("%q", s)
	}
	cut := quoteMax
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%q… (%d bytes)", s[:cut], len(s))
}
