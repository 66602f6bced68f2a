package auth

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// fakeKeys is a fixed key ring: kid -> secret, signing with "k1".
type fakeKeys map[string][]byte

func (k fakeKeys) SigningKey(time.Duration) (string, []byte, error) { return "k1", k["k1"], nil }
func (k fakeKeys) VerifyKey(kid string) ([]byte, bool)              { s, ok := k[kid]; return s, ok }

// fakeUsers maps names to their state.
type fakeUsers map[string]UserState

func (u fakeUsers) TokenState(name string) (UserState, error) { return u[name], nil }
func (u fakeUsers) Denied(jti string) bool                    { return jti == "denied-jti" }

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func secret() []byte {
	b := make([]byte, 32)
	rand.Read(b)
	return b
}

func newTestTokens(now *time.Time) (*Tokens, fakeKeys, fakeUsers) {
	keys := fakeKeys{"k1": secret()}
	users := fakeUsers{
		"alice": {Found: true, Version: 7, Role: "admin"},
		"dave":  {Found: true, Disabled: true, Version: 3},
		"erin":  {Found: true, Version: 99},
	}
	return NewTokens(keys, users, "chatctl", time.Second, func() time.Time { return *now }), keys, users
}

// sign builds a token by hand, for attacks Mint would never produce.
func sign(t *testing.T, method jwt.SigningMethod, kid string, key any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func claims(sub string, ver uint64, iat, exp time.Time) jwt.MapClaims {
	return jwt.MapClaims{"sub": sub, "ver": ver, "iat": iat.Unix(), "exp": exp.Unix(), "jti": "j1", "iss": "chatctl"}
}

// Ensure a minted token verifies and carries SPEC §5's claims.
func TestMintVerify(t *testing.T) {
	now := t0
	tk, _, _ := newTestTokens(&now)
	s, c, err := tk.Mint("alice", "user", 7, 30*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	h, m, err := Decode(s)
	if err != nil || h["alg"] != "HS256" || h["kid"] != "k1" {
		t.Fatalf("header %v, %v", h, err)
	}
	for _, k := range []string{"sub", "iat", "exp", "jti", "iss", "role", "ver"} {
		if _, ok := m[k]; !ok {
			t.Errorf("claim %s missing", k)
		}
	}
	got, err := tk.Verify(s)
	if err != nil {
		t.Fatal(err)
	}
	if got.Subject != "alice" || got.ID != c.ID || got.Role != "admin" {
		t.Fatalf("claims %+v (role must be the user's current one)", got)
	}
	if _, _, err := tk.Mint("alice", "user", 7, 0); err == nil {
		t.Fatal("zero ttl accepted")
	}
}

// Ensure every attack of RFC 8725 and every stale user state is rejected
// with the exact reason.
func TestVerifyReasons(t *testing.T) {
	now := t0
	tk, keys, _ := newTestTokens(&now)
	good := claims("alice", 7, t0, t0.Add(time.Hour))
	valid := sign(t, jwt.SigningMethodHS256, "k1", keys["k1"], good)
	parts := strings.Split(valid, ".")
	noneTok := func() string {
		h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT","kid":"k1"}`))
		return h + "." + parts[1] + "."
	}()
	tampered := func() string {
		c := base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"alice","ver":7,"iat":` + itoa(t0.Unix()) + `,"exp":` + itoa(t0.Add(999*time.Hour).Unix()) + `,"jti":"j1","iss":"chatctl","role":"admin"}`))
		return parts[0] + "." + c + "." + parts[2]
	}()
	tests := []struct {
		name  string
		token string
		want  Reason
	}{
		{"Valid", valid, ""},
		{"Malformed", "a.b.c", ReasonMalformed},
		{"NotThreeParts", "abc", ReasonMalformed},
		{"Empty", "", ReasonMalformed},
		{"AlgNone", noneTok, ReasonAlgorithm},
		{"AlgUnknown", base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"XY1","kid":"k1"}`)) + "." + parts[1] + "." + parts[2], ReasonAlgorithm},
		{"AlgHS512", sign(t, jwt.SigningMethodHS512, "k1", keys["k1"], good), ReasonAlgorithm},
		{"AlgNoneLib", sign(t, jwt.SigningMethodNone, "k1", jwt.UnsafeAllowNoneSignatureType, good), ReasonAlgorithm},
		{"UnknownKid", sign(t, jwt.SigningMethodHS256, "k9", keys["k1"], good), ReasonUnknownKey},
		{"NoKid", sign(t, jwt.SigningMethodHS256, "", keys["k1"], good), ReasonUnknownKey},
		{"ForeignSecret", sign(t, jwt.SigningMethodHS256, "k1", secret(), good), ReasonSignature},
		{"TamperedClaims", tampered, ReasonSignature},
		{"Expired", sign(t, jwt.SigningMethodHS256, "k1", keys["k1"], claims("alice", 7, t0.Add(-2*time.Hour), t0.Add(-time.Hour))), ReasonExpired},
		{"ExpiredBeyondLeeway", sign(t, jwt.SigningMethodHS256, "k1", keys["k1"], claims("alice", 7, t0.Add(-2*time.Hour), t0.Add(-2*time.Second))), ReasonExpired},
		{"WithinLeeway", sign(t, jwt.SigningMethodHS256, "k1", keys["k1"], claims("alice", 7, t0.Add(-2*time.Hour), t0)), ""},
		{"NoExp", sign(t, jwt.SigningMethodHS256, "k1", keys["k1"], jwt.MapClaims{"sub": "alice", "ver": 7, "iat": t0.Unix(), "jti": "j", "iss": "chatctl"}), ReasonMissingClaim},
		{"NoSub", sign(t, jwt.SigningMethodHS256, "k1", keys["k1"], jwt.MapClaims{"ver": 7, "iat": t0.Unix(), "exp": t0.Add(time.Hour).Unix(), "jti": "j", "iss": "chatctl"}), ReasonMissingClaim},
		{"IssuedInFuture", sign(t, jwt.SigningMethodHS256, "k1", keys["k1"], claims("alice", 7, t0.Add(time.Hour), t0.Add(2*time.Hour))), ReasonNotYetValid},
		{"WrongIssuer", sign(t, jwt.SigningMethodHS256, "k1", keys["k1"], jwt.MapClaims{"sub": "alice", "ver": 7, "iat": t0.Unix(), "exp": t0.Add(time.Hour).Unix(), "jti": "j", "iss": "evil"}), ReasonIssuer},
		{"UserRemoved", sign(t, jwt.SigningMethodHS256, "k1", keys["k1"], claims("zed", 1, t0, t0.Add(time.Hour))), ReasonUserRemoved},
		{"UserDisabled", sign(t, jwt.SigningMethodHS256, "k1", keys["k1"], claims("dave", 3, t0, t0.Add(time.Hour))), ReasonUserDisabled},
		{"DeniedJTI", sign(t, jwt.SigningMethodHS256, "k1", keys["k1"], jwt.MapClaims{"sub": "alice", "ver": 7, "iat": t0.Unix(), "exp": t0.Add(time.Hour).Unix(), "jti": "denied-jti", "iss": "chatctl"}), ReasonRevoked},
		{"Revoked", sign(t, jwt.SigningMethodHS256, "k1", keys["k1"], claims("erin", 98, t0, t0.Add(time.Hour))), ReasonRevoked},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tk.Verify(tc.token)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("valid token rejected: %v", err)
				}
				return
			}
			if got := ReasonOf(err); got != tc.want {
				t.Fatalf("reason %q (%v), want %q", got, err, tc.want)
			}
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("%v is not ErrInvalidToken", err)
			}
		})
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// Ensure Decode reads without checking, and fails clearly on junk.
func TestDecode(t *testing.T) {
	now := t0
	tk, _, _ := newTestTokens(&now)
	s, _, _ := tk.Mint("alice", "user", 7, time.Minute)
	h, c, err := Decode(" " + s + "\n")
	if err != nil || h["kid"] != "k1" || c["sub"] != "alice" {
		t.Fatalf("Decode = %v %v %v", h, c, err)
	}
	for _, bad := range []string{"", "x", "a.b", "!!.!!.!!", "e30.bm90IGpzb24.x"} {
		if _, _, err := Decode(bad); ReasonOf(err) != ReasonMalformed {
			t.Errorf("Decode(%q) = %v", bad, err)
		}
	}
}

// FuzzVerify feeds arbitrary strings to the verifier: it must never panic,
// and whatever it accepts has a subject, HS256 and a known kid.
func FuzzVerify(f *testing.F) {
	now := t0
	tk, keys, _ := newTestTokens(&now)
	valid, _, _ := tk.Mint("alice", "user", 7, time.Hour)
	f.Add(valid)
	f.Add(sign(&testing.T{}, jwt.SigningMethodHS256, "k1", keys["k1"], claims("alice", 7, t0.Add(-2*time.Hour), t0.Add(-time.Hour))))
	f.Add(base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." + strings.Split(valid, ".")[1] + ".")
	f.Add(sign(&testing.T{}, jwt.SigningMethodHS256, "k1", secret(), claims("alice", 7, t0, t0.Add(time.Hour))))
	f.Add("a.b.c")
	f.Add("")
	f.Fuzz(func(t *testing.T, token string) {
		c, err := tk.Verify(token)
		if err != nil {
			if ReasonOf(err) == "" {
				t.Fatalf("error without a reason: %v", err)
			}
			return
		}
		h, _, derr := Decode(token)
		if derr != nil || h["alg"] != Algorithm || h["kid"] != "k1" || c.Subject == "" {
			t.Fatalf("accepted %q: header %v claims %+v", token, h, c)
		}
		// Round trip: a token minted for the same subject verifies too.
		again, _, err := tk.Mint(c.Subject, c.Role, c.Ver, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tk.Verify(again); err != nil {
			t.Fatalf("re-minted token rejected: %v", err)
		}
	})
}

// BenchmarkMint measures signing one access token.
func BenchmarkMint(b *testing.B) {
	now := t0
	tk, _, _ := newTestTokens(&now)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := tk.Mint("alice", "user", 7, time.Hour); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifySignature measures the signature and claims checks
// without the user lookup.
func BenchmarkVerifySignature(b *testing.B) {
	now := t0
	tk, _, _ := newTestTokens(&now)
	s, _, _ := tk.Mint("alice", "user", 7, time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tk.VerifySignature(s); err != nil {
			b.Fatal(err)
		}
	}
}
