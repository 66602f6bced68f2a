package configs

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/chatctl/chatctl/access"
)

// Bounds of password.bcrypt_cost. Below 10 is too cheap for 2026 hardware;
// above 14 a login takes over a second.
const (
	MinBcryptCost = 10
	MaxBcryptCost = 14
)

// MinAuditEntries is the smallest audit.max_entries: fewer would lose an
// admin's actions to a handful of failed logins.
const MinAuditEntries = 1000

// Validate checks every value and returns all problems at once, each
// naming its key.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if strings.TrimSpace(c.DB) == "" {
		bad("db", "must not be empty")
	}
	if msg := checkStoreURL(c.Store); msg != "" {
		bad("store", "%s", msg)
	}
	if msg := checkBrokerURLs(c.Broker); msg != "" {
		bad("broker", "%s", msg)
	} else if c.Broker != "" && !IsPostgres(c.Store) {
		bad("broker", "needs a PostgreSQL store (store: postgres://…): nodes cannot share a bbolt file")
	}
	if !validToken(c.Cluster.Name) {
		bad("cluster.name", "want 1..64 of letters, digits, _ and -, got %q", c.Cluster.Name)
	}
	if c.Cluster.NodeID != "" && !validToken(c.Cluster.NodeID) {
		bad("cluster.node_id", "want empty (random) or 1..64 of letters, digits, _ and -, got %q", c.Cluster.NodeID)
	}
	if c.Cluster.Heartbeat <= 0 {
		bad("cluster.heartbeat", "must be positive, got %s", c.Cluster.Heartbeat)
	} else if c.Cluster.PresenceTTL < 2*c.Cluster.Heartbeat {
		bad("cluster.presence_ttl", "must be at least twice cluster.heartbeat (%s), got %s", c.Cluster.Heartbeat, c.Cluster.PresenceTTL)
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen", "want host:port, got %q", c.Listen)
	}
	if c.Metrics.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Metrics.Listen); err != nil {
			bad("metrics.listen", "want host:port or empty (on listen), got %q", c.Metrics.Listen)
		} else if c.Metrics.Listen == c.Listen {
			bad("metrics.listen", "must differ from listen (%s); leave it empty to serve /metrics there", c.Listen)
		}
	}
	for _, p := range c.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err != nil {
			if _, err := netip.ParseAddr(p); err != nil {
				bad("trusted_proxies", "%q is not a CIDR such as 10.0.0.0/8", p)
			}
		}
	}
	if _, err := access.ParsePerm(c.Rooms.DefaultAccess); err != nil {
		bad("rooms.default_access", "%v", err)
	}
	if _, err := c.DeclaredUsers(); err != nil {
		errs = append(errs, err)
	}
	if _, err := c.DeclaredRules(); err != nil {
		errs = append(errs, err)
	}
	positive := func(key string, d time.Duration) {
		if d <= 0 {
			bad(key, "must be positive, got %s", d)
		}
	}
	positive("token.ttl", c.Token.TTL)
	positive("token.refresh_ttl", c.Token.RefreshTTL)
	positive("http.shutdown_timeout", c.HTTP.ShutdownTimeout)
	positive("ws.ping_interval", c.WS.PingInterval)
	positive("ws.pong_timeout", c.WS.PongTimeout)
	if c.WS.PongTimeout > 0 && c.WS.PingInterval >= c.WS.PongTimeout {
		bad("ws.ping_interval", "must be shorter than ws.pong_timeout (%s)", c.WS.PongTimeout)
	}
	if c.Token.Leeway < 0 || c.Token.Leeway > 5*time.Minute {
		bad("token.leeway", "must be between 0s and 5m, got %s", c.Token.Leeway)
	}
	if c.History.MaxAge < 0 {
		bad("history.max_age", "must not be negative")
	}
	if c.Audit.Retention < 0 {
		bad("audit.retention", "must not be negative")
	}
	if strings.TrimSpace(c.Token.Issuer) == "" {
		bad("token.issuer", "must not be empty")
	}
	if c.Password.BcryptCost < MinBcryptCost || c.Password.BcryptCost > MaxBcryptCost {
		bad("password.bcrypt_cost", "must be between %d and %d, got %d", MinBcryptCost, MaxBcryptCost, c.Password.BcryptCost)
	}
	if c.Password.MinLength < 1 || c.Password.MinLength > 72 {
		bad("password.min_length", "must be between 1 and 72, got %d", c.Password.MinLength)
	}
	atLeast := func(key string, v, lo int64) {
		if v < lo {
			bad(key, "must be at least %d, got %d", lo, v)
		}
	}
	atLeast("login.ip_burst", int64(c.Login.IPBurst), 1)
	atLeast("login.user_burst", int64(c.Login.UserBurst), 1)
	if c.Login.IPPerMinute <= 0 {
		bad("login.ip_per_minute", "must be positive")
	}
	if c.Login.UserPerMinute <= 0 {
		bad("login.user_per_minute", "must be positive")
	}
	atLeast("login.signup_burst", int64(c.Login.SignupBurst), 1)
	if c.Login.SignupPerMinute <= 0 {
		bad("login.signup_per_minute", "must be positive")
	}
	atLeast("http.max_body", c.HTTP.MaxBody, 1024)
	atLeast("http.max_conns", int64(c.HTTP.MaxConns), 0)
	atLeast("http.max_conns_per_ip", int64(c.HTTP.MaxConnsPerIP), 0)
	atLeast("ws.max_frame", c.WS.MaxFrame, 512)
	atLeast("ws.max_text", int64(c.WS.MaxText), 1)
	if int64(c.WS.MaxText) > c.WS.MaxFrame {
		bad("ws.max_text", "must not exceed ws.max_frame (%d)", c.WS.MaxFrame)
	}
	if c.WS.SendRate <= 0 {
		bad("ws.send_rate", "must be positive")
	}
	atLeast("ws.send_burst", int64(c.WS.SendBurst), 1)
	atLeast("ws.queue", int64(c.WS.Queue), 1)
	atLeast("ws.queue_bytes", c.WS.QueueBytes, 1024)
	positive("ws.queue_wait", c.WS.QueueWait)
	atLeast("ws.max_conns_per_user", int64(c.WS.MaxConnsPerUser), 1)
	atLeast("history.on_join", int64(c.History.OnJoin), 0)
	atLeast("history.max_per_room", int64(c.History.MaxPerRoom), 0)
	atLeast("audit.max_entries", int64(c.Audit.MaxEntries), MinAuditEntries)
	for _, o := range c.CORS.Origins {
		if !validOrigin(o) {
			bad("cors.origins", "%q is not an origin such as https://chat.example.com", o)
		}
	}
	for _, o := range c.WS.AllowedOrigins {
		if !validOrigin(o) {
			bad("ws.allowed_origins", "%q is not an origin such as https://chat.example.com", o)
		}
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format", "must be text or json, got %q", c.Log.Format)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be debug, info, warn or error, got %q", c.Log.Level)
	}
	if _, _, err := c.Secret(); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, c.validateTLS()...)
	return errors.Join(errs...)
}

// validateTLS checks the tls.* keys: certificate files come in pairs and
// exist, ACME has what it needs, and the two are not mixed. The files'
// contents are checked when the server loads them (api.LoadCertFiles).
func (c *Config) validateTLS() []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	t := &c.TLS
	switch {
	case t.Cert != "" && t.Key == "":
		bad("tls.key", "must be set with tls.cert (%s): give both files or neither", abs(t.Cert))
	case t.Cert == "" && t.Key != "":
		bad("tls.cert", "must be set with tls.key (%s): give both files or neither", abs(t.Key))
	}
	for _, f := range []struct{ key, path string }{{"tls.cert", t.Cert}, {"tls.key", t.Key}} {
		if f.path == "" {
			continue
		}
		if st, err := os.Stat(f.path); err != nil {
			bad(f.key, "cannot read %s: %v", abs(f.path), errors.Unwrap(err))
		} else if st.IsDir() {
			bad(f.key, "%s is a folder, not a PEM file", abs(f.path))
		}
	}
	if t.HSTSMaxAge < 0 {
		bad("tls.hsts_max_age", "must not be negative (0s turns the header off)")
	}
	a := &t.ACME
	if len(a.Domains) > 0 {
		if t.Cert != "" || t.Key != "" {
			bad("tls.acme.domains", "ACME and tls.cert/tls.key are mutually exclusive: set one or the other")
		}
		for _, d := range a.Domains {
			if !validDomain(d) {
				bad("tls.acme.domains", "%q is not a domain name such as chat.example.com", d)
			}
		}
	}
	if a.Email != "" && (!strings.Contains(a.Email, "@") || strings.ContainsAny(a.Email, " \t<>,")) {
		bad("tls.acme.email", "%q is not an email address", a.Email)
	}
	if u, err := url.Parse(a.Directory); err != nil || u.Scheme != "https" || u.Host == "" {
		bad("tls.acme.directory", "want an https:// ACME directory URL, got %q", a.Directory)
	}
	if _, _, err := net.SplitHostPort(a.HTTPListen); err != nil {
		bad("tls.acme.http_listen", "want host:port (such as :80), got %q", a.HTTPListen)
	}
	return errs
}

// validDomain accepts a DNS name of letters, digits, hyphens and dots (no
// wildcard: HTTP-01 cannot prove one, and no IP address).
func validDomain(d string) bool {
	if d == "" || len(d) > 253 || strings.HasPrefix(d, ".") || strings.HasSuffix(d, ".") || net.ParseIP(d) != nil {
		return false
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// TLSEnabled reports whether the server speaks HTTPS (files or ACME).
func (c *Config) TLSEnabled() bool { return c.TLS.Cert != "" || len(c.TLS.ACME.Domains) > 0 }

// ACMECacheDir is where ACME keeps its account key and certificates: the
// folder "acme" beside the store.
func (c *Config) ACMECacheDir() string { return filepath.Join(filepath.Dir(c.DB), "acme") }

func validOrigin(o string) bool {
	if o == "*" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && (u.Path == "" || u.Path == "/")
}

// Secret returns the operator's signing secret and where it came from
// (CHATCTL_JWT_SECRET, then token.secret_file), or nil when the store's own
// key is to be used. A secret shorter than MinSecretLen bytes is an error.
func (c *Config) Secret() (secret []byte, source string, err error) {
	switch {
	case c.JWTSecret != "":
		secret, source = []byte(c.JWTSecret), SecretEnv
	case c.Token.SecretFile != "":
		data, err := os.ReadFile(c.Token.SecretFile)
		if err != nil {
			return nil, "", fmt.Errorf("token.secret_file: %w", err)
		}
		secret, source = []byte(strings.TrimRight(string(data), "\r\n")), "token.secret_file "+c.Token.SecretFile
	default:
		return nil, "", nil
	}
	if len(secret) < MinSecretLen {
		name := SecretEnv
		if c.JWTSecret == "" {
			name = "token.secret_file"
		}
		return nil, "", fmt.Errorf("%s: secret is %d bytes, at least %d are required (try: openssl rand -base64 48)", name, len(secret), MinSecretLen)
	}
	return secret, source, nil
}

// SocketPath is the admin Unix socket that a running server opens beside
// its store.
func (c *Config) SocketPath() string { return c.DB + ".sock" }

// IsPostgres reports whether a store value names a PostgreSQL database.
func IsPostgres(store string) bool {
	return strings.HasPrefix(store, "postgres://") || strings.HasPrefix(store, "postgresql://")
}

// RedactURL returns a store URL with its password, if any, replaced by
// "xxxxx", for messages and config show. Other values are returned as
// they are.
func RedactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		if err != nil && IsPostgres(s) {
			return "postgres://…" // unparsable: show nothing that may be a secret
		}
		return s
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// checkStoreURL validates the store key: empty, or a postgres:// URL with
// a host.
func checkStoreURL(s string) string {
	if s == "" {
		return ""
	}
	if !IsPostgres(s) {
		return fmt.Sprintf("want empty (the bbolt file at db) or a postgres:// URL, got %q", RedactURL(s))
	}
	u, err := url.Parse(s)
	if err != nil {
		return "not a valid URL (check the escaping of special characters in the password)"
	}
	if u.Host == "" && u.Query().Get("host") == "" {
		return fmt.Sprintf("%s names no host", RedactURL(s))
	}
	return ""
}

// RedactURLs is RedactURL for a comma-separated list of URLs (the broker
// key).
func RedactURLs(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		parts[i] = RedactURL(strings.TrimSpace(p))
	}
	return strings.Join(parts, ",")
}

// checkBrokerURLs validates the broker key: empty, or a comma-separated
// list of nats:// (or tls://) URLs, each with a host and port.
func checkBrokerURLs(s string) string {
	if s == "" {
		return ""
	}
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		u, err := url.Parse(p)
		if err != nil || (u.Scheme != "nats" && u.Scheme != "tls") || u.Hostname() == "" || u.Port() == "" || (u.Path != "" && u.Path != "/") {
			return fmt.Sprintf("want empty (one node) or nats://HOST:PORT[,nats://HOST:PORT…], got %q", RedactURLs(s))
		}
	}
	return ""
}

// validToken accepts a cluster name or node id: 1..64 of [A-Za-z0-9_-],
// one NATS subject token (package cluster checks the same rule).
func validToken(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}
