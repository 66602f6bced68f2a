package configs

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// Ensure the built-in defaults are the ones SPEC §2 and §6 promise.
func TestDefaultsMatchSpec(t *testing.T) {
	c := Default()
	checks := []struct {
		key  string
		got  any
		want any
	}{
		{"db", c.DB, "chatctl.db"},
		{"listen", c.Listen, "127.0.0.1:8000"},
		{"token.ttl", c.Token.TTL, 30 * time.Minute},
		{"token.refresh_ttl", c.Token.RefreshTTL, 720 * time.Hour},
		{"token.issuer", c.Token.Issuer, "chatctl"},
		{"password.bcrypt_cost", c.Password.BcryptCost, 12},
		{"password.min_length", c.Password.MinLength, 8},
		{"signup", c.Signup, false},
		{"login.signup_burst", c.Login.SignupBurst, 5},
		{"login.signup_per_minute", c.Login.SignupPerMinute, 0.2},
		{"trusted_proxies", len(c.TrustedProxies), 0},
		{"cors.origins", len(c.CORS.Origins), 0},
		{"ws.allowed_origins", len(c.WS.AllowedOrigins), 0},
		{"ws.max_frame", c.WS.MaxFrame, int64(64 << 10)},
		{"ws.max_text", c.WS.MaxText, 4096},
		{"ws.send_rate", c.WS.SendRate, 20.0},
		{"ws.send_burst", c.WS.SendBurst, 40},
		{"ws.queue", c.WS.Queue, 256},
		{"ws.queue_bytes", c.WS.QueueBytes, int64(16 << 20)},
		{"ws.queue_wait", c.WS.QueueWait, 5 * time.Second},
		{"ws.write_pool", c.WS.WritePool, true},
		{"ws.ping_interval", c.WS.PingInterval, 30 * time.Second},
		{"ws.pong_timeout", c.WS.PongTimeout, 60 * time.Second},
		{"ws.max_conns_per_user", c.WS.MaxConnsPerUser, 16},
		{"history.on_join", c.History.OnJoin, 50},
		{"rooms.default_access", c.Rooms.DefaultAccess, "read-write"},
		{"auth.users", len(c.Auth.Users), 0},
		{"auth.access", len(c.Auth.Access), 0},
		{"metrics.listen", c.Metrics.Listen, ""},
		{"log.format", c.Log.Format, "text"},
		{"log.level", c.Log.Level, "info"},
		{"audit.retention", c.Audit.Retention, 90 * 24 * time.Hour},
		{"audit.max_entries", c.Audit.MaxEntries, 100000},
		{"tls.cert", c.TLS.Cert, ""},
		{"tls.key", c.TLS.Key, ""},
		{"tls.hsts_max_age", c.TLS.HSTSMaxAge, 365 * 24 * time.Hour},
		{"tls.acme.domains", len(c.TLS.ACME.Domains), 0},
		{"tls.acme.email", c.TLS.ACME.Email, ""},
		{"tls.acme.directory", c.TLS.ACME.Directory, "https://acme-v02.api.letsencrypt.org/directory"},
		{"tls.acme.http_listen", c.TLS.ACME.HTTPListen, ":80"},
		{"broker", c.Broker, ""},
		{"cluster.name", c.Cluster.Name, "chatctl"},
		{"cluster.node_id", c.Cluster.NodeID, ""},
		{"cluster.heartbeat", c.Cluster.Heartbeat, 5 * time.Second},
		{"cluster.presence_ttl", c.Cluster.PresenceTTL, 15 * time.Second},
	}
	if c.TLSEnabled() {
		t.Error("TLS is on by default")
	}
	for _, tc := range checks {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s = %v, want %v", tc.key, tc.got, tc.want)
		}
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
}

// Ensure configs/chatctl.yaml documents every key, and nothing else: the
// example file is the defaults, so every key must be set in it.
func TestExampleDocumentsEveryKey(t *testing.T) {
	var root yaml.Node
	if err := yaml.Unmarshal(defaultYAML, &root); err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i].Value, n.Content[i+1]
			if v.Kind == yaml.MappingNode {
				walk(v, prefix+k+".")
				continue
			}
			found[prefix+k] = true
		}
	}
	walk(root.Content[0], "")
	for _, k := range Keys() {
		if !found[k] {
			t.Errorf("key %s is missing from chatctl.yaml", k)
		}
		delete(found, k)
	}
	for k := range found {
		t.Errorf("chatctl.yaml has key %s that the loader does not know", k)
	}
	// Every key is commented: the line before it (or its block) is a comment.
	lines := strings.Split(string(defaultYAML), "\n")
	for i, l := range lines {
		trimmed := strings.TrimSpace(l)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") || strings.HasSuffix(trimmed, ":") {
			continue
		}
		prev := strings.TrimSpace(lines[i-1])
		if !strings.HasPrefix(prev, "#") && !strings.Contains(lines[i-1], ":") {
			t.Errorf("line %d %q has no comment above it", i+1, trimmed)
		}
	}
}

// Ensure precedence is flag > env > file > default and sources are kept.
func TestLoadPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.yaml")
	os.WriteFile(file, []byte("listen: 0.0.0.0:9000\ntoken:\n  ttl: 5m\n  issuer: file-iss\nws:\n  allowed_origins: [https://a.example]\n"), 0o600)
	c, err := Load(file, env(map[string]string{"CHATCTL_TOKEN_TTL": "7m", "CHATCTL_WS_QUEUE": "10", "CHATCTL_JWT_SECRET": strings.Repeat("s", 32)}))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Set("token.issuer", "flag-iss", SourceFlag); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		key, source string
		got, want   any
	}{
		{"listen", SourceFile, c.Listen, "0.0.0.0:9000"},
		{"token.ttl", SourceEnv, c.Token.TTL, 7 * time.Minute},
		{"ws.queue", SourceEnv, c.WS.Queue, 10},
		{"token.issuer", SourceFlag, c.Token.Issuer, "flag-iss"},
		{"db", SourceDefault, c.DB, "chatctl.db"},
		{"ws.allowed_origins", SourceFile, c.WS.AllowedOrigins, []string{"https://a.example"}},
	} {
		if !reflect.DeepEqual(tc.got, tc.want) || c.Source(tc.key) != tc.source {
			t.Errorf("%s = %v from %s, want %v from %s", tc.key, tc.got, c.Source(tc.key), tc.want, tc.source)
		}
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	// The secret is shown only redacted.
	for _, e := range c.Entries() {
		if strings.Contains(e.Source+"", "JWT") && e.Value != "<redacted>" {
			t.Errorf("secret shown as %v", e.Value)
		}
		if s, ok := e.Value.(string); ok && strings.Contains(s, "ssssssss") {
			t.Errorf("secret leaked in %s", e.Key)
		}
	}
	// CHATCTL_CONFIG names the file when no path is given.
	c, err = Load("", env(map[string]string{"CHATCTL_CONFIG": file}))
	if err != nil || c.Listen != "0.0.0.0:9000" || c.File != file {
		t.Fatalf("CHATCTL_CONFIG not used: %v %+v", err, c)
	}
}

// Ensure bad files and values are errors that name the key.
func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		env  map[string]string
		want []string
	}{
		{"UnknownKey", "listen: x:1\ntokn:\n  ttl: 1m\n", nil, []string{`unknown key "tokn"`, "line 2"}},
		{"UnknownNestedKey", "token:\n  tll: 1m\n", nil, []string{`unknown key "token.tll"`, `did you mean "token.ttl"`}},
		{"BadDuration", "token:\n  ttl: soon\n", nil, []string{"token.ttl", `invalid duration "soon"`, "line 2"}},
		{"BadInt", "password:\n  bcrypt_cost: high\n", nil, []string{"password.bcrypt_cost", "invalid integer"}},
		{"BadBool", "signup: maybe\n", nil, []string{"signup", "invalid boolean"}},
		{"MappingForScalar", "listen:\n  a: b\n", nil, []string{"listen", "single value"}},
		{"NotAMapping", "- a\n- b\n", nil, []string{"top level must be a mapping"}},
		{"BadYAML", "listen: [\n", nil, []string{"invalid YAML"}},
		{"BadEnv", "", map[string]string{"CHATCTL_WS_QUEUE": "lots"}, []string{"CHATCTL_WS_QUEUE", "ws.queue", "invalid integer"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "c.yaml")
			os.WriteFile(file, []byte(tc.yaml), 0o600)
			_, err := Load(file, env(tc.env))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml"), env(nil)); err == nil {
		t.Error("a missing config file must be an error")
	}
}

// pgURL is a valid store URL for the tests that need a PostgreSQL store.
const pgURL = "postgres://chatctl@db1:5432/chatctl"

// Ensure Validate rejects every out-of-range value by name.
func TestValidate(t *testing.T) {
	short := filepath.Join(t.TempDir(), "short")
	os.WriteFile(short, []byte("too short\n"), 0o600)
	long := filepath.Join(t.TempDir(), "long")
	os.WriteFile(long, []byte(strings.Repeat("k", 40)+"\n"), 0o600)
	pem := filepath.Join(t.TempDir(), "tls.pem") // contents are checked by the server
	os.WriteFile(pem, []byte("PEM\n"), 0o600)
	tests := []struct {
		name    string
		mutate  func(c *Config)
		wantErr string
	}{
		{"OK", func(c *Config) {}, ""},
		{"CostLow", func(c *Config) { c.Password.BcryptCost = 9 }, "password.bcrypt_cost"},
		{"CostHigh", func(c *Config) { c.Password.BcryptCost = 15 }, "password.bcrypt_cost"},
		{"MinLength", func(c *Config) { c.Password.MinLength = 0 }, "password.min_length"},
		{"Listen", func(c *Config) { c.Listen = "8000" }, "listen"},
		{"TTL", func(c *Config) { c.Token.TTL = 0 }, "token.ttl"},
		{"Proxy", func(c *Config) { c.TrustedProxies = []string{"nope"} }, "trusted_proxies"},
		{"ProxyOK", func(c *Config) { c.TrustedProxies = []string{"10.0.0.0/8", "127.0.0.1"} }, ""},
		{"Origin", func(c *Config) { c.WS.AllowedOrigins = []string{"example.com"} }, "ws.allowed_origins"},
		{"LogFormat", func(c *Config) { c.Log.Format = "xml" }, "log.format"},
		{"LogLevel", func(c *Config) { c.Log.Level = "loud" }, "log.level"},
		{"PingVsPong", func(c *Config) { c.WS.PingInterval = time.Minute }, "ws.ping_interval"},
		{"ShortEnvSecret", func(c *Config) { c.JWTSecret = "0123456789" }, "CHATCTL_JWT_SECRET"},
		{"ShortFileSecret", func(c *Config) { c.Token.SecretFile = short }, "token.secret_file"},
		{"MissingFileSecret", func(c *Config) { c.Token.SecretFile = short + "x" }, "token.secret_file"},
		{"FileSecretOK", func(c *Config) { c.Token.SecretFile = long }, ""},
		{"TextOverFrame", func(c *Config) { c.WS.MaxText = 1 << 20 }, "ws.max_text"},
		{"QueueBytes", func(c *Config) { c.WS.QueueBytes = 10 }, "ws.queue_bytes"},
		{"QueueWait", func(c *Config) { c.WS.QueueWait = 0 }, "ws.queue_wait"},
		{"AuditRetention", func(c *Config) { c.Audit.Retention = -time.Hour }, "audit.retention"},
		{"AuditRetentionOff", func(c *Config) { c.Audit.Retention = 0 }, ""},
		{"AuditMaxEntries", func(c *Config) { c.Audit.MaxEntries = 10 }, "audit.max_entries"},
		{"MetricsListen", func(c *Config) { c.Metrics.Listen = "9090" }, "metrics.listen"},
		{"MetricsListenSame", func(c *Config) { c.Metrics.Listen = c.Listen }, "metrics.listen: must differ from listen"},
		{"MetricsListenOK", func(c *Config) { c.Metrics.Listen = "127.0.0.1:9090" }, ""},
		{"TLSFilesOK", func(c *Config) { c.TLS.Cert, c.TLS.Key = pem, pem }, ""},
		{"TLSCertOnly", func(c *Config) { c.TLS.Cert = pem }, "tls.key: must be set with tls.cert"},
		{"TLSKeyOnly", func(c *Config) { c.TLS.Key = pem }, "tls.cert: must be set with tls.key"},
		{"TLSCertMissing", func(c *Config) { c.TLS.Cert, c.TLS.Key = pem+"x", pem }, "tls.cert: cannot read " + pem + "x: no such file"},
		{"TLSKeyFolder", func(c *Config) { c.TLS.Cert, c.TLS.Key = pem, filepath.Dir(pem) }, "tls.key: " + filepath.Dir(pem) + " is a folder"},
		{"HSTSNegative", func(c *Config) { c.TLS.HSTSMaxAge = -time.Second }, "tls.hsts_max_age"},
		{"ACMEOK", func(c *Config) {
			c.TLS.ACME.Domains, c.TLS.ACME.Email = []string{"chat.example.com", "x.example.org"}, "ops@example.com"
		}, ""},
		{"ACMEAndFiles", func(c *Config) { c.TLS.ACME.Domains, c.TLS.Cert, c.TLS.Key = []string{"chat.example.com"}, pem, pem }, "tls.acme.domains: ACME and tls.cert/tls.key are mutually exclusive"},
		{"ACMEWildcard", func(c *Config) { c.TLS.ACME.Domains = []string{"*.example.com"} }, `tls.acme.domains: "*.example.com" is not a domain name`},
		{"ACMEIP", func(c *Config) { c.TLS.ACME.Domains = []string{"192.0.2.1"} }, "tls.acme.domains"},
		{"ACMEURL", func(c *Config) { c.TLS.ACME.Domains = []string{"https://chat.example.com"} }, "tls.acme.domains"},
		{"ACMEEmail", func(c *Config) { c.TLS.ACME.Email = "ops" }, "tls.acme.email"},
		{"ACMEDirectoryHTTP", func(c *Config) { c.TLS.ACME.Directory = "http://ca.example/dir" }, "tls.acme.directory: want an https://"},
		{"ACMEHTTPListen", func(c *Config) { c.TLS.ACME.HTTPListen = "80" }, "tls.acme.http_listen"},
		{"BrokerOK", func(c *Config) { c.Store, c.Broker = pgURL, "nats://n1:4222, nats://u:p@n2:4222,tls://n3:4443" }, ""},
		{"BrokerWithBbolt", func(c *Config) { c.Broker = "nats://n1:4222" }, "broker: needs a PostgreSQL store (store: postgres://…): nodes cannot share a bbolt file"},
		{"BrokerScheme", func(c *Config) { c.Store, c.Broker = pgURL, "http://n1:4222" }, "broker: want empty (one node) or nats://HOST:PORT"},
		{"BrokerNoPort", func(c *Config) { c.Store, c.Broker = pgURL, "nats://n1" }, "broker: want empty"},
		{"BrokerOneBad", func(c *Config) { c.Store, c.Broker = pgURL, "nats://n1:4222,n2:4222" }, "broker: want empty"},
		{"BrokerEmptyItem", func(c *Config) { c.Store, c.Broker = pgURL, "nats://n1:4222," }, "broker: want empty"},
		{"ClusterName", func(c *Config) { c.Cluster.Name = "a.b" }, "cluster.name"},
		{"ClusterNameEmpty", func(c *Config) { c.Cluster.Name = "" }, "cluster.name"},
		{"NodeID", func(c *Config) { c.Cluster.NodeID = "node 1" }, "cluster.node_id"},
		{"NodeIDOK", func(c *Config) { c.Cluster.NodeID = "eu-1_a" }, ""},
		{"Heartbeat", func(c *Config) { c.Cluster.Heartbeat = 0 }, "cluster.heartbeat: must be positive"},
		{"PresenceTTL", func(c *Config) { c.Cluster.PresenceTTL = 9 * time.Second }, "cluster.presence_ttl: must be at least twice cluster.heartbeat (5s)"},
		{"PresenceTTLOK", func(c *Config) { c.Cluster.Heartbeat, c.Cluster.PresenceTTL = time.Second, 2*time.Second }, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.mutate(c)
			err := c.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one naming %s", err, tc.wantErr)
			}
		})
	}
}

// Ensure environment names follow SPEC §2.
func TestEnvName(t *testing.T) {
	for key, want := range map[string]string{"broker": "CHATCTL_BROKER", "cluster.presence_ttl": "CHATCTL_CLUSTER_PRESENCE_TTL", "listen": "CHATCTL_LISTEN", "token.ttl": "CHATCTL_TOKEN_TTL", "ws.max_conns_per_user": "CHATCTL_WS_MAX_CONNS_PER_USER"} {
		if got := EnvName(key); got != want {
			t.Errorf("EnvName(%s) = %s, want %s", key, got, want)
		}
	}
}

// Ensure Set refuses unknown keys and bad values.
func TestSet(t *testing.T) {
	c := Default()
	if err := c.Set("nope", "1", SourceFlag); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("Set unknown key: %v", err)
	}
	if err := c.Set("ws.queue", "x", SourceFlag); err == nil || !strings.Contains(err.Error(), "ws.queue") {
		t.Errorf("Set bad value: %v", err)
	}
	if err := c.Set("trusted_proxies", "10.0.0.0/8, 192.168.0.0/16", SourceFlag); err != nil || len(c.TrustedProxies) != 2 {
		t.Errorf("Set list: %v %v", err, c.TrustedProxies)
	}
}

// Ensure the store URL is checked and its password never shown.
func TestStoreURL(t *testing.T) {
	for _, tc := range []struct {
		store, bad, shown string
	}{
		{"", "", ""},
		{"postgres://chatctl@db1:5432/chatctl?sslmode=verify-full", "", "postgres://chatctl@db1:5432/chatctl?sslmode=verify-full"},
		{"postgresql://u:pa55word@db1/chatctl", "", "postgresql://u:xxxxx@db1/chatctl"},
		{"postgres:///chatctl?host=/run/postgresql", "", "postgres:///chatctl?host=/run/postgresql"},
		{"postgres:///chatctl", "names no host", "postgres:///chatctl"},
		{"mysql://u:pw@db1/x", "want empty", "mysql://u:xxxxx@db1/x"},
		{"chatctl.db", "want empty", "chatctl.db"},
		{"postgres://u:p%zz@db1/x", "not a valid URL", "postgres://…"},
	} {
		t.Run(tc.store, func(t *testing.T) {
			if got := RedactURL(tc.store); got != tc.shown {
				t.Errorf("RedactURL = %q, want %q", got, tc.shown)
			}
			msg := checkStoreURL(tc.store)
			if (tc.bad == "") != (msg == "") || !strings.Contains(msg, tc.bad) {
				t.Errorf("checkStoreURL = %q, want %q", msg, tc.bad)
			}
			if strings.Contains(msg, "pa55word") || strings.Contains(msg, "pw@") {
				t.Errorf("checkStoreURL shows the password: %q", msg)
			}
		})
	}
}

// Ensure the broker and cluster keys follow SPEC §2 (env and file), that
// broker without PostgreSQL is one line naming the key, and that a
// broker URL's password is never shown.
func TestBrokerKeys(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(file, []byte("store: "+pgURL+"\ncluster:\n  name: prod\n  heartbeat: 2s\n"), 0o600)
	c, err := Load(file, env(map[string]string{
		"CHATCTL_BROKER":               "nats://chat:s3cret@n1:4222,nats://n2:4222",
		"CHATCTL_CLUSTER_NODE_ID":      "node-1",
		"CHATCTL_CLUSTER_PRESENCE_TTL": "6s",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		key, source string
		got, want   any
	}{
		{"broker", SourceEnv, c.Broker, "nats://chat:s3cret@n1:4222,nats://n2:4222"},
		{"cluster.name", SourceFile, c.Cluster.Name, "prod"},
		{"cluster.node_id", SourceEnv, c.Cluster.NodeID, "node-1"},
		{"cluster.heartbeat", SourceFile, c.Cluster.Heartbeat, 2 * time.Second},
		{"cluster.presence_ttl", SourceEnv, c.Cluster.PresenceTTL, 6 * time.Second},
	} {
		if !reflect.DeepEqual(tc.got, tc.want) || c.Source(tc.key) != tc.source {
			t.Errorf("%s = %v from %s, want %v from %s", tc.key, tc.got, c.Source(tc.key), tc.want, tc.source)
		}
	}
	for _, e := range c.Entries() {
		if e.Key == "broker" && e.Value != "nats://chat:xxxxx@n1:4222,nats://n2:4222" {
			t.Errorf("broker shown as %v", e.Value)
		}
	}
	c.Store = ""
	err = c.Validate()
	if err == nil || strings.Contains(err.Error(), "\n") || !strings.HasPrefix(err.Error(), "broker: ") {
		t.Fatalf("broker with bbolt: %v; want one line naming broker", err)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error shows the password: %v", err)
	}
	c.Store, c.Broker = pgURL, "nats://chat:s3cret@n1"
	if err := c.Validate(); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("bad broker URL: %v (must fail without the password)", err)
	}
}
