package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
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

// oracle verifies like VerifySignature with jwt.Parser, the library's
// reference implementation, pinned the same way.
func oracle(tk *Tokens, keys fakeKeys, token string) (*Claims, error) {
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{Algorithm}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithIssuer(tk.issuer),
		jwt.WithLeeway(tk.leeway),
		jwt.WithTimeFunc(tk.now),
	)
	c := new(Claims)
	_, err := p.ParseWithClaims(token, c, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if s, ok := keys[kid]; ok {
			return s, nil
		}
		return nil, errors.New("unknown kid")
	})
	if err == nil && (c.Subject == "" || c.ID == "" || c.IssuedAt == nil) {
		err = errors.New("missing claims")
	}
	return c, err
}

// FuzzVerify feeds arbitrary strings to the verifier: it must never panic,
// it must agree with jwt.Parser (the oracle) on every input, and whatever
// it accepts has a subject, HS256 and a known kid, and round-trips.
func FuzzVerify(f *testing.F) {
	now := t0
	tk, keys, _ := newTestTokens(&now)
	valid, _, _ := tk.Mint("alice", "user", 7, time.Hour)
	parts := strings.Split(valid, ".")
	f.Add(valid)
	f.Add(sign(&testing.T{}, jwt.SigningMethodHS256, "k1", keys["k1"], claims("alice", 7, t0.Add(-2*time.Hour), t0.Add(-time.Hour))))
	f.Add(base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." + parts[1] + ".")
	f.Add(sign(&testing.T{}, jwt.SigningMethodHS256, "k1", secret(), claims("alice", 7, t0, t0.Add(time.Hour))))
	f.Add(sign(&testing.T{}, jwt.SigningMethodHS256, "k1", keys["k1"], jwt.MapClaims{"sub": "a", "iat": t0.Unix(), "exp": t0.Add(time.Hour).Unix(), "nbf": t0.Add(time.Hour).Unix(), "jti": "j", "iss": "chatctl"}))
	f.Add(parts[0] + "=." + parts[1] + "." + parts[2])
	f.Add("a.b.c")
	f.Add("")
	f.Fuzz(func(t *testing.T, token string) {
		c, err := tk.VerifySignature(token)
		oc, oerr := oracle(tk, keys, token)
		if (err == nil) != (oerr == nil) {
			t.Fatalf("verdicts differ on %q: ours %v, jwt %v", token, err, oerr)
		}
		if err != nil {
			if ReasonOf(err) == "" {
				t.Fatalf("error without a reason: %v", err)
			}
			return
		}
		if c.Subject != oc.Subject || c.ID != oc.ID || c.Ver != oc.Ver || !c.ExpiresAt.Equal(oc.ExpiresAt.Time) {
			t.Fatalf("claims differ: ours %+v, jwt %+v", c, oc)
		}
		h, _, derr := Decode(token)
		if derr != nil || h["alg"] != Algorithm || h["kid"] != "k1" || c.Subject == "" {
			t.Fatalf("accepted %q: header %v claims %+v", token, h, c)
		}
		again, _, err := tk.Mint(c.Subject, c.Role, c.Ver, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tk.VerifySignature(again); err != nil {
			t.Fatalf("re-minted token rejected: %v", err)
		}
	})
}

// FuzzVerifyClaims signs arbitrary headers and payloads with the real
// key, so the fuzzer reaches the claim checks, and holds VerifySignature
// to jwt.Parser's verdict there too.
func FuzzVerifyClaims(f *testing.F) {
	now := t0
	tk, keys, _ := newTestTokens(&now)
	f.Add(`{"alg":"HS256","kid":"k1"}`, `{"sub":"a","iat":`+itoa(t0.Unix())+`,"exp":`+itoa(t0.Add(time.Hour).Unix())+`,"jti":"j","iss":"chatctl"}`)
	f.Add(`{"alg":"HS256","kid":"k1","typ":"JWT"}`, `{"sub":"a","iat":1.5e9,"exp":2e9,"jti":"j","iss":"chatctl","nbf":3e9}`)
	f.Add(`{"alg":"HS256","kid":"k1"}`, `{"sub":"a","iat":`+itoa(t0.Unix())+`,"exp":"soon","jti":"j","iss":"chatctl"}`)
	f.Add(`{"alg":"HS256","kid":"k1"}`, `{"sub":"a","iat":`+itoa(t0.Unix())+`,"exp":`+itoa(t0.Unix())+`,"jti":"j","iss":"chatctl","aud":["x"]}`)
	f.Add(`{"alg":"HS256","kid":"k1"} `, `{"sub":"a","iat":`+itoa(t0.Unix())+`,"exp":`+itoa(t0.Add(time.Hour).Unix())+`,"jti":"j","iss":"chatctl"} x`)
	f.Fuzz(func(t *testing.T, hdr, payload string) {
		signing := base64.RawURLEncoding.EncodeToString([]byte(hdr)) + "." + base64.RawURLEncoding.EncodeToString([]byte(payload))
		mac := hmac.New(sha256.New, keys["k1"])
		mac.Write([]byte(signing))
		token := signing + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
		c, err := tk.VerifySignature(token)
		oc, oerr := oracle(tk, keys, token)
		if (err == nil) != (oerr == nil) {
			t.Fatalf("verdicts differ on header %q payload %q: ours %v, jwt %v", hdr, payload, err, oerr)
		}
		if err == nil && (c.Subject != oc.Subject || c.ID != oc.ID || !c.ExpiresAt.Equal(oc.ExpiresAt.Time)) {
			t.Fatalf("claims differ: ours %+v, jwt %+v", c, oc)
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
