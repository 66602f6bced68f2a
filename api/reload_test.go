package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/chatctl/chatctl/configs"
)

// cloneConfig copies cfg deeply enough for a test to change it.
func cloneConfig(cfg *configs.Config) *configs.Config {
	c := *cfg
	c.CORS.Origins = slices.Clone(cfg.CORS.Origins)
	c.WS.AllowedOrigins = slices.Clone(cfg.WS.AllowedOrigins)
	c.TrustedProxies = slices.Clone(cfg.TrustedProxies)
	return &c
}

// Ensure Server.Reload puts new CORS and WebSocket origins, login limits
// and the send rate in force at once, the send rate on a connection that
// was open before, and reports changed keys that need a restart.
func TestReload(t *testing.T) {
	e := newEnv(t, nil)
	e.addUser("alice", "")
	tok := e.issue("alice")
	const app = "https://app.example"

	// A connection from before the reload.
	conn, _, err := e.dialWS(tok, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	next := func(match func(f map[string]any) bool) map[string]any {
		t.Helper()
		for {
			var f map[string]any
			if err := conn.ReadJSON(&f); err != nil {
				t.Fatalf("reading frames: %v", err)
			}
			if match(f) {
				return f
			}
		}
	}
	byRef := func(ref string) func(map[string]any) bool {
		return func(f map[string]any) bool { return f["ref"] == ref }
	}
	send := func(v map[string]any) {
		t.Helper()
		if err := conn.WriteJSON(v); err != nil {
			t.Fatal(err)
		}
	}
	send(map[string]any{"type": "join", "room": "general"})
	next(func(f map[string]any) bool { return f["type"] == "joined" })

	// Before: the defaults (same origin only, 20 failed logins per
	// address, 40 sends at once).
	if r := e.request(http.MethodGet, "/", map[string]string{"Origin": app}, nil); r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("CORS header before the reload: %q", r.header.Get("Access-Control-Allow-Origin"))
	}
	if c, r, err := e.dialWS(tok, false, http.Header{"Origin": {app}}); err == nil {
		c.Close()
		t.Fatal("/ws accepted a foreign origin before the reload")
	} else if r.status != http.StatusForbidden {
		t.Fatalf("/ws from a foreign origin = %d, want 403", r.status)
	}
	for i := range 2 {
		if r := e.postToken(loginForm("alice", "wrong password"), ""); r.status != http.StatusUnauthorized {
			t.Fatalf("failed login %d before the reload = %d, want 401", i+1, r.status)
		}
	}

	n := cloneConfig(e.cfg)
	n.CORS.Origins = []string{app}
	n.WS.AllowedOrigins = []string{app}
	n.Login.IPBurst, n.Login.IPPerMinute = 1, 0.01
	n.WS.SendRate, n.WS.SendBurst = 0.01, 1
	n.Listen = "127.0.0.1:1" // needs a restart
	n.HTTP.MaxBody = 1 << 20 // so does this
	res := e.srv.Reload(n)
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	keys := func(cs []Change) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.Key)
		}
		return out
	}
	wantApplied := []string{"login.ip_burst", "login.ip_per_minute", "cors.origins", "ws.allowed_origins", "ws.send_rate", "ws.send_burst"}
	if got := keys(res.Applied); !slices.Equal(got, wantApplied) {
		t.Errorf("applied %v, want %v", got, wantApplied)
	}
	if got := keys(res.Restart); !slices.Equal(got, []string{"listen", "http.max_body"}) {
		t.Errorf("restart %v, want [listen http.max_body]", got)
	}
	for _, c := range res.Applied {
		if c.Key == "cors.origins" && c.String() != "cors.origins: [] → ["+app+"]" {
			t.Errorf("change reads %q", c.String())
		}
	}

	// After: each takes effect on the next request.
	if r := e.request(http.MethodGet, "/", map[string]string{"Origin": app}, nil); r.header.Get("Access-Control-Allow-Origin") != app {
		t.Errorf("CORS header after the reload = %q, want %s", r.header.Get("Access-Control-Allow-Origin"), app)
	}
	if c, r, err := e.dialWS(tok, false, http.Header{"Origin": {app}}); err != nil {
		t.Errorf("/ws from the newly allowed origin: %v (%d %s)", err, r.status, r.body)
	} else {
		c.Close()
	}
	// The address has two failures (more than the new burst of 1): refused.
	if r := e.postToken(loginForm("alice", "wrong password"), ""); r.status != http.StatusTooManyRequests {
		t.Errorf("failed login after the reload = %d, want 429", r.status)
	}
	// The old connection: one send, then rate_limited.
	send(map[string]any{"type": "send", "room": "general", "text": "one", "ref": "s1"})
	if f := next(byRef("s1")); f["type"] != "ack" {
		t.Fatalf("first send after the reload got %v, want ack", f)
	}
	send(map[string]any{"type": "send", "room": "general", "text": "two", "ref": "s2"})
	if f := next(byRef("s2")); f["type"] != "error" || f["code"] != "rate_limited" {
		t.Fatalf("second send after the reload got %v, want error rate_limited", f)
	}

	// Reloading the start-up values again reports the restart keys no more.
	res = e.srv.Reload(cloneConfig(e.cfg))
	if len(res.Restart) != 0 || len(res.Applied) != len(wantApplied) {
		t.Errorf("reload back: applied %v restart %v", keys(res.Applied), keys(res.Restart))
	}
	if r := e.request(http.MethodGet, "/", map[string]string{"Origin": app}, nil); r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("CORS header after reloading the old config: %q", r.header.Get("Access-Control-Allow-Origin"))
	}
}

// Ensure a changed signing secret is named, never shown.
func TestReloadRedactsSecret(t *testing.T) {
	old := configs.Default()
	n := configs.Default()
	n.JWTSecret = strings.Repeat("s", 40)
	var found bool
	for _, c := range diffConfigs(old, n) {
		if strings.Contains(c.String(), n.JWTSecret) {
			t.Fatalf("change shows the secret: %s", c)
		}
		if c.Key == "jwt_secret" {
			found = true
			if c.Old != "(none)" || c.New != "<redacted>" {
				t.Errorf("jwt_secret change = %s", c)
			}
		}
	}
	if !found {
		t.Fatal("a new secret is not reported")
	}
}

// Ensure Serve reloads on its Reload channel: the log level and format
// switch for every logger, the log names each change and the keys that
// need a restart, and a configuration that fails to load changes nothing.
func TestServeReload(t *testing.T) {
	cfg := configs.Default()
	cfg.DB = filepath.Join(socketDir(t), "c.db")
	cfg.Listen = "127.0.0.1:0"
	cfg.Password.BcryptCost = bcrypt.MinCost
	cfg.Log.Format, cfg.Log.Level = "json", "info"
	var logs logBuffer
	logging := NewLogging(&logs, cfg.Log.Format, cfg.Log.Level)
	log := logging.Logger()
	derived := log.With("component", "test") // made before the reload

	var nextCfg atomic.Pointer[configs.Config]
	var loadErr atomic.Pointer[error]
	load := func() (*configs.Config, error) {
		if p := loadErr.Load(); p != nil {
			return nil, *p
		}
		return cloneConfig(nextCfg.Load()), nil
	}
	reload := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan string, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- Serve(ctx, cfg, log, ServeOptions{Ready: func(a string) { ready <- a },
			Reload: reload, LoadConfig: load, Logging: logging})
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-errc:
		t.Fatalf("Serve: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("Serve never became ready")
	}
	const app = "https://app.example"
	corsHeader := func() string {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
		req.Header.Set("Origin", app)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.Header.Get("Access-Control-Allow-Origin")
	}
	if !derived.Enabled(bg, slog.LevelInfo) || derived.Enabled(bg, slog.LevelDebug) {
		t.Fatal("the start-up level is not info")
	}

	n := cloneConfig(cfg)
	n.Log.Format, n.Log.Level = "text", "debug"
	n.CORS.Origins = []string{app}
	n.Listen = "127.0.0.1:1"
	nextCfg.Store(n)
	reload <- struct{}{}
	waitFor(t, "the reload's log line", func() bool { return strings.Contains(logs.String(), `msg="config reloaded"`) })
	out := logs.String()
	for _, want := range []string{
		`level=INFO msg="config reloaded" changed="cors.origins: [] → [` + app + `]; log.format: json → text; log.level: info → debug"`,
		`level=WARN msg="config keys changed that need a restart to take effect" keys=listen changes="listen: 127.0.0.1:0 → 127.0.0.1:1"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s\nlog:\n%s", want, out)
		}
	}
	if !derived.Enabled(bg, slog.LevelDebug) {
		t.Error("a logger derived before the reload did not follow log.level")
	}
	derived.Debug("after")
	if !strings.Contains(logs.String(), `level=DEBUG msg=after component=test`) {
		t.Errorf("a derived logger does not write text at debug:\n%s", logs.String())
	}
	if got := corsHeader(); got != app {
		t.Errorf("CORS after the reload = %q, want %s", got, app)
	}

	// A bad file: logged, nothing changes.
	bad := errors.New("invalid configuration: log.level: must be debug, info, warn or error, got \"loud\"")
	loadErr.Store(&bad)
	reload <- struct{}{}
	waitFor(t, "the failed reload's log line", func() bool {
		return strings.Contains(logs.String(), `msg="config reload failed; the running configuration stays"`)
	})
	if !strings.Contains(logs.String(), `log.level: must be debug, info, warn or error`) {
		t.Errorf("the failure does not name the key:\n%s", logs.String())
	}
	if got := corsHeader(); got != app || !derived.Enabled(bg, slog.LevelDebug) {
		t.Errorf("a failed reload changed the running config: CORS %q", got)
	}

	// Raising the level to warn still shows the reload, at warn.
	loadErr.Store(nil)
	w := cloneConfig(n)
	w.Log.Level = "warn"
	nextCfg.Store(w)
	reload <- struct{}{}
	waitFor(t, "the reload at warn", func() bool {
		return strings.Contains(logs.String(), `level=WARN msg="config reloaded" changed="log.level: debug → warn"`)
	})
	if derived.Enabled(bg, slog.LevelInfo) {
		t.Error("info is still logged at warn")
	}

	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}
