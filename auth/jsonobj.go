package auth

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// Strict decoding of the JOSE header and the claims.
//
// JSON libraries disagree on inputs that RFC 8259 leaves open, and a token
// that two parsers read differently is a token an attacker can shape (RFC
// 8725 §2.8, "Multiplicity of JSON encodings"). So the verifier refuses
// them outright instead of picking one reading:
//
//   - a member name given twice (encoding/json keeps the last, others the
//     first or fail);
//   - a member name that differs from a registered one only in case or by
//     Unicode folding ("EXP", "ſub"): encoding/json maps it onto the field,
//     a case-sensitive parser ignores it;
//   - a NumericDate (exp, nbf, iat) written as a JSON string: encoding/json
//     (and so golang-jwt) reads "exp":"1700000000" as a number, RFC 7519
//     §2 says it is a number;
//   - a segment that is not canonical base64url (RFC 7515 §2, RFC 4648
//     §3.5): padding bits set in the last character, '=' padding, or line
//     breaks, which Go's decoder skips. Each would give one token several
//     spellings that all verify.
//
// FuzzVerify holds the verifier to golang-jwt's verdict everywhere except
// on exactly these inputs.

// strictB64 decodes base64url without padding and refuses set padding bits.
var strictB64 = base64.RawURLEncoding.Strict()

// decodeStrict decodes one token segment, refusing non-canonical forms.
func decodeStrict(seg string) ([]byte, error) {
	// Strict still skips CR and LF (encoding/base64 docs); refuse them.
	if strings.ContainsAny(seg, "\r\n") {
		return nil, errors.New("not canonical base64url: line break")
	}
	b, err := strictB64.DecodeString(seg)
	if err != nil {
		return nil, fmt.Errorf("not canonical base64url: %w", err)
	}
	return b, nil
}

// registered lists the member names the verifier reads, per segment.
var (
	headerNames = [...]string{"alg", "kid"}
	claimNames  = [...]string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "role", "ver", "sid"}
)

// maxSmallObject is how many member names are checked for duplicates by
// comparison; larger objects (never minted by chatctl) use a map, so a
// huge payload costs linear time, not quadratic.
const maxSmallObject = 16

// members calls fn with each member of the JSON object data, in order: its
// name, unescaped, and its raw value. It refuses a value that is not an
// object, a name given twice, and a name that folds to one of known without
// being it. fn's error stops the walk.
func members(data []byte, known []string, fn func(name []byte, raw []byte) error) error {
	if !json.Valid(data) {
		return errors.New("not JSON")
	}
	i := skipSpace(data, 0)
	if data[i] != '{' {
		return errors.New("not a JSON object")
	}
	var small [maxSmallObject][]byte
	seen := small[:0]
	var many map[string]struct{}
	i = skipSpace(data, i+1)
	for data[i] != '}' {
		end, plain := endString(data, i)
		name := data[i+1 : end-1]
		if !plain {
			var s string
			if err := json.Unmarshal(data[i:end], &s); err != nil {
				return err
			}
			name = []byte(s)
		}
		for _, k := range known {
			// Folding keeps an ASCII name's length; only others (ſ, K)
			// can fold to a shorter registered name.
			if (!plain || len(name) == len(k)) && string(name) != k && bytes.EqualFold(name, []byte(k)) {
				return fmt.Errorf("member %q differs from %q only in case", name, k)
			}
		}
		if many == nil && len(seen) == maxSmallObject {
			many = make(map[string]struct{}, 2*maxSmallObject)
			for _, n := range seen {
				many[string(n)] = struct{}{}
			}
		}
		dup := false
		if many != nil {
			_, dup = many[string(name)]
			many[string(name)] = struct{}{}
		} else {
			for _, n := range seen {
				dup = dup || bytes.Equal(n, name)
			}
			seen = append(seen, name)
		}
		if dup {
			return fmt.Errorf("member %q appears twice", name)
		}
		i = skipSpace(data, end) + 1 // past ':'
		i = skipSpace(data, i)
		vend := endValue(data, i)
		if err := fn(name, data[i:vend]); err != nil {
			return err
		}
		i = skipSpace(data, vend)
		if data[i] == ',' {
			i = skipSpace(data, i+1)
		}
	}
	return nil
}

// The helpers below walk JSON that json.Valid accepted, so they need not
// report syntax errors; they never index past the data either way.

func skipSpace(d []byte, i int) int {
	for i < len(d) && (d[i] == ' ' || d[i] == '\t' || d[i] == '\n' || d[i] == '\r') {
		i++
	}
	if i >= len(d) {
		return len(d) - 1 // only reachable on invalid input; keeps indexes safe
	}
	return i
}

// endString returns the index after the string starting at d[i] ('"'), and
// whether its content is plain: printable ASCII without escapes, so that
// its bytes are its value.
func endString(d []byte, i int) (end int, plain bool) {
	plain = true
	for i++; i < len(d); i++ {
		switch c := d[i]; {
		case c == '\\':
			plain = false
			i++
		case c == '"':
			return i + 1, plain
		case c < 0x20 || c >= utf8.RuneSelf:
			plain = false
		}
	}
	return len(d), plain
}

// endValue returns the index after the value starting at d[i].
func endValue(d []byte, i int) int {
	depth := 0
	for i < len(d) {
		switch d[i] {
		case '"':
			i, _ = endString(d, i)
			if depth == 0 {
				return i
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth <= 0 {
				return i + 1
			}
		default:
			if depth == 0 { // a number, true, false or null
				for i < len(d) && !endsLiteral(d[i]) {
					i++
				}
				return i
			}
		}
		i++
	}
	return i
}

// endsLiteral reports whether c ends a number or a literal.
func endsLiteral(c byte) bool {
	switch c {
	case ' ', '\t', '\r', '\n', ',', '}', ']':
		return true
	}
	return false
}

// isNull reports whether raw is the literal null, which encoding/json (and
// so golang-jwt) reads as "absent" for every claim.
func isNull(raw []byte) bool { return string(raw) == "null" }

// jsonString decodes a string value; null is "".
func jsonString(name, raw []byte) (string, error) {
	switch {
	case isNull(raw):
		return "", nil
	case raw[0] != '"':
		return "", fmt.Errorf("%s must be a string", name)
	}
	if _, plain := endString(raw, 0); plain {
		return string(raw[1 : len(raw)-1]), nil
	}
	var s string
	err := json.Unmarshal(raw, &s)
	return s, err
}

// jsonDate decodes a NumericDate; null is nil. A string is refused even
// when it holds digits.
func jsonDate(name, raw []byte) (*jwt.NumericDate, error) {
	switch {
	case isNull(raw):
		return nil, nil
	case raw[0] != '-' && (raw[0] < '0' || raw[0] > '9'):
		return nil, fmt.Errorf("%s must be a number (seconds since the epoch), not %s", name, kind(raw))
	}
	return numericDate(json.Number(raw))
}

// jsonUint decodes an unsigned integer as encoding/json does; null is 0.
func jsonUint(name, raw []byte) (uint64, error) {
	if isNull(raw) {
		return 0, nil
	}
	n, err := strconv.ParseUint(string(raw), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s must be an unsigned integer", name)
	}
	return n, nil
}

// kind names a JSON value's type for error details.
func kind(raw []byte) string {
	switch raw[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	default:
		return "a boolean"
	}
}
