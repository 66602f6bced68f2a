package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

// Pre-flight causes. A PreflightError matches exactly one of them with
// errors.Is, so the CLI can choose an exit message or a hint.
var (
	// ErrServerDown is returned when nothing listens at the target
	// (connection refused) or it does not answer within the timeout.
	ErrServerDown = errors.New("server down")
	// ErrNotChatctl is returned when the target answers but is not a
	// chatctl server at that URL (404, or a body of the wrong shape).
	ErrNotChatctl = errors.New("not a chatctl server")
	// ErrUnauthorized is returned when the server rejects the token or the
	// password (401).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrForbidden is returned when the server refuses the request (403),
	// for a WebSocket most often because of ws.allowed_origins.
	ErrForbidden = errors.New("forbidden")
	// ErrRateLimited is returned when the server answers 429.
	ErrRateLimited = errors.New("rate limited")
)

// PreflightError is a one-line, user-facing explanation of why the target
// cannot be benchmarked. Kind is one of the Err* causes above.
type PreflightError struct {
	Kind error  // ErrServerDown, ErrNotChatctl, ...
	Msg  string // one line, names the URL and the cause
	Err  error  // underlying error, if any
}

// Error returns the one-line message.
func (e *PreflightError) Error() string { return e.Msg }

// Is matches the cause.
func (e *PreflightError) Is(target error) bool { return target == e.Kind }

// Unwrap returns the underlying error.
func (e *PreflightError) Unwrap() error { return e.Err }

// preflightTimeout bounds each pre-flight request, so a black-holed address
// fails in seconds rather than at the kernel's TCP timeout.
const preflightTimeout = 5 * time.Second

// Check verifies before a run that the target is a reachable chatctl server
// that accepts token: GET /users/me, then (when ws is set) one WebSocket
// upgrade at /ws. With raw set it only tries the WebSocket upgrade without a
// token (the gorilla chat example has no API). Errors are *PreflightError.
func Check(ctx context.Context, t Target, token string, ws, raw bool) error {
	ctx, cancel := context.WithTimeout(ctx, preflightTimeout)
	defer cancel()
	if !raw {
		if err := checkMe(ctx, t, token); err != nil {
			return err
		}
	}
	if !ws && !raw {
		return nil
	}
	endpoint, err := t.wsEndpoint()
	if err != nil {
		return err
	}
	d := websocket.Dialer{HandshakeTimeout: preflightTimeout}
	c, resp, err := d.DialContext(ctx, endpoint, wsHeader(t, token, raw))
	if err != nil {
		if resp != nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
			return describeStatus("GET /ws", endpoint, resp.StatusCode, body)
		}
		return describeDialError(endpoint, err)
	}
	return c.Close()
}

// checkMe asks GET /users/me and checks the answer looks like chatctl's.
func checkMe(ctx context.Context, t Target, token string) error {
	base, err := t.httpBase()
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/users/me", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return describeDialError(base, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return describeStatus("GET /users/me", base, resp.StatusCode, body)
	}
	var me struct {
		Username string `json:"username"`
	}
	if json.Unmarshal(body, &me) != nil || me.Username == "" {
		return &PreflightError{Kind: ErrNotChatctl,
			Msg: fmt.Sprintf("%s is not a chatctl server: GET /users/me answered 200 without a username (wrong --url?)", base)}
	}
	return nil
}

// wsHeader builds the upgrade request headers.
func wsHeader(t Target, token string, raw bool) http.Header {
	h := http.Header{}
	if !raw && token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	if t.Origin != "" {
		h.Set("Origin", t.Origin)
	}
	return h
}

// describeStatus turns a non-success HTTP status into a PreflightError.
func describeStatus(what, where string, status int, body []byte) error {
	detail := ""
	var e struct {
		Detail string `json:"detail"`
	}
	if json.Unmarshal(body, &e) == nil && e.Detail != "" {
		detail = fmt.Sprintf(" (%q)", e.Detail)
	}
	pe := &PreflightError{Kind: ErrNotChatctl}
	switch status {
	case http.StatusUnauthorized:
		pe.Kind = ErrUnauthorized
		pe.Msg = fmt.Sprintf("%s at %s: 401 unauthorized%s: bad, expired or revoked token, or wrong password", what, where, detail)
	case http.StatusForbidden:
		pe.Kind = ErrForbidden
		pe.Msg = fmt.Sprintf("%s at %s: 403 forbidden%s: origin not in ws.allowed_origins, or the user lacks the right", what, where, detail)
	case http.StatusNotFound, http.StatusMethodNotAllowed:
		pe.Msg = fmt.Sprintf("%s at %s: %d: not a chatctl server at this URL (wrong --url?)", what, where, status)
	case http.StatusTooManyRequests:
		pe.Kind = ErrRateLimited
		pe.Msg = fmt.Sprintf("%s at %s: 429 too many requests%s: wait and retry", what, where, detail)
	case http.StatusBadRequest:
		// gorilla answers a plain HTTP request at a WebSocket path with 400.
		pe.Msg = fmt.Sprintf("%s at %s: 400 bad request%s: not a chatctl endpoint at this URL?", what, where, detail)
	default:
		pe.Msg = fmt.Sprintf("%s at %s: unexpected status %d%s", what, where, status, detail)
	}
	return pe
}

// describeDialError turns a transport error into a PreflightError.
func describeDialError(where string, err error) error {
	kind := errKind(err)
	pe := &PreflightError{Kind: ErrServerDown, Err: err}
	switch kind {
	case "refused":
		pe.Msg = fmt.Sprintf("server down: connection refused at %s (is `chatctl serve` running?)", where)
	case "timeout":
		pe.Msg = fmt.Sprintf("server down: no answer from %s within %v", where, preflightTimeout)
	case "dns":
		pe.Msg = fmt.Sprintf("server down: cannot resolve the host of %s", where)
	case "bad_handshake":
		pe.Kind = ErrNotChatctl
		pe.Msg = fmt.Sprintf("%s did not upgrade to WebSocket: not a chatctl server at this URL?", where)
	default:
		pe.Msg = fmt.Sprintf("cannot reach %s: %v", where, err)
	}
	return pe
}

// errKind sorts a transport error into a short label for result maps.
// The labels are part of the JSON output: refused, reset, timeout, eof,
// fd_limit, no_ports, dns, bad_handshake, canceled, closed, other.
func errKind(err error) string {
	var dnsErr *net.DNSError
	var netErr net.Error
	switch {
	case err == nil:
		return ""
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "reset"
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return "fd_limit"
	case errors.Is(err, syscall.EADDRNOTAVAIL), errors.Is(err, syscall.EADDRINUSE):
		return "no_ports" // ephemeral ports exhausted for this source address
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	case errors.As(err, &dnsErr):
		return "dns"
	case errors.As(err, &netErr) && netErr.Timeout():
		return "timeout"
	case errors.Is(err, websocket.ErrBadHandshake):
		return "bad_handshake"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	case errors.Is(err, net.ErrClosed):
		return "closed"
	case strings.Contains(err.Error(), "server closed idle connection"):
		return "eof"
	}
	return "other"
}
