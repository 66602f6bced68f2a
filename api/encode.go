package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"unicode/utf8"

	"github.com/chatctl/chatctl/admin"
)

// encode writes v as JSON with status.
func encode(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// detail is the error body of SPEC §5: {"detail": "…"}, plus the OAuth2
// error code on /token and the admin error code for the CLI.
type detail struct {
	Detail string `json:"detail"`
	Error  string `json:"error,omitempty"`
	// ErrorDescription repeats Detail on /token, under RFC 6749 §5.2's name.
	ErrorDescription string `json:"error_description,omitempty"`
	Code             string `json:"code,omitempty"`
}

// errBody is a shortcut for a {"detail"} response.
func errBody(w http.ResponseWriter, status int, msg string) {
	encode(w, status, detail{Detail: msg})
}

// errUnsupportedMedia and errBodyTooLarge are decode failures.
var (
	errUnsupportedMedia = errors.New("expected a JSON body (Content-Type: application/json)")
	errBodyTooLarge     = errors.New("request body too large")
)

// decode reads a JSON body into a T. Unknown fields are refused so typos
// do not pass silently.
func decode[T any](r *http.Request) (T, error) {
	var v T
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, _ := mime.ParseMediaType(ct); mt != "application/json" {
			return v, errUnsupportedMedia
		}
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return v, errBodyTooLarge
		}
		if errors.Is(err, io.EOF) {
			return v, fmt.Errorf("%w: empty body, expected JSON", admin.ErrBadRequest)
		}
		return v, fmt.Errorf("%w: invalid JSON: %v", admin.ErrBadRequest, err)
	}
	return v, nil
}

// writeError answers err: the one place where errors become statuses.
// Internal errors are logged and the client sees only "Internal error".
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	switch {
	case errors.Is(err, errBodyTooLarge):
		errBody(w, http.StatusRequestEntityTooLarge, err.Error())
		return
	case errors.Is(err, errUnsupportedMedia):
		errBody(w, http.StatusUnsupportedMediaType, err.Error())
		return
	}
	code, status := admin.ErrorKind(err)
	if status == http.StatusServiceUnavailable {
		// The store is down (PostgreSQL): say when to retry; the cause,
		// with its host, is for the log only.
		log.Warn("store unavailable", "method", r.Method, "route", r.Pattern, "err", err)
		w.Header().Set("Retry-After", storeRetryAfter)
		encode(w, status, detail{Detail: storeDownDetail, Code: code})
		return
	}
	if status == http.StatusInternalServerError {
		log.Error("internal error", "method", r.Method, "route", r.Pattern, "err", err)
		encode(w, status, detail{Detail: "Internal error", Code: code})
		return
	}
	encode(w, status, detail{Detail: clipDetail(err.Error()), Code: code})
}

// storeRetryAfter is the Retry-After of a 503 for a store that is down,
// in seconds.
const storeRetryAfter = "5"

// storeDownDetail is the detail of that 503.
const storeDownDetail = "The store is unavailable; try again later"

// maxDetail bounds an error's detail. Messages quote their inputs through
// auth.Quote already; this is the net under any message that does not.
const maxDetail = 512

// clipDetail cuts msg to maxDetail bytes (on a rune boundary).
func clipDetail(msg string) string {
	if len(msg) <= maxDetail {
		return msg
	}
	cut := maxDetail
	for cut > 0 && !utf8.RuneStart(msg[cut]) {
		cut--
	}
	return msg[:cut] + "… (truncated)"
}
