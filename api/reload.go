package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/chatctl/chatctl/configs"
)

// liveSettings are the settings a reload changes that handlers read on
// every request. A value is never modified once stored in Server.live: a
// reload stores a new one, so readers need one atomic load and no lock.
type liveSettings struct {
	corsOrigins []string // cors.origins
	wsOrigins   []string // ws.allowed_origins
}

func liveFrom(cfg *configs.Config) *liveSettings {
	return &liveSettings{
		corsOrigins: slices.Clone(cfg.CORS.Origins),
		wsOrigins:   slices.Clone(cfg.WS.AllowedOrigins),
	}
}

// reloadHook applies some keys of a new configuration.
type reloadHook struct {
	keys  []string
	apply func(*configs.Config) error
}

// reloader is the Server's part of a config reload: the hooks that apply
// reloadable keys, and the configuration they last applied.
type reloader struct {
	mu      sync.Mutex // guards hooks and applied; held for a whole reload, so reloads never overlap
	hooks   []reloadHook
	applied *configs.Config // the last configuration applied (at first, the start-up one)
}

// OnReload registers apply for a config reload: keys become keys that a
// reload changes without a restart, and apply is called with every new,
// valid configuration, whether or not those keys changed (a TLS hook, say,
// re-reads its files each time). Register hooks before serving.
func (s *Server) OnReload(keys []string, apply func(*configs.Config) error) {
	s.reload.mu.Lock()
	defer s.reload.mu.Unlock()
	s.reload.hooks = append(s.reload.hooks, reloadHook{keys: keys, apply: apply})
}

// registerReloads registers what the Server itself can reload: CORS and
// WebSocket origins, the login and sign-up limits, and the WebSocket send
// rate. Serve adds the log level and format; the TLS listener, its files.
func (s *Server) registerReloads() {
	s.live.Store(liveFrom(s.cfg))
	s.reload.applied = s.cfg
	s.OnReload([]string{"cors.origins", "ws.allowed_origins"}, func(c *configs.Config) error {
		s.live.Store(liveFrom(c))
		return nil
	})
	s.OnReload([]string{
		"login.ip_burst", "login.ip_per_minute", "login.user_burst", "login.user_per_minute",
		"login.signup_burst", "login.signup_per_minute",
	}, func(c *configs.Config) error {
		s.loginRate.setRates(c)
		s.signups.setRate(c.Login.SignupBurst, c.Login.SignupPerMinute)
		return nil
	})
	s.OnReload([]string{"rooms.default_access", "auth.users", "auth.access"}, func(c *configs.Config) error {
		def := c.Rooms.DefaultAccess
		s.roomsDefault.Store(&def)
		res, err := s.svc.ApplyDeclared(context.Background(), c)
		if err != nil {
			return err
		}
		if !res.Empty() {
			s.log.Info("applied declared users and access rules", "result", res.String())
		}
		return s.hub.RecheckAccess()
	})
	s.OnReload([]string{"ws.send_rate", "ws.send_burst"}, func(c *configs.Config) error {
		s.hub.SetSendRate(c.WS.SendRate, c.WS.SendBurst)
		return nil
	})
}

// Change is one key whose value a reload found different.
type Change struct {
	Key string `json:"key"`
	Old string `json:"old"`
	New string `json:"new"`
}

func (c Change) String() string { return c.Key + ": " + c.Old + " → " + c.New }

// ReloadResult says what a reload did.
type ReloadResult struct {
	// Applied are reloadable keys that changed and are now in force.
	Applied []Change
	// Restart are keys whose new value differs from the one the server
	// started with and that take effect only after a restart.
	Restart []Change
	// Err joins the hooks that failed; the other hooks still applied.
	Err error
}

// Reload applies next, a configuration that passed Validate: every hook
// runs, and the result lists what changed. Keys that need a restart are
// compared with the start-up configuration, so one that was changed and
// then changed back is no longer reported.
func (s *Server) Reload(next *configs.Config) ReloadResult {
	s.reload.mu.Lock()
	defer s.reload.mu.Unlock()
	live := map[string]bool{}
	var errs []error
	for _, h := range s.reload.hooks {
		for _, k := range h.keys {
			live[k] = true
		}
		if err := h.apply(next); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", strings.Join(h.keys, ", "), err))
		}
	}
	var res ReloadResult
	for _, c := range diffConfigs(s.reload.applied, next) {
		if live[c.Key] {
			res.Applied = append(res.Applied, c)
		}
	}
	for _, c := range diffConfigs(s.cfg, next) {
		if !live[c.Key] {
			res.Restart = append(res.Restart, c)
		}
	}
	s.reload.applied = next
	res.Err = errors.Join(errs...)
	return res
}

// diffConfigs lists the keys whose values differ, in config show's order,
// with secrets redacted. A changed signing secret (from the environment or
// the contents of token.secret_file) is reported as jwt_secret.
func diffConfigs(old, next *configs.Config) []Change {
	values := func(c *configs.Config) map[string]string {
		m := map[string]string{}
		for _, e := range c.Entries() {
			m[e.Key] = displayValue(e.Value)
		}
		return m
	}
	ov, nv := values(old), values(next)
	var out []Change
	for _, e := range next.Entries() {
		if e.Key == "jwt_secret" {
			continue // compared below, by content
		}
		if o, n := ov[e.Key], nv[e.Key]; o != n {
			out = append(out, Change{Key: e.Key, Old: o, New: n})
		}
	}
	if so, sn := secretDigest(old), secretDigest(next); !bytes.Equal(so, sn) {
		out = append(out, Change{Key: "jwt_secret", Old: redactedOrNone(so), New: redactedOrNone(sn)})
	}
	return out
}

// secretDigest is a hash of the operator's signing secret (nil for none):
// enough to tell a change, never the secret itself.
func secretDigest(c *configs.Config) []byte {
	secret, _, err := c.Secret()
	if err != nil || secret == nil {
		return nil
	}
	sum := sha256.Sum256(secret)
	return sum[:]
}

func redactedOrNone(digest []byte) string {
	if digest == nil {
		return "(none)"
	}
	return "<redacted>"
}

// displayValue prints a config value as config show does: lists joined
// with commas, an empty one as [].
func displayValue(v any) string {
	if l, ok := v.([]string); ok {
		if len(l) == 0 {
			return "[]"
		}
		return "[" + strings.Join(l, ", ") + "]"
	}
	if s, ok := v.(string); ok && s == "" {
		return `""`
	}
	return fmt.Sprint(v)
}

// reloadConfig loads the configuration again with load (the same file,
// environment and flags as at start-up, validated) and applies it to srv,
// logging what changed. A configuration that fails to load or validate
// changes nothing: the error is logged and the running one stays.
func reloadConfig(srv *Server, load func() (*configs.Config, error), log *slog.Logger) {
	next, err := load()
	if err != nil {
		log.Error("config reload failed; the running configuration stays", "err", err)
		return
	}
	res := srv.Reload(next)
	applied := make([]string, len(res.Applied))
	for i, c := range res.Applied {
		applied[i] = c.String()
	}
	attrs := []any{"changed", strings.Join(applied, "; ")}
	if len(res.Applied) == 0 {
		attrs = []any{"changed", "nothing"}
	}
	if next.File != "" {
		attrs = append(attrs, "file", next.File)
	}
	// An operator who just raised log.level still sees what the reload
	// did: at info when info is logged, else at the lowest level that is.
	level := slog.LevelInfo
	for _, l := range []slog.Level{slog.LevelInfo, slog.LevelWarn, slog.LevelError} {
		if level = l; log.Enabled(context.Background(), l) {
			break
		}
	}
	log.Log(context.Background(), level, "config reloaded", attrs...)
	if len(res.Restart) > 0 {
		keys := make([]string, len(res.Restart))
		changes := make([]string, len(res.Restart))
		for i, c := range res.Restart {
			keys[i], changes[i] = c.Key, c.String()
		}
		log.Warn("config keys changed that need a restart to take effect",
			"keys", strings.Join(keys, ", "), "changes", strings.Join(changes, "; "))
	}
	if res.Err != nil {
		log.Error("config reload: some settings could not be applied", "err", res.Err)
	}
}
