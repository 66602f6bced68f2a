package api

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chatctl/chatctl/admin"
	"github.com/chatctl/chatctl/configs"
)

// scrape reads /metrics into a map from series ("name{labels}") to value.
func (e *env) scrape(t *testing.T) map[string]float64 {
	t.Helper()
	r := e.request(http.MethodGet, "/metrics", nil, nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET /metrics = %d", r.status)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type = %q, want Prometheus text", ct)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(string(r.body)))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad metrics line %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

// Ensure /metrics counts requests, logins by result and token rejections
// by reason.
func TestMetrics(t *testing.T) {
	e := newEnv(t, func(c *configs.Config) { c.Login.IPBurst, c.Login.IPPerMinute = 1, 1 })
	e.addUser("alice", "")
	e.addUser("dora", "")
	doraTok := e.issue("dora")
	if _, err := e.svc.SetDisabled(bg, "dora", true); err != nil {
		t.Fatal(err)
	}
	before := e.scrape(t)
	for _, k := range []string{
		`chatctl_logins_total{result="ok"}`, `chatctl_logins_total{result="failed"}`, `chatctl_logins_total{result="limited"}`,
		`chatctl_tokens_total{event="issued",reason=""}`, `chatctl_tokens_total{event="refreshed",reason=""}`,
		`chatctl_message_commits_total`,
	} {
		if v, ok := before[k]; !ok || v != 0 {
			t.Errorf("%s = %v (present %v), want a 0 series from the start", k, v, ok)
		}
	}

	p := e.login("alice")                                 // ok
	e.refresh(p.RefreshToken, "")                         // refreshed
	e.postToken(loginForm("alice", "wrong password"), "") // failed
	e.postToken(loginForm("alice", "wrong password"), "") // limited
	e.call(http.MethodGet, "/users/me", "", nil)          // missing
	e.call(http.MethodGet, "/users/me", "a.b.c", nil)     // malformed
	e.call(http.MethodGet, "/users/me", doraTok, nil)     // user disabled
	f := e.forger()
	expired := f.claims(e, "alice")
	expired["iat"], expired["exp"] = f.now.Add(-time.Hour).Unix(), f.now.Add(-time.Minute).Unix()
	e.call(http.MethodGet, "/users/me", f.hs256(expired), nil) // expired
	e.call(http.MethodGet, "/users/me", p.AccessToken, nil)
	if _, err := e.svc.DB().AppendMessage(bg, "general", "alice", "hi", time.Now()); err != nil {
		t.Fatal(err)
	}

	after := e.scrape(t)
	for _, tc := range []struct {
		series string
		delta  float64
	}{
		{`chatctl_logins_total{result="ok"}`, 1},
		{`chatctl_logins_total{result="failed"}`, 1},
		{`chatctl_logins_total{result="limited"}`, 1},
		{`chatctl_tokens_total{event="issued",reason=""}`, 1},
		{`chatctl_tokens_total{event="refreshed",reason=""}`, 1},
		{`chatctl_tokens_total{event="rejected",reason="missing"}`, 1},
		{`chatctl_tokens_total{event="rejected",reason="malformed"}`, 1},
		{`chatctl_tokens_total{event="rejected",reason="user disabled"}`, 1},
		{`chatctl_tokens_total{event="rejected",reason="expired"}`, 1},
		{`chatctl_http_requests_total{code="200",route="POST /token"}`, 2},
		{`chatctl_http_requests_total{code="401",route="POST /token"}`, 1},
		{`chatctl_http_requests_total{code="429",route="POST /token"}`, 1},
		{`chatctl_http_requests_total{code="401",route="GET /users/me"}`, 4},
		{`chatctl_http_requests_total{code="200",route="GET /users/me"}`, 1},
		{`chatctl_http_requests_total{code="200",route="GET /metrics"}`, 1},
		{`chatctl_message_commits_total`, 1},
	} {
		if got := after[tc.series] - before[tc.series]; got != tc.delta {
			t.Errorf("%s grew by %v, want %v", tc.series, got, tc.delta)
		}
	}
	if _, ok := after[`chatctl_http_request_duration_seconds_count{route="POST /token"}`]; !ok {
		t.Error("no latency histogram for POST /token")
	}
	// Labels are route patterns, never raw paths: scanners must not create
	// a series per URL.
	e.request(http.MethodGet, "/no/such/path", nil, nil)
	e.call(http.MethodGet, "/admin/users/some-name", "", nil)
	for k := range e.scrape(t) {
		if strings.Contains(k, "/no/such/path") || strings.Contains(k, "some-name") {
			t.Errorf("a raw path became a label: %s", k)
		}
	}
}

// Ensure the access log never records tokens or passwords: not the
// ?token= of /ws, not the form of /token, not the tokens it returns.
func TestAccessLogHasNoSecrets(t *testing.T) {
	e := newEnv(t, nil)
	const password = "pw-SECRET-do-not-log"
	if _, err := e.svc.AddUser(bg, admin.AddUserRequest{Name: "alice", Password: password}); err != nil {
		t.Fatal(err)
	}
	r := e.postToken(loginForm("alice", password), "")
	var p tokenResponse
	r.into(t, &p)
	rr := e.refresh(p.RefreshToken, "")
	var p2 tokenResponse
	rr.into(t, &p2)
	e.postToken(loginForm("alice", password+"-wrong"), "")

	conn, _, err := e.dialWS(p.AccessToken, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	const bogus = "SECRET.bogus.token"
	e.dialWS(bogus, true, nil)
	e.call(http.MethodGet, "/users/me", p2.AccessToken, nil)
	e.request(http.MethodGet, "/ws?token="+url.QueryEscape(bogus)+"&x=1", nil, nil)

	waitFor(t, "the access log lines", func() bool {
		return strings.Count(e.logs.String(), `"msg":"request"`) >= 7
	})
	logs := e.logs.String()
	for _, secret := range []string{password, p.AccessToken, p.RefreshToken, p2.AccessToken, p2.RefreshToken, bogus, "SECRET", "token="} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log contains %q", secret)
		}
	}
	// The log is there and useful: it has the paths, as JSON lines.
	paths := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["msg"] == "request" {
			p, _ := m["path"].(string)
			paths[p]++
			if m["status"] == nil || m["client"] == nil || m["method"] == nil {
				t.Errorf("request line lacks fields: %s", line)
			}
		}
	}
	if paths["/ws"] < 3 || paths["/token"] < 3 {
		t.Errorf("request lines by path = %v", paths)
	}
}
