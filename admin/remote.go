package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/chatctl/chatctl/configs"
	"github.com/chatctl/chatctl/store"
)

// Remote implements Admin by calling the /admin HTTP API of a running
// `chatctl serve` over its Unix socket. The server answers with the same
// Service the CLI would use on the store, so no rule exists twice.
type Remote struct {
	socket string
	client *http.Client
}

var _ Admin = (*Remote)(nil)

// remoteBase is a placeholder host: the transport always dials the socket.
const remoteBase = "http://chatctl"

// Dial connects to the admin socket at path, checking that a server
// answers within timeout. Before anything is sent, the socket file must
// pass CheckSocket and the process answering must run as our uid or root
// (PeerUID, TrustedUID); otherwise the error wraps ErrUntrustedSocket.
func Dial(path string, timeout time.Duration) (*Remote, error) {
	return dialWith(path, timeout, PeerUID)
}

// dialWith is Dial with the peer-credential lookup as a seam for tests.
func dialWith(path string, timeout time.Duration, peerUID peerUIDFunc) (*Remote, error) {
	if err := CheckSocket(path); err != nil {
		if errors.Is(err, ErrUntrustedSocket) {
			return nil, err
		}
		return nil, fmt.Errorf("admin socket %s: %w", path, err)
	}
	abs := absPath(path)
	r := &Remote{socket: path, client: &http.Client{
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				c, err := d.DialContext(ctx, "unix", path)
				if err != nil {
					return nil, err
				}
				if err := checkPeerWith(c, peerUID, abs); err != nil {
					c.Close()
					return nil, err
				}
				return c, nil
			},
			MaxIdleConns: 1,
		},
	}}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var health map[string]any
	if err := r.call(ctx, http.MethodGet, "/admin/ping", nil, &health); err != nil {
		var ue *url.Error
		if errors.As(err, &ue) && errors.Is(err, ErrUntrustedSocket) {
			return nil, ue.Err // one line, without the placeholder URL
		}
		return nil, fmt.Errorf("admin socket %s: %w", path, err)
	}
	return r, nil
}

// Connect returns the Admin for cfg: the running server through its
// socket when there is one, else the store itself. When the store is held
// by something that offers no socket, the error says so, within about the
// store's lock timeout (well under 2 s).
//
// A socket that could be another user's (see Dial) is an error: nothing is
// sent to it, and the store is not opened either, so the operator learns
// that something listens in the store's place.
func Connect(cfg *configs.Config) (Admin, error) {
	return ConnectWith(cfg, store.Create)
}

// ConnectWith is Connect for a command that needs access of the store
// (see OpenWith): through the socket access makes no difference, as the
// server holds a store that exists.
func ConnectWith(cfg *configs.Config, access store.Access) (Admin, error) {
	if cfg.Store != "" {
		// PostgreSQL serves every process at once: no socket needed.
		return OpenWith(cfg, access)
	}
	sock := cfg.SocketPath()
	if _, err := os.Lstat(sock); err == nil {
		r, err := Dial(sock, 500*time.Millisecond)
		if err == nil {
			return r, nil
		}
		if errors.Is(err, ErrUntrustedSocket) {
			return nil, err
		}
	}
	s, err := OpenWith(cfg, access)
	if err == nil {
		return s, nil
	}
	if !errors.Is(err, store.ErrLocked) {
		return nil, err
	}
	// A server may have started meanwhile and opened its socket.
	r, derr := Dial(sock, 300*time.Millisecond)
	if derr == nil {
		return r, nil
	}
	if errors.Is(derr, ErrUntrustedSocket) {
		return nil, derr
	}
	if !UnixSockets() {
		return nil, fmt.Errorf("%w; %w", err, ErrNoUnixSockets)
	}
	return nil, fmt.Errorf("%w; no chatctl server answers on %s", err, sock)
}

// Close releases idle connections.
func (r *Remote) Close() error {
	r.client.CloseIdleConnections()
	return nil
}

// call sends in as JSON and decodes the answer into out; error answers
// become errors matching the server's sentinels.
func (r *Remote) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, remoteBase+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Detail string `json:"detail"`
			Code   string `json:"code"`
		}
		if json.Unmarshal(data, &e) != nil || e.Detail == "" {
			return fmt.Errorf("server answered %s", resp.Status)
		}
		return errorFromCode(e.Code, e.Detail)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(data, out)
}

func userPath(name string, rest string) string { return "/admin/users/" + url.PathEscape(name) + rest }

// AddUser implements Admin.
func (r *Remote) AddUser(ctx context.Context, req AddUserRequest) (res AddUserResult, err error) {
	return res, r.call(ctx, http.MethodPost, "/admin/users", req, &res)
}

// Users implements Admin.
func (r *Remote) Users(ctx context.Context) (out []UserInfo, err error) {
	return out, r.call(ctx, http.MethodGet, "/admin/users", nil, &out)
}

// User implements Admin.
func (r *Remote) User(ctx context.Context, name string) (u UserInfo, err error) {
	return u, r.call(ctx, http.MethodGet, userPath(name, ""), nil, &u)
}

// SetPassword implements Admin.
func (r *Remote) SetPassword(ctx context.Context, name, password string) (u UserInfo, err error) {
	return u, r.call(ctx, http.MethodPut, userPath(name, "/password"), PasswordRequest{Password: password}, &u)
}

// SetRole implements Admin.
func (r *Remote) SetRole(ctx context.Context, name, role string) (u UserInfo, err error) {
	return u, r.call(ctx, http.MethodPut, userPath(name, "/role"), RoleRequest{Role: role}, &u)
}

// SetDisabled implements Admin.
func (r *Remote) SetDisabled(ctx context.Context, name string, disabled bool) (u UserInfo, err error) {
	return u, r.call(ctx, http.MethodPut, userPath(name, "/disabled"), DisabledRequest{Disabled: disabled}, &u)
}

// RemoveUser implements Admin.
func (r *Remote) RemoveUser(ctx context.Context, name string) error {
	return r.call(ctx, http.MethodDelete, userPath(name, ""), nil, nil)
}

// IssueToken implements Admin.
func (r *Remote) IssueToken(ctx context.Context, name string, ttl time.Duration) (t IssuedToken, err error) {
	return t, r.call(ctx, http.MethodPost, userPath(name, "/tokens"), IssueRequest{TTL: Duration(ttl)}, &t)
}

// InspectToken implements Admin.
func (r *Remote) InspectToken(ctx context.Context, token string) (in Inspection, err error) {
	return in, r.call(ctx, http.MethodPost, "/admin/tokens/inspect", InspectRequest{Token: token}, &in)
}

// Sessions implements Admin.
func (r *Remote) Sessions(ctx context.Context, name string) (out []SessionInfo, err error) {
	return out, r.call(ctx, http.MethodGet, userPath(name, "/sessions"), nil, &out)
}

// Revoke implements Admin.
func (r *Remote) Revoke(ctx context.Context, req RevokeRequest) (res RevokeResult, err error) {
	return res, r.call(ctx, http.MethodPost, "/admin/revoke", req, &res)
}

// UnlockUser implements Admin: the server clears its counters.
func (r *Remote) UnlockUser(ctx context.Context, name string) (res UnlockResult, err error) {
	return res, r.call(ctx, http.MethodPost, userPath(name, "/unlock"), nil, &res)
}

// Rooms implements Admin.
func (r *Remote) Rooms(ctx context.Context) (out []RoomInfo, err error) {
	return out, r.call(ctx, http.MethodGet, "/admin/rooms", nil, &out)
}

// DeleteRoom implements Admin.
func (r *Remote) DeleteRoom(ctx context.Context, name string) error {
	return r.call(ctx, http.MethodDelete, "/admin/rooms/"+escapeSegment(name), nil, nil)
}

// escapeSegment escapes name for use as one URL path segment. Unlike
// url.PathEscape it escapes dots too, so that a room stored as "." or ".."
// (which older versions accepted) stays a segment instead of being
// resolved away by the client or the server's path cleaning.
func escapeSegment(name string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '~':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

// Keys implements Admin.
func (r *Remote) Keys(ctx context.Context) (out []KeyInfo, err error) {
	return out, r.call(ctx, http.MethodGet, "/admin/keys", nil, &out)
}

// RotateKey implements Admin.
func (r *Remote) RotateKey(ctx context.Context) (k KeyInfo, err error) {
	return k, r.call(ctx, http.MethodPost, "/admin/keys/rotate", nil, &k)
}

// RetireKey implements Admin.
func (r *Remote) RetireKey(ctx context.Context, kid string) (k KeyInfo, err error) {
	if kid == "" {
		return k, fmt.Errorf("%w: give the kid of the key to retire (see key list)", ErrBadRequest)
	}
	return k, r.call(ctx, http.MethodPost, "/admin/keys/"+url.PathEscape(kid)+"/retire", nil, &k)
}

// BackupPath is the admin socket's endpoint that streams a copy of the
// store. It is on the socket only, never on the TCP listener: a copy holds
// every password hash and signing key.
const BackupPath = "/admin/backup"

// Backup implements Admin: the server streams its copy with its length
// first, and a copy that arrives short is an error.
func (r *Remote) Backup(ctx context.Context, w io.Writer) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, remoteBase+BackupPath, nil)
	if err != nil {
		return 0, err
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var e struct {
			Detail string `json:"detail"`
			Code   string `json:"code"`
		}
		if json.Unmarshal(data, &e) != nil || e.Detail == "" {
			return 0, fmt.Errorf("backup: server answered %s", resp.Status)
		}
		return 0, errorFromCode(e.Code, e.Detail)
	}
	if resp.ContentLength < 0 {
		return 0, errors.New("backup: the server did not say how long the copy is")
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("backup: copy broke off after %d of %d bytes: %w", n, resp.ContentLength, err)
	}
	if n != resp.ContentLength {
		return n, fmt.Errorf("backup: copy broke off after %d of %d bytes", n, resp.ContentLength)
	}
	return n, nil
}

// Audit implements Admin: GET /admin/audit with q as query parameters.
func (r *Remote) Audit(ctx context.Context, q AuditQuery) (out []AuditEntry, err error) {
	return out, r.call(ctx, http.MethodGet, "/admin/audit?"+AuditParams(q).Encode(), nil, &out)
}

// AuditParams is q in the query parameters of GET /admin/audit: since
// (RFC 3339), user, action, limit.
func AuditParams(q AuditQuery) url.Values {
	v := url.Values{}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339Nano))
	}
	if q.User != "" {
		v.Set("user", q.User)
	}
	if q.Action != "" {
		v.Set("action", q.Action)
	}
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	return v
}

// ParseAuditParams reads the query parameters of GET /admin/audit; a bad
// value is ErrBadRequest naming the parameter.
func ParseAuditParams(v url.Values) (AuditQuery, error) {
	q := AuditQuery{User: v.Get("user"), Action: v.Get("action")}
	if s := v.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return q, fmt.Errorf("%w: since: want an RFC 3339 time such as 2026-01-02T15:04:05Z", ErrBadRequest)
		}
		q.Since = t
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxAuditLimit {
			return q, fmt.Errorf("%w: limit: want a number from 1 to %d", ErrBadRequest, MaxAuditLimit)
		}
		q.Limit = n
	}
	if len(q.User) > 256 || len(q.Action) > 64 {
		return q, fmt.Errorf("%w: user or action too long", ErrBadRequest)
	}
	return q, nil
}

// Request bodies of the /admin API.
type (
	// PasswordRequest is the body of PUT /admin/users/{name}/password.
	PasswordRequest struct {
		Password string `json:"password"`
	}
	// RoleRequest is the body of PUT /admin/users/{name}/role.
	RoleRequest struct {
		Role string `json:"role"`
	}
	// DisabledRequest is the body of PUT /admin/users/{name}/disabled.
	DisabledRequest struct {
		Disabled bool `json:"disabled"`
	}
	// IssueRequest is the body of POST /admin/users/{name}/tokens.
	IssueRequest struct {
		TTL Duration `json:"ttl,omitempty"`
	}
	// InspectRequest is the body of POST /admin/tokens/inspect.
	InspectRequest struct {
		Token string `json:"token"`
	}
)

// Duration is a time.Duration written in JSON as a Go duration string
// ("30m").
type Duration time.Duration

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a duration such as \"30m\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	*d = Duration(v)
	return nil
}

// AccessRules implements Admin.
func (r *Remote) AccessRules(ctx context.Context) (out []AccessRule, err error) {
	return out, r.call(ctx, http.MethodGet, "/admin/access", nil, &out)
}

// SetAccess implements Admin.
func (r *Remote) SetAccess(ctx context.Context, rule AccessRule) (out AccessRule, err error) {
	return out, r.call(ctx, http.MethodPut, "/admin/access", rule, &out)
}

// ResetAccess implements Admin.
func (r *Remote) ResetAccess(ctx context.Context, req ResetAccessRequest) (out ResetAccessResult, err error) {
	return out, r.call(ctx, http.MethodPost, "/admin/access/reset", req, &out)
}

// CreateRoom implements Admin.
func (r *Remote) CreateRoom(ctx context.Context, req CreateRoomRequest) (out RoomMembers, err error) {
	return out, r.call(ctx, http.MethodPost, "/admin/rooms", req, &out)
}

// RoomMembers implements Admin.
func (r *Remote) RoomMembers(ctx context.Context, name string) (out RoomMembers, err error) {
	return out, r.call(ctx, http.MethodGet, "/admin/rooms/"+escapeSegment(name)+"/members", nil, &out)
}

// AddMember implements Admin.
func (r *Remote) AddMember(ctx context.Context, room, user string) (out RoomMembers, err error) {
	return out, r.call(ctx, http.MethodPut, "/admin/rooms/"+escapeSegment(room)+"/members/"+escapeSegment(user), nil, &out)
}

// KickMember implements Admin.
func (r *Remote) KickMember(ctx context.Context, room, user string) (out RoomMembers, err error) {
	return out, r.call(ctx, http.MethodDelete, "/admin/rooms/"+escapeSegment(room)+"/members/"+escapeSegment(user), nil, &out)
}
