package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// DefaultMaxConnsPerUser is the server's default cap on WebSocket
// connections per user (SPEC §6); past it the server closes with 4029.
const DefaultMaxConnsPerUser = 16

// Target names the server under test.
type Target struct {
	// URL is the server's base HTTP URL, e.g. "http://127.0.0.1:8000".
	URL string `json:"url"`
	// WSURL is the base WebSocket URL; empty derives ws:// or wss:// from URL.
	WSURL string `json:"ws_url,omitempty"`
	// Origin, when set, is sent as the Origin header of WebSocket dials, to
	// test ws.allowed_origins. Go clients send none by default.
	Origin string `json:"origin,omitempty"`
}

// httpBase returns URL without a trailing slash, checking its scheme.
func (t Target) httpBase() (string, error) {
	u, err := url.Parse(t.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("bad url %q: want http://host:port", t.URL)
	}
	return strings.TrimRight(t.URL, "/"), nil
}

// wsEndpoint returns the full URL of the chat endpoint, {ws-url}/ws.
func (t Target) wsEndpoint() (string, error) {
	base := t.WSURL
	if base == "" {
		h, err := t.httpBase()
		if err != nil {
			return "", err
		}
		base = "ws" + strings.TrimPrefix(h, "http") // http→ws, https→wss
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		return "", fmt.Errorf("bad ws url %q: want ws://host:port", base)
	}
	return strings.TrimRight(base, "/") + "/ws", nil
}

// Cred is one user the bench may act as. Token may be empty when Password
// is set: a Provisioner then obtains one.
type Cred struct {
	Username string `json:"username"`
	Password string `json:"-"`
	Token    string `json:"-"`
}

// Provisioner hands the bench the users and tokens it needs. The CLI
// implements it with the admin API (creating bench users on demand); the
// bench never creates users itself.
type Provisioner interface {
	// Users returns n distinct users, or an error naming why it cannot.
	Users(ctx context.Context, n int) ([]Cred, error)
	// Token returns a valid access token for c.
	Token(ctx context.Context, c Cred) (string, error)
}

// ErrNotEnoughUsers is returned by StaticUsers.Users when asked for more
// users than it holds.
var ErrNotEnoughUsers = errors.New("not enough users")

// StaticUsers is a Provisioner over a fixed list of users, for the CLI's
// --token and --user/--password flags. A Cred without a token logs in once
// through POST {URL}/token and the token is cached.
type StaticUsers struct {
	URL    string       // base URL for logins; needed only for Creds without Token
	Creds  []Cred       // the users, in order
	Client *http.Client // nil means http.DefaultClient

	mu     sync.Mutex        // guards tokens
	tokens map[string]string // username → token from a login
}

var _ Provisioner = (*StaticUsers)(nil)

// Users returns the first n users, or ErrNotEnoughUsers.
func (s *StaticUsers) Users(_ context.Context, n int) ([]Cred, error) {
	if n > len(s.Creds) {
		return nil, fmt.Errorf("%w: the run needs %d users, %d given (each user may hold at most %d WebSocket connections)",
			ErrNotEnoughUsers, n, len(s.Creds), DefaultMaxConnsPerUser)
	}
	return s.Creds[:n], nil
}

// Token returns c.Token, or logs c in with its password.
func (s *StaticUsers) Token(ctx context.Context, c Cred) (string, error) {
	if c.Token != "" {
		return c.Token, nil
	}
	s.mu.Lock()
	tok, ok := s.tokens[c.Username]
	s.mu.Unlock()
	if ok {
		return tok, nil
	}
	client := s.Client
	if client == nil {
		client = http.DefaultClient
	}
	tok, err := Login(ctx, client, s.URL, c.Username, c.Password)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	if s.tokens == nil {
		s.tokens = make(map[string]string)
	}
	s.tokens[c.Username] = tok
	s.mu.Unlock()
	return tok, nil
}

// Login signs in with the OAuth2 password grant and returns the access
// token. Errors are one-line PreflightErrors where the cause is known.
func Login(ctx context.Context, client *http.Client, baseURL, user, password string) (string, error) {
	base, err := Target{URL: baseURL}.httpBase()
	if err != nil {
		return "", err
	}
	resp, err := postLogin(ctx, client, base, user, password)
	if err != nil {
		return "", describeDialError(base, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return "", describeStatus("POST /token", base, resp.StatusCode, body)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if json.Unmarshal(body, &tok) != nil || tok.AccessToken == "" {
		return "", &PreflightError{Kind: ErrNotChatctl,
			Msg: fmt.Sprintf("%s is not a chatctl server: POST /token gave no access_token", base)}
	}
	return tok.AccessToken, nil
}

// postLogin sends one password-grant request.
func postLogin(ctx context.Context, client *http.Client, base, user, password string) (*http.Response, error) {
	form := url.Values{"grant_type": {"password"}, "username": {user}, "password": {password}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/token", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return client.Do(req)
}

// connToken pairs a connection slot with the user and token it dials as.
type connToken struct {
	User  string
	Token string
}

// connTokens returns n dial identities, packing at most perUser connections
// onto each user so that the server's per-user cap is never the bottleneck.
// Tokens are fetched with a little concurrency (a login costs a bcrypt).
func connTokens(ctx context.Context, p Provisioner, n, perUser int) ([]connToken, error) {
	if p == nil {
		return nil, errors.New("no credentials: a Provisioner is required")
	}
	if perUser <= 0 {
		perUser = DefaultMaxConnsPerUser
	}
	users, err := p.Users(ctx, (n+perUser-1)/perUser)
	if err != nil {
		return nil, err
	}
	toks := make([]string, len(users))
	errs := make([]error, len(users))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, u := range users {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			toks[i], errs[i] = p.Token(ctx, u)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("tokens: %w", err)
	}
	out := make([]connToken, n)
	for i := range out {
		u := i / perUser
		out[i] = connToken{User: users[u].Username, Token: toks[u]}
	}
	return out, nil
}

// defaultDuration returns d, or def when d is not positive.
func defaultDuration(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// ParseTargets reads the CLI's --url and --ws-url, each one URL or a comma
// list naming the nodes of one cluster, into one Target per node, all with
// origin. An empty wsURLs derives each node's WebSocket URL from its URL;
// otherwise it must list as many URLs as urls. Errors are one line naming
// the element at fault: an empty element, a URL that is not http(s)://host
// (ws(s):// for --ws-url), or one listed twice.
func ParseTargets(urls, wsURLs, origin string) ([]Target, error) {
	hs, err := splitURLs("--url", urls)
	if err != nil {
		return nil, err
	}
	var ws []string
	if wsURLs != "" {
		if ws, err = splitURLs("--ws-url", wsURLs); err != nil {
			return nil, err
		}
		if len(ws) != len(hs) {
			return nil, fmt.Errorf("--ws-url lists %d URLs but --url %d: give one WebSocket URL per node, in the same order, or none",
				len(ws), len(hs))
		}
	}
	out := make([]Target, len(hs))
	seen := make(map[string]int, len(hs))
	for i, h := range hs {
		t := Target{URL: h, Origin: origin}
		if ws != nil {
			t.WSURL = ws[i]
		}
		base, err := t.httpBase()
		if err != nil {
			return nil, fmt.Errorf("--url: %w", err)
		}
		ep, err := t.wsEndpoint()
		if err != nil {
			return nil, fmt.Errorf("--ws-url: %w", err)
		}
		if j, ok := seen[ep]; ok {
			return nil, fmt.Errorf("--url lists the node %s twice (elements %d and %d): each node once", base, j+1, i+1)
		}
		seen[ep] = i
		out[i] = t
	}
	return out, nil
}

// splitURLs splits a comma list of URLs, refusing an empty element.
func splitURLs(flag, list string) ([]string, error) {
	parts := strings.Split(list, ",")
	for i, p := range parts {
		parts[i] = strings.TrimSpace(p)
		if parts[i] == "" {
			if len(parts) == 1 {
				return nil, fmt.Errorf("%s is empty: want http://host:port", flag)
			}
			return nil, fmt.Errorf("%s %q: element %d of %d is empty (a stray comma?)", flag, list, i+1, len(parts))
		}
	}
	return parts, nil
}

// nodeOf is the node of member i (of a run over rooms rooms and nodes
// nodes). Member i is in room i%rooms and is the (i/rooms)th member of it;
// a room's members go round-robin over the nodes, each room starting one
// node further than the room before. So every room has members on every
// node once it has as many members as there are nodes, and its publishers
// (its first members) on every node once it has that many publishers;
// with fewer, the rooms' publishers still spread over the nodes.
func nodeOf(i, rooms, nodes int) int {
	if nodes <= 1 {
		return 0
	}
	return (i/rooms + i%rooms) % nodes
}
