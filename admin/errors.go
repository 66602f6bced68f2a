package admin

import (
	"errors"
	"net/http"

	"github.com/chatctl/chatctl/auth"
	"github.com/chatctl/chatctl/store"
)

// errorKinds is the one table that maps errors to HTTP statuses and to the
// codes that carry them over the admin socket, so a remote Admin returns
// errors that match the same sentinels as a local one.
var errorKinds = []struct {
	code   string
	err    error
	status int
}{
	{"not_found", store.ErrNotFound, http.StatusNotFound},
	{"exists", store.ErrUserExists, http.StatusConflict},
	{"room_exists", store.ErrRoomExists, http.StatusConflict},
	{"bad_username", auth.ErrBadUsername, http.StatusUnprocessableEntity},
	{"bad_role", auth.ErrBadRole, http.StatusUnprocessableEntity},
	{"password_too_short", auth.ErrPasswordTooShort, http.StatusUnprocessableEntity},
	{"password_too_long", auth.ErrPasswordTooLong, http.StatusUnprocessableEntity},
	{"bad_hash", auth.ErrBadHash, http.StatusUnprocessableEntity},
	{"bad_request", ErrBadRequest, http.StatusUnprocessableEntity},
	{"user_disabled", ErrUserDisabled, http.StatusConflict},
	{"ttl_too_long", ErrTTLTooLong, http.StatusUnprocessableEntity},
	{"external_key", ErrExternalKey, http.StatusConflict},
	{"key_active", ErrKeyActive, http.StatusConflict},
	{"invalid_credentials", ErrInvalidCredentials, http.StatusUnauthorized},
	{"refresh_reused", store.ErrRefreshReused, http.StatusBadRequest},
	{"refresh_invalid", store.ErrRefreshInvalid, http.StatusBadRequest},
	{"unavailable", store.ErrUnavailable, http.StatusServiceUnavailable},
	{"no_file_backup", store.ErrNoFileBackup, http.StatusConflict},
}

// ErrorKind returns the wire code and HTTP status of err, or ("internal",
// 500) for errors that are not the caller's fault.
func ErrorKind(err error) (code string, status int) {
	for _, k := range errorKinds {
		if errors.Is(err, k.err) {
			return k.code, k.status
		}
	}
	return "internal", http.StatusInternalServerError
}

// remoteError is an error received over the admin socket: its message is
// the server's, and errors.Is matches the sentinel its code names.
type remoteError struct {
	msg      string
	sentinel error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.sentinel }

// errorFromCode rebuilds an error from its wire form.
func errorFromCode(code, msg string) error {
	for _, k := range errorKinds {
		if k.code == code {
			return &remoteError{msg: msg, sentinel: k.err}
		}
	}
	return errors.New(msg)
}
