package auth

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
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

// signRaw signs the already encoded header and payload segments as given.
func signRaw(key []byte, hdr, payload string) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(hdr + "." + payload))
	return hdr + "." + payload + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// flipPaddingBits changes the unused low bits of a segment's last
// character, which lenient base64 decoders ignore.
func flipPaddingBits(seg string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, seg[len(seg)-1])
	return seg[:len(seg)-1] + string(alphabet[i^1])
}

type strictCase struct {
	name  string
	token string
	// jwtAccepts is true where golang-jwt accepts the token: these are the
	// documented differences.
	jwtAccepts bool
}

// strictCases are tokens with a valid HMAC that the verifier refuses as
// malformed: JSON or base64url with more than one reading.
func strictCases(t *testing.T, key []byte) []strictCase {
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	hdr := enc(`{"alg":"HS256","kid":"k1"}`)
	iat, exp := itoa(t0.Unix()), itoa(t0.Add(time.Hour).Unix())
	body := func(extra string) string {
		return enc(`{"sub":"alice","ver":7,"iat":` + iat + `,"exp":` + exp + `,"jti":"j1","iss":"chatctl"` + extra + `}`)
	}
	valid := signRaw(key, hdr, body(""))
	parts := strings.Split(valid, ".")
	if len(hdr)%4 == 0 {
		t.Fatal("the header must have padding bits for the test")
	}
	return []strictCase{
		{"ExpString", signRaw(key, hdr, enc(`{"sub":"alice","ver":7,"iat":`+iat+`,"exp":"`+exp+`","jti":"j1","iss":"chatctl"}`)), true},
		{"IatString", signRaw(key, hdr, enc(`{"sub":"alice","ver":7,"iat":"`+iat+`","exp":`+exp+`,"jti":"j1","iss":"chatctl"}`)), true},
		{"NbfString", signRaw(key, hdr, body(`,"nbf":"`+iat+`"`)), true},
		{"ExpNotANumber", signRaw(key, hdr, enc(`{"sub":"alice","ver":7,"iat":`+iat+`,"exp":"soon","jti":"j1","iss":"chatctl"}`)), false},
		{"ExpBool", signRaw(key, hdr, enc(`{"sub":"alice","ver":7,"iat":`+iat+`,"exp":true,"jti":"j1","iss":"chatctl"}`)), false},
		{"VerString", signRaw(key, hdr, enc(`{"sub":"alice","ver":"7","iat":`+iat+`,"exp":`+exp+`,"jti":"j1","iss":"chatctl"}`)), false},
		{"VerNegative", signRaw(key, hdr, enc(`{"sub":"alice","ver":-7,"iat":`+iat+`,"exp":`+exp+`,"jti":"j1","iss":"chatctl"}`)), false},
		{"SubNumber", signRaw(key, hdr, enc(`{"sub":7,"ver":7,"iat":`+iat+`,"exp":`+exp+`,"jti":"j1","iss":"chatctl"}`)), false},
		{"SidNumber", signRaw(key, hdr, body(`,"sid":7`)), false},
		{"DuplicateClaim", signRaw(key, hdr, body(`,"sub":"admin"`)), true},
		{"DuplicateExp", signRaw(key, hdr, body(`,"exp":`+itoa(t0.Add(999*time.Hour).Unix()))), true},
		{"DuplicateUnknownClaim", signRaw(key, hdr, body(`,"x":1,"x":2`)), true},
		{"DuplicateEscapedClaim", signRaw(key, hdr, body(`,"s\u0075b":"admin"`)), true},
		{"CaseVariantClaim", signRaw(key, hdr, body(`,"SUB":"admin"`)), true},
		{"FoldedClaim", signRaw(key, hdr, body(`,"ſub":"admin"`)), true},
		{"FoldedEscapedClaim", signRaw(key, hdr, body(`,"\u017fub":"admin"`)), true},
		{"KelvinClaim", signRaw(key, enc(`{"alg":"HS256","\u212aid":"k1","kid":"k1"}`), body("")), true},
		{"DuplicateHeader", signRaw(key, enc(`{"alg":"HS256","kid":"k9","kid":"k1"}`), body("")), true},
		{"DuplicateAlg", signRaw(key, enc(`{"alg":"none","alg":"HS256","kid":"k1"}`), body("")), true},
		{"CaseVariantHeader", signRaw(key, enc(`{"alg":"HS256","kid":"k1","KID":"k9"}`), body("")), true},
		{"SignaturePaddingBits", parts[0] + "." + parts[1] + "." + flipPaddingBits(parts[2]), true},
		{"HeaderPaddingBits", signRaw(key, flipPaddingBits(hdr), body("")), true},
		{"SignaturePadded", valid + "=", false},
		{"SignatureLineBreak", parts[0] + "." + parts[1] + "." + parts[2][:10] + "\n" + parts[2][10:], true},
		{"SignatureCRLF", parts[0] + "." + parts[1] + "." + parts[2] + "\r\n", true},
		{"PayloadLineBreak", signRaw(key, hdr, parts[1][:5]+"\n"+parts[1][5:]), true},
	}
}

// Ensure JSON and base64url with more than one reading are refused as
// malformed, with a detail saying why, and that where golang-jwt accepts
// them, that is exactly the difference strictViolation documents.
func TestVerifyStrict(t *testing.T) {
	now := t0
	tk, keys, _ := newTestTokens(&now)
	for _, tc := range strictCases(t, keys["k1"]) {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tk.VerifySignature(tc.token)
			if ReasonOf(err) != ReasonMalformed {
				t.Fatalf("got %v, want malformed", err)
			}
			_, oerr := oracle(tk, keys, tc.token)
			if (oerr == nil) != tc.jwtAccepts {
				t.Fatalf("golang-jwt verdict %v, the case says it accepts: %v", oerr, tc.jwtAccepts)
			}
			if tc.jwtAccepts && strictViolation(tc.token) == "" {
				t.Fatal("a difference from golang-jwt that strictViolation does not document")
			}
			t.Log(err)
		})
	}
	// The canonical spelling of the same claims verifies.
	valid := signRaw(keys["k1"], base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","kid":"k1"}`)),
		base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"alice","ver":7,"iat":`+itoa(t0.Unix())+`,"exp":`+itoa(t0.Add(time.Hour).Unix())+`,"jti":"j1","iss":"chatctl","x":{"sub":1,"sub":2},"y":[1,"}"]}`)))
	if _, err := tk.VerifySignature(valid); err != nil {
		t.Fatalf("canonical token refused: %v", err)
	}
}

// Ensure a token minted for a session carries its sid, and is refused once
// the session is denied, like a single revoked jti.
func TestVerifySession(t *testing.T) {
	now := t0
	tk, _, _ := newTestTokens(&now)
	s, c, err := tk.MintSession("alice", "user", 7, "ses_live", time.Hour)
	if err != nil || c.Sid != "ses_live" {
		t.Fatalf("MintSession: %+v %v", c, err)
	}
	if got, err := tk.Verify(s); err != nil || got.Sid != "ses_live" {
		t.Fatalf("Verify: %+v %v", got, err)
	}
	s, _, _ = tk.MintSession("alice", "user", 7, "denied-jti", time.Hour)
	if _, err := tk.Verify(s); ReasonOf(err) != ReasonRevoked {
		t.Fatalf("token of an ended session: %v, want revoked", err)
	}
	if _, m, _ := Decode(mustMint(t, tk)); m["sid"] != nil {
		t.Fatalf("a token without a session has sid %v", m["sid"])
	}
}

func mustMint(t *testing.T, tk *Tokens) string {
	t.Helper()
	s, _, err := tk.Mint("alice", "user", 7, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

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

// strictViolation says why token is one of the inputs VerifySignature
// refuses on purpose although jwt.Parser accepts them (jsonobj.go): a
// segment that is not canonical base64url, a member name given twice or
// differing from a registered one only by case folding, or a NumericDate
// written as a string. It returns "" for every other input. It is written
// independently of jsonobj.go, with json.Decoder and a re-encoding.
func strictViolation(token string) string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return ""
	}
	var segs [3][]byte
	for i, p := range parts {
		b, err := base64.RawURLEncoding.DecodeString(p)
		if err != nil {
			return "" // jwt.Parser refuses it as well
		}
		if base64.RawURLEncoding.EncodeToString(b) != p {
			return "segment " + strconv.Itoa(i) + " is not canonical base64url"
		}
		segs[i] = b
	}
	if v := objectViolation(segs[0], []string{"alg", "kid"}, nil); v != "" {
		return "header: " + v
	}
	if v := objectViolation(segs[1], []string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "role", "ver", "sid"}, []string{"exp", "nbf", "iat"}); v != "" {
		return "claims: " + v
	}
	return ""
}

// objectViolation walks the members of one JSON object.
func objectViolation(data []byte, known, dates []string) string {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return ""
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		name := tok.(string)
		if seen[name] {
			return "duplicate member " + name
		}
		seen[name] = true
		for _, k := range known {
			if name != k && strings.EqualFold(name, k) {
				return "member " + name + " folds to " + k
			}
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return ""
		}
		if slices.Contains(dates, name) && len(raw) > 0 && raw[0] == '"' {
			return name + " is a string"
		}
	}
	return ""
}

// agree checks VerifySignature's verdict (c, err) on token against the
// oracle's (oc, oerr): the same, except that VerifySignature refuses, as
// malformed, exactly the inputs strictViolation names, and never accepts
// one of them.
func agree(t *testing.T, token string, c *Claims, err error, oc *Claims, oerr error) {
	t.Helper()
	v := strictViolation(token)
	switch {
	case err == nil && v != "":
		t.Fatalf("accepted %q although %s", token, v)
	case err == nil && oerr != nil:
		t.Fatalf("verdicts differ on %q: ours valid, jwt %v", token, oerr)
	case err != nil && oerr == nil && v == "":
		t.Fatalf("verdicts differ on %q: ours %v, jwt valid", token, err)
	case err != nil && oerr == nil && ReasonOf(err) != ReasonMalformed:
		t.Fatalf("refused %q (%s) for %v, want malformed", token, v, err)
	case err != nil && ReasonOf(err) == "":
		t.Fatalf("error without a reason: %v", err)
	case err == nil && (c.Subject != oc.Subject || c.ID != oc.ID || c.Ver != oc.Ver || c.Sid != oc.Sid ||
		c.Role != oc.Role || c.Issuer != oc.Issuer || !c.ExpiresAt.Equal(oc.ExpiresAt.Time)):
		t.Fatalf("claims differ: ours %+v, jwt %+v", c, oc)
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
	for _, tc := range strictCases(&testing.T{}, keys["k1"]) {
		f.Add(tc.token)
	}
	f.Fuzz(func(t *testing.T, token string) {
		c, err := tk.VerifySignature(token)
		oc, oerr := oracle(tk, keys, token)
		agree(t, token, c, err, oc, oerr)
		if err != nil {
			return
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
	iat, exp := itoa(t0.Unix()), itoa(t0.Add(time.Hour).Unix())
	f.Add(`{"alg":"HS256","kid":"k1"}`, `{"sub":"a","iat":`+iat+`,"exp":"`+exp+`","jti":"j","iss":"chatctl"}`)
	f.Add(`{"alg":"HS256","kid":"k1","kid":"k1"}`, `{"sub":"a","iat":`+iat+`,"exp":`+exp+`,"jti":"j","iss":"chatctl"}`)
	f.Add(`{"alg":"HS256","kid":"k1"}`, `{"sub":"a","sub":"b","iat":`+iat+`,"exp":`+exp+`,"jti":"j","iss":"chatctl"}`)
	f.Add(`{"alg":"HS256","kid":"k1"}`, `{"sub":"a","iat":`+iat+`,"EXP":`+exp+`,"exp":`+exp+`,"jti":"j","iss":"chatctl","sid":"ses_x","ver":5}`)
	f.Add(`{"alg":"HS256","kid":"k1"}`, `{"\u017fub":"a","iat":`+iat+`,"exp":`+exp+`,"jti":"j","iss":"chatctl","x":[{"a":"}"}]}`)
	f.Fuzz(func(t *testing.T, hdr, payload string) {
		token := signRaw(keys["k1"], base64.RawURLEncoding.EncodeToString([]byte(hdr)), base64.RawURLEncoding.EncodeToString([]byte(payload)))
		c, err := tk.VerifySignature(token)
		oc, oerr := oracle(tk, keys, token)
		agree(t, token, c, err, oc, oerr)
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

// Ensure a random id (a jti or a kid) never starts with '-': the CLI takes
// one as an argument (`token revoke JTI`), where it would read as a flag.
// One draw in 64 would, so 10,000 draws find a regression.
func TestRandomIDNoLeadingDash(t *testing.T) {
	for _, n := range []int{9, 16} {
		seen := map[string]bool{}
		for range 10000 {
			id := RandomID(n)
			if strings.HasPrefix(id, "-") {
				t.Fatalf("RandomID(%d) = %q starts with '-'", n, id)
			}
			if len(id) != (n*8+5)/6 || seen[id] {
				t.Fatalf("RandomID(%d) = %q: wrong length or repeated", n, id)
			}
			seen[id] = true
		}
	}
}
