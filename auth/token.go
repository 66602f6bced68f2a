package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Algorithm is the only JWT algorithm chatctl signs or accepts.
const Algorithm = "HS256"

// Claims are the claims of a chatctl access token (SPEC §5): the
// registered sub, iat, exp, jti and iss, plus the user's role and token
// version at the time of issue, and the session it was minted for.
type Claims struct {
	jwt.RegisteredClaims
	Role string `json:"role,omitempty"`
	// Ver is the user's token version; a token whose Ver differs from the
	// user's current one has been revoked.
	Ver uint64 `json:"ver"`
	// Sid is the session (refresh-token family) whose login or refresh
	// minted the token; empty for `token issue`. Ending the session
	// revokes the token.
	Sid string `json:"sid,omitempty"`
	// Kid is the header's key id, set by verification (not a claim), so
	// that `key retire` can find the connections opened with the key.
	Kid string `json:"-"`
}

// Keys supplies HS256 secrets by key id.
type Keys interface {
	// SigningKey returns the key that signs a new token living ttl.
	SigningKey(ttl time.Duration) (kid string, secret []byte, err error)
	// VerifyKey returns the secret for kid while it still verifies.
	VerifyKey(kid string) (secret []byte, ok bool)
}

// UserState is what verification needs to know of a token's user now.
type UserState struct {
	Found    bool
	Disabled bool
	Version  uint64
	Role     string
}

// Users looks up the current state of a token's subject.
type Users interface {
	TokenState(name string) (UserState, error)
	// Denied reports whether id, a token's jti or its session's sid, was
	// revoked. It is called on every verification: an in-memory lookup.
	Denied(id string) bool
}

// Reason says which check a token failed. The strings are what
// `chatctl token inspect` prints.
type Reason string

// Reasons a token is not valid.
const (
	ReasonMalformed    Reason = "malformed"
	ReasonAlgorithm    Reason = "wrong algorithm"
	ReasonUnknownKey   Reason = "unknown key"
	ReasonSignature    Reason = "bad signature"
	ReasonExpired      Reason = "expired"
	ReasonNotYetValid  Reason = "not yet valid"
	ReasonIssuer       Reason = "wrong issuer"
	ReasonMissingClaim Reason = "missing claim"
	ReasonUserRemoved  Reason = "user removed"
	ReasonUserDisabled Reason = "user disabled"
	ReasonRevoked      Reason = "revoked"
)

// ErrInvalidToken matches every *TokenError with errors.Is.
var ErrInvalidToken = errors.New("invalid token")

// TokenError is returned by Verify: Reason is the failed check, Detail a
// human explanation.
type TokenError struct {
	Reason Reason
	Detail string
}

func (e *TokenError) Error() string {
	if e.Detail == "" {
		return string(e.Reason)
	}
	return string(e.Reason) + ": " + e.Detail
}

// Is makes errors.Is(err, ErrInvalidToken) true.
func (e *TokenError) Is(target error) bool { return target == ErrInvalidToken }

// Reason returns the reason of a token error, or "" for other errors.
func ReasonOf(err error) Reason {
	var te *TokenError
	if errors.As(err, &te) {
		return te.Reason
	}
	return ""
}

// Tokens mints and verifies access tokens. It is safe for concurrent use.
type Tokens struct {
	keys   Keys
	users  Users
	issuer string
	leeway time.Duration
	now    func() time.Time
}

// NewTokens returns a Tokens that signs with keys, checks subjects against
// users, writes and requires issuer, and tolerates leeway of clock skew.
// now is the clock (nil for time.Now).
func NewTokens(keys Keys, users Users, issuer string, leeway time.Duration, now func() time.Time) *Tokens {
	if now == nil {
		now = time.Now
	}
	return &Tokens{keys: keys, users: users, issuer: issuer, leeway: leeway, now: now}
}

// Mint signs a token for user name with role and token version ver,
// valid for ttl.
func (t *Tokens) Mint(name, role string, ver uint64, ttl time.Duration) (string, *Claims, error) {
	return t.MintSession(name, role, ver, "", ttl)
}

// MintSession is Mint for a token of session sid (its sid claim), which
// stops verifying when the session ends.
func (t *Tokens) MintSession(name, role string, ver uint64, sid string, ttl time.Duration) (string, *Claims, error) {
	if ttl <= 0 {
		return "", nil, fmt.Errorf("token lifetime must be positive, got %s", ttl)
	}
	kid, secret, err := t.keys.SigningKey(ttl)
	if err != nil {
		return "", nil, fmt.Errorf("signing key: %w", err)
	}
	now := t.now().Truncate(time.Second)
	c := &Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   name,
			Issuer:    t.issuer,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
			ID:        RandomID(16),
		},
		Role: role,
		Ver:  ver,
		Sid:  sid,
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(secret)
	if err != nil {
		return "", nil, fmt.Errorf("sign token: %w", err)
	}
	return s, c, nil
}

// Verify checks a token completely: structure, algorithm, key, signature,
// exp/iat/iss, then that its user exists, is enabled and still has the
// token's version. Failures are *TokenError naming the check.
func (t *Tokens) Verify(token string) (*Claims, error) {
	c, err := t.VerifySignature(token)
	if err != nil {
		return nil, err
	}
	st, err := t.users.TokenState(c.Subject)
	if err != nil {
		return nil, fmt.Errorf("look up user: %w", err)
	}
	switch {
	case !st.Found:
		return nil, &TokenError{Reason: ReasonUserRemoved, Detail: fmt.Sprintf("user %q no longer exists", c.Subject)}
	case st.Disabled:
		return nil, &TokenError{Reason: ReasonUserDisabled, Detail: fmt.Sprintf("user %q is disabled", c.Subject)}
	case st.Version != c.Ver:
		return nil, &TokenError{Reason: ReasonRevoked, Detail: "the user's tokens were revoked after this one was issued"}
	case t.users.Denied(c.ID):
		return nil, &TokenError{Reason: ReasonRevoked, Detail: "this token was revoked"}
	case c.Sid != "" && t.users.Denied(c.Sid):
		return nil, &TokenError{Reason: ReasonRevoked, Detail: "the session this token belongs to was ended"}
	}
	c.Role = st.Role // the current role, not the one at issue time
	return c, nil
}

// VerifySignature checks everything Verify does except the user's current
// state: the structure, the algorithm (pinned to HS256, RFC 8725 §3.1), the
// key by kid, the signature, then exp (required), iat and nbf with the
// leeway, and iss.
//
// It is written out rather than delegated to jwt.Parser because it runs on
// every request: reading the two header members it needs instead of
// decoding a map halves the cost of a check. It is also stricter than
// jwt.Parser where JSON and base64url allow several spellings of one token
// (see jsonobj.go); FuzzVerify holds it to jwt.Parser's verdict on every
// other input.
func (t *Tokens) VerifySignature(token string) (*Claims, error) {
	h, rest, ok1 := strings.Cut(token, ".")
	p, sig, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.Contains(sig, ".") {
		return nil, &TokenError{Reason: ReasonMalformed, Detail: "want three dot-separated parts"}
	}
	hdr, err := decodeHeader(h)
	if err != nil {
		return nil, &TokenError{Reason: ReasonMalformed, Detail: "header: " + err.Error()}
	}
	if hdr.Alg != Algorithm {
		return nil, &TokenError{Reason: ReasonAlgorithm, Detail: fmt.Sprintf("alg is %q, only %s is accepted", hdr.Alg, Algorithm)}
	}
	if hdr.Kid == "" {
		return nil, &TokenError{Reason: ReasonUnknownKey, Detail: "the header has no kid"}
	}
	secret, ok := t.keys.VerifyKey(hdr.Kid)
	if !ok {
		return nil, &TokenError{Reason: ReasonUnknownKey, Detail: fmt.Sprintf("no signing key with kid %q", hdr.Kid)}
	}
	got, err := decodeStrict(sig)
	if err != nil {
		return nil, &TokenError{Reason: ReasonMalformed, Detail: "signature: " + err.Error()}
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(token[:len(h)+1+len(p)]))
	if !hmac.Equal(mac.Sum(nil), got) {
		return nil, &TokenError{Reason: ReasonSignature, Detail: "the signature does not match the signing key"}
	}
	c, err := decodeClaims(p)
	if err != nil {
		return nil, &TokenError{Reason: ReasonMalformed, Detail: "claims: " + err.Error()}
	}
	c.Kid = hdr.Kid
	now := t.now()
	switch {
	case c.ExpiresAt == nil:
		return nil, &TokenError{Reason: ReasonMissingClaim, Detail: "exp is required"}
	case !now.Before(c.ExpiresAt.Add(t.leeway)):
		return nil, &TokenError{Reason: ReasonExpired, Detail: "expired at " + when(c.ExpiresAt)}
	case c.IssuedAt != nil && now.Before(c.IssuedAt.Add(-t.leeway)):
		return nil, &TokenError{Reason: ReasonNotYetValid, Detail: "issued in the future, at " + when(c.IssuedAt)}
	case c.NotBefore != nil && now.Before(c.NotBefore.Add(-t.leeway)):
		return nil, &TokenError{Reason: ReasonNotYetValid, Detail: "not valid before " + when(c.NotBefore)}
	case c.Issuer != t.issuer:
		return nil, &TokenError{Reason: ReasonIssuer, Detail: fmt.Sprintf("iss is %q, this server's issuer is %q", c.Issuer, t.issuer)}
	case c.Subject == "" || c.ID == "" || c.IssuedAt == nil:
		return nil, &TokenError{Reason: ReasonMissingClaim, Detail: "sub, jti and iat are required"}
	}
	return c, nil
}

// decodeClaims reads the claims member by member (see members): no
// reflection, and NumericDates converted as jwt.NumericDate does, which
// made a check about twice as fast as json.Unmarshal into jwt's types.
// Unknown members are ignored; a registered one of the wrong type is an
// error, as it is for encoding/json.
func decodeClaims(seg string) (*Claims, error) {
	data, err := decodeStrict(seg)
	if err != nil {
		return nil, err
	}
	c := new(Claims)
	err = members(data, claimNames[:], func(name, raw []byte) error {
		var err error
		switch string(name) {
		case "iss":
			c.Issuer, err = jsonString(name, raw)
		case "sub":
			c.Subject, err = jsonString(name, raw)
		case "jti":
			c.ID, err = jsonString(name, raw)
		case "role":
			c.Role, err = jsonString(name, raw)
		case "sid":
			c.Sid, err = jsonString(name, raw)
		case "ver":
			c.Ver, err = jsonUint(name, raw)
		case "exp":
			c.ExpiresAt, err = jsonDate(name, raw)
		case "nbf":
			c.NotBefore, err = jsonDate(name, raw)
		case "iat":
			c.IssuedAt, err = jsonDate(name, raw)
		case "aud":
			if !isNull(raw) {
				err = json.Unmarshal(raw, &c.Audience)
			}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// decodeHeader reads the header members verification needs.
func decodeHeader(seg string) (header, error) {
	var h header
	data, err := decodeStrict(seg)
	if err != nil {
		return h, err
	}
	err = members(data, headerNames[:], func(name, raw []byte) error {
		var err error
		switch string(name) {
		case "alg":
			h.Alg, err = jsonString(name, raw)
		case "kid":
			h.Kid, err = jsonString(name, raw)
		}
		return err
	})
	return h, err
}

// numericDate converts seconds since the epoch as jwt.NumericDate does.
func numericDate(n json.Number) (*jwt.NumericDate, error) {
	f, err := n.Float64()
	if err != nil {
		return nil, fmt.Errorf("not a NumericDate: %w", err)
	}
	round, frac := math.Modf(f)
	return jwt.NewNumericDate(time.Unix(int64(round), int64(frac*1e9))), nil
}

// header is the JOSE header fields verification reads.
type header struct {
	Alg string
	Kid string
}

// when formats a NumericDate for details.
func when(d *jwt.NumericDate) string {
	return d.UTC().Format(time.RFC3339)
}

// decodeSegment decodes a segment leniently, for Decode only.
func decodeSegment(seg string, v any) error {
	data, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return fmt.Errorf("not base64url: %w", err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	return nil
}

// Decode splits a token into its header and claims without checking
// anything, for `token inspect --no-verify`.
func Decode(token string) (header, claims map[string]any, err error) {
	parts := strings.Split(strings.TrimSpace(token), ".")
	if len(parts) != 3 {
		return nil, nil, &TokenError{Reason: ReasonMalformed, Detail: "want three dot-separated parts"}
	}
	for i := range parts {
		parts[i] = strings.TrimRight(parts[i], "=") // be lenient when only decoding
	}
	if err := decodeSegment(parts[0], &header); err != nil {
		return nil, nil, &TokenError{Reason: ReasonMalformed, Detail: "header: " + err.Error()}
	}
	if err := decodeSegment(parts[1], &claims); err != nil {
		return nil, nil, &TokenError{Reason: ReasonMalformed, Detail: "claims: " + err.Error()}
	}
	return header, claims, nil
}

// RandomID returns n random bytes in base64url, for jti and kid values.
// It never starts with '-', so that the value can be given to a command
// as it is (`chatctl token revoke JTI`) without being taken for a flag:
// such a draw (1 in 64) is drawn again.
func RandomID(n int) string {
	b := make([]byte, n)
	for {
		if _, err := rand.Read(b); err != nil {
			panic("crypto/rand: " + err.Error()) // never fails on supported systems
		}
		if id := base64.RawURLEncoding.EncodeToString(b); n == 0 || id[0] != '-' {
			return id
		}
	}
}
