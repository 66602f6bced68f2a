// Package configs loads chatctl's configuration.
//
// The annotated example chatctl.yaml in this folder is embedded and parsed
// as the built-in defaults, so the documented defaults and the real ones
// cannot drift apart. Load then applies, in order, a config file, the
// CHATCTL_* environment and (through Set) command-line flags, remembering
// where each value came from for `chatctl config show`.
package configs

import (
	_ "embed"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

//go:embed chatctl.yaml
var defaultYAML []byte

// DefaultYAML returns the annotated example configuration that doubles as
// the built-in defaults.
func DefaultYAML() []byte { return append([]byte(nil), defaultYAML...) }

// Sources of a value, as reported by config show.
const (
	SourceDefault = "default"
	SourceFile    = "file"
	SourceEnv     = "env"
	SourceFlag    = "flag"
)

// SecretEnv is the environment variable that overrides the signing key.
const SecretEnv = "CHATCTL_JWT_SECRET"

// MinSecretLen is the shortest HS256 secret accepted (RFC 7518 §3.2).
const MinSecretLen = 32

// Config is the effective configuration. Field comments live in chatctl.yaml.
type Config struct {
	DB             string
	Store          string
	Broker         string
	Listen         string
	Signup         bool
	TrustedProxies []string

	Cluster struct {
		Name        string
		NodeID      string
		Heartbeat   time.Duration
		PresenceTTL time.Duration
	}
	Token struct {
		TTL        time.Duration
		RefreshTTL time.Duration
		Issuer     string
		Leeway     time.Duration
		SecretFile string
	}
	Password struct {
		BcryptCost int
		MinLength  int
	}
	Login struct {
		IPBurst       int
		IPPerMinute   float64
		UserBurst     int
		UserPerMinute float64
		// SignupBurst and SignupPerMinute limit POST /users sign-ups per
		// client address.
		SignupBurst     int
		SignupPerMinute float64
	}
	HTTP struct {
		MaxBody         int64
		ShutdownTimeout time.Duration
		MaxConns        int
		MaxConnsPerIP   int
	}
	CORS struct {
		Origins []string
	}
	Metrics struct {
		Listen string
	}
	WS struct {
		AllowedOrigins  []string
		MaxFrame        int64
		MaxText         int
		SendRate        float64
		SendBurst       int
		Queue           int
		QueueBytes      int64
		QueueWait       time.Duration
		WritePool       bool
		PingInterval    time.Duration
		PongTimeout     time.Duration
		MaxConnsPerUser int
	}
	Rooms struct {
		DefaultAccess string
	}
	Auth struct {
		Users  []string
		Access []string
	}
	History struct {
		OnJoin     int
		MaxPerRoom int
		MaxAge     time.Duration
	}
	Log struct {
		Format string
		Level  string
	}
	Audit struct {
		Retention  time.Duration
		MaxEntries int
	}
	TLS struct {
		Cert       string
		Key        string
		HSTSMaxAge time.Duration
		ACME       struct {
			Domains    []string
			Email      string
			Directory  string
			HTTPListen string
		}
	}

	// JWTSecret comes only from CHATCTL_JWT_SECRET; it has no config key so
	// that it never ends up in a file by accident.
	JWTSecret string

	// File is the config file that was read, if any.
	File string

	sources map[string]string
}

// field binds one dotted key to a pointer into Config.
type field struct {
	key string
	ptr any // *string, *bool, *int, *int64, *float64, *time.Duration or *[]string
}

// fields lists every key. Its order is the order of config show.
func (c *Config) fields() []field {
	return []field{
		{"db", &c.DB},
		{"store", &c.Store},
		{"broker", &c.Broker},
		{"cluster.name", &c.Cluster.Name},
		{"cluster.node_id", &c.Cluster.NodeID},
		{"cluster.heartbeat", &c.Cluster.Heartbeat},
		{"cluster.presence_ttl", &c.Cluster.PresenceTTL},
		{"listen", &c.Listen},
		{"signup", &c.Signup},
		{"trusted_proxies", &c.TrustedProxies},
		{"token.ttl", &c.Token.TTL},
		{"token.refresh_ttl", &c.Token.RefreshTTL},
		{"token.issuer", &c.Token.Issuer},
		{"token.leeway", &c.Token.Leeway},
		{"token.secret_file", &c.Token.SecretFile},
		{"password.bcrypt_cost", &c.Password.BcryptCost},
		{"password.min_length", &c.Password.MinLength},
		{"login.ip_burst", &c.Login.IPBurst},
		{"login.ip_per_minute", &c.Login.IPPerMinute},
		{"login.user_burst", &c.Login.UserBurst},
		{"login.user_per_minute", &c.Login.UserPerMinute},
		{"login.signup_burst", &c.Login.SignupBurst},
		{"login.signup_per_minute", &c.Login.SignupPerMinute},
		{"http.max_body", &c.HTTP.MaxBody},
		{"http.shutdown_timeout", &c.HTTP.ShutdownTimeout},
		{"http.max_conns", &c.HTTP.MaxConns},
		{"http.max_conns_per_ip", &c.HTTP.MaxConnsPerIP},
		{"cors.origins", &c.CORS.Origins},
		{"metrics.listen", &c.Metrics.Listen},
		{"ws.allowed_origins", &c.WS.AllowedOrigins},
		{"ws.max_frame", &c.WS.MaxFrame},
		{"ws.max_text", &c.WS.MaxText},
		{"ws.send_rate", &c.WS.SendRate},
		{"ws.send_burst", &c.WS.SendBurst},
		{"ws.queue", &c.WS.Queue},
		{"ws.queue_bytes", &c.WS.QueueBytes},
		{"ws.queue_wait", &c.WS.QueueWait},
		{"ws.write_pool", &c.WS.WritePool},
		{"ws.ping_interval", &c.WS.PingInterval},
		{"ws.pong_timeout", &c.WS.PongTimeout},
		{"ws.max_conns_per_user", &c.WS.MaxConnsPerUser},
		{"rooms.default_access", &c.Rooms.DefaultAccess},
		{"auth.users", &c.Auth.Users},
		{"auth.access", &c.Auth.Access},
		{"history.on_join", &c.History.OnJoin},
		{"history.max_per_room", &c.History.MaxPerRoom},
		{"history.max_age", &c.History.MaxAge},
		{"log.format", &c.Log.Format},
		{"log.level", &c.Log.Level},
		{"audit.retention", &c.Audit.Retention},
		{"audit.max_entries", &c.Audit.MaxEntries},
		{"tls.cert", &c.TLS.Cert},
		{"tls.key", &c.TLS.Key},
		{"tls.hsts_max_age", &c.TLS.HSTSMaxAge},
		{"tls.acme.domains", &c.TLS.ACME.Domains},
		{"tls.acme.email", &c.TLS.ACME.Email},
		{"tls.acme.directory", &c.TLS.ACME.Directory},
		{"tls.acme.http_listen", &c.TLS.ACME.HTTPListen},
	}
}

// Keys returns every configuration key, in display order.
func Keys() []string {
	var c Config
	var keys []string
	for _, f := range c.fields() {
		keys = append(keys, f.key)
	}
	return keys
}

// EnvName returns the environment variable of a key: token.ttl ->
// CHATCTL_TOKEN_TTL.
func EnvName(key string) string {
	return "CHATCTL_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// Default returns the built-in configuration.
func Default() *Config {
	c := &Config{sources: map[string]string{}}
	if err := c.applyYAML(defaultYAML, SourceDefault); err != nil {
		// The embedded file is covered by tests; failing here is a build bug.
		panic("configs: embedded chatctl.yaml: " + err.Error())
	}
	return c
}

// Load returns the configuration from the built-in defaults, the file at
// path (or $CHATCTL_CONFIG when path is empty; no file is fine) and the
// environment read through getenv. It does not validate: call Validate.
func Load(path string, getenv func(string) string) (*Config, error) {
	c := Default()
	if path == "" {
		path = getenv("CHATCTL_CONFIG")
	}
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("config file: %w", err)
		}
		if err := c.applyYAML(data, SourceFile); err != nil {
			return nil, fmt.Errorf("config file %s: %w", path, err)
		}
		c.File = path
	}
	for _, f := range c.fields() {
		name := EnvName(f.key)
		if v, ok := lookup(getenv, name); ok {
			if err := setString(f.ptr, v); err != nil {
				return nil, fmt.Errorf("environment %s (key %s): %w", name, f.key, err)
			}
			c.sources[f.key] = SourceEnv
		}
	}
	if v, ok := lookup(getenv, SecretEnv); ok {
		c.JWTSecret = v
	}
	return c, nil
}

// lookup treats an empty variable as unset, as most tools do.
func lookup(getenv func(string) string, name string) (string, bool) {
	v := getenv(name)
	return v, v != ""
}

// Set sets key from its string form, as a flag would, and records source.
// The error names the key.
func (c *Config) Set(key, value, source string) error {
	for _, f := range c.fields() {
		if f.key == key {
			if err := setString(f.ptr, value); err != nil {
				return fmt.Errorf("%s: %w", key, err)
			}
			c.sources[key] = source
			return nil
		}
	}
	return unknownKey(key)
}

// Source tells where the value of key came from.
func (c *Config) Source(key string) string {
	if s, ok := c.sources[key]; ok {
		return s
	}
	return SourceDefault
}

// Entry is one key of the effective configuration, for display.
type Entry struct {
	Key    string `json:"key"`
	Value  any    `json:"value"`
	Source string `json:"source"`
}

// Entries returns every key with its value and source, plus the JWT secret
// (redacted) when the environment sets one.
func (c *Config) Entries() []Entry {
	var out []Entry
	for _, f := range c.fields() {
		v := display(f.ptr)
		switch f.key {
		case "store":
			v = RedactURL(c.Store)
		case "auth.users":
			v = redactUsers(c.Auth.Users)
		case "broker":
			v = RedactURLs(c.Broker)
		}
		out = append(out, Entry{Key: f.key, Value: v, Source: c.Source(f.key)})
	}
	if c.JWTSecret != "" {
		out = append(out, Entry{Key: "jwt_secret", Value: "<redacted>", Source: SourceEnv + " " + SecretEnv})
	}
	return out
}

// display returns a value in the form config show prints and JSON encodes.
func display(ptr any) any {
	switch p := ptr.(type) {
	case *time.Duration:
		return p.String()
	case *[]string:
		if *p == nil {
			return []string{}
		}
		return *p
	default:
		return deref(ptr)
	}
}

func deref(ptr any) any {
	switch p := ptr.(type) {
	case *string:
		return *p
	case *bool:
		return *p
	case *int:
		return *p
	case *int64:
		return *p
	case *float64:
		return *p
	}
	return nil
}

// setString parses s into the value ptr points to.
func setString(ptr any, s string) error {
	s = strings.TrimSpace(s)
	switch p := ptr.(type) {
	case *string:
		*p = s
	case *bool:
		v, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("invalid boolean %q (want true or false)", s)
		}
		*p = v
	case *int:
		v, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Errorf("invalid integer %q", s)
		}
		*p = v
	case *int64:
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("invalid integer %q", s)
		}
		*p = v
	case *float64:
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("invalid number %q", s)
		}
		*p = v
	case *time.Duration:
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("invalid duration %q (examples: 90s, 30m, 720h)", s)
		}
		*p = v
	case *[]string:
		*p = nil
		for _, item := range strings.Split(s, ",") {
			if item = strings.TrimSpace(item); item != "" {
				*p = append(*p, item)
			}
		}
	default:
		return fmt.Errorf("unsupported type %T", ptr)
	}
	return nil
}

// unknownKey is the error for a key chatctl does not know, with the
// closest known key as a hint.
func unknownKey(key string) error {
	best, bestDist := "", 4
	for _, k := range Keys() {
		if d := editDistance(key, k); d < bestDist {
			best, bestDist = k, d
		}
	}
	if best != "" {
		return fmt.Errorf("unknown key %q (did you mean %q?)", key, best)
	}
	return fmt.Errorf("unknown key %q", key)
}

// editDistance is the Levenshtein distance, for "did you mean" hints.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
