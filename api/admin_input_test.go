package api

import (
	"net/http"
	"strings"
	"testing"
)

// Ensure every bad input to the /admin API is a 4xx with a code and a
// detail, never a 500: durations that are negative, zero-ish, huge or of
// the wrong type, and wrong JSON types on every endpoint with a body.
func TestAdminBadInput(t *testing.T) {
	e := newEnv(t, nil)
	e.addUser("root", "admin")
	e.addUser("carol", "")
	tok := e.issue("root")
	tests := []struct {
		name, method, path, body string
		status                   int
		code                     string
		detail                   string // a part the detail must contain
	}{
		{"NegativeTTL", "POST", "/admin/users/carol/tokens", `{"ttl":"-5s"}`, 422, "bad_request", "at least 1s"},
		{"SubSecondTTL", "POST", "/admin/users/carol/tokens", `{"ttl":"500ms"}`, 422, "bad_request", "at least 1s"},
		{"NegativeZeroTTL", "POST", "/admin/users/carol/tokens", `{"ttl":"-1ns"}`, 422, "bad_request", "at least 1s"},
		{"HugeTTL", "POST", "/admin/users/carol/tokens", `{"ttl":"99999999999h"}`, 422, "bad_request", "invalid"},
		{"LongTTL", "POST", "/admin/users/carol/tokens", `{"ttl":"100000h"}`, 422, "ttl_too_long", "token.refresh_ttl"},
		{"NumericTTL", "POST", "/admin/users/carol/tokens", `{"ttl":300}`, 422, "bad_request", "duration"},
		{"NullTTL", "POST", "/admin/users/carol/tokens", `{"ttl":null}`, 422, "bad_request", "duration"},
		{"ArrayBody", "POST", "/admin/users/carol/tokens", `[]`, 422, "bad_request", "invalid JSON"},
		{"UnknownField", "POST", "/admin/users/carol/tokens", `{"ttl":"5m","admin":true}`, 422, "bad_request", "unknown field"},
		{"DisabledString", "PUT", "/admin/users/carol/disabled", `{"disabled":"yes"}`, 422, "bad_request", "invalid JSON"},
		{"RoleNumber", "PUT", "/admin/users/carol/role", `{"role":1}`, 422, "bad_request", "invalid JSON"},
		{"PasswordNumber", "PUT", "/admin/users/carol/password", `{"password":12345678}`, 422, "bad_request", "invalid JSON"},
		{"AddNameArray", "POST", "/admin/users", `{"name":["a"],"password":"x"}`, 422, "bad_request", "invalid JSON"},
		{"AddNullBody", "POST", "/admin/users", `null`, 422, "bad_username", "invalid username"},
		{"RevokeAllString", "POST", "/admin/revoke", `{"user":"carol","all":"yes"}`, 422, "bad_request", "invalid JSON"},
		{"RevokeEmpty", "POST", "/admin/revoke", `{}`, 422, "bad_request", ""},
		{"InspectNumber", "POST", "/admin/tokens/inspect", `{"token":1}`, 422, "bad_request", "invalid JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.on(t).call(tc.method, tc.path, tok, tc.body)
			wantCode(t, r, tc.status, tc.code)
			if d, _ := r.json(t)["detail"].(string); !strings.Contains(d, tc.detail) {
				t.Errorf("detail %q does not contain %q", d, tc.detail)
			}
		})
	}
	// A ttl of exactly one second is the smallest accepted.
	if r := e.call(http.MethodPost, "/admin/users/carol/tokens", tok, `{"ttl":"1s"}`); r.status != http.StatusOK || r.json(t)["expires_in"] != 1.0 {
		t.Errorf("ttl 1s = %d %s", r.status, r.body)
	}
}
