package api

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/crypto/bcrypt"

	"github.com/chatctl/chatctl/admin"
	"github.com/chatctl/chatctl/configs"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "chatctl test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue returns a PEM certificate for localhost and 127.0.0.1 with the
// given serial, and its PEM key.
func (ca *testCA) issue(t *testing.T, serial int64) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

// replaceFile writes data to path atomically (write, then rename), as
// certbot and cert-manager do.
func replaceFile(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// startServe runs Serve with cfg and returns its address, its log and a
// function that stops it (also called when the test ends).
func startServe(t *testing.T, cfg *configs.Config, opts ServeOptions) (string, *logBuffer, func()) {
	t.Helper()
	logs := &logBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	errc := make(chan error, 1)
	opts.Ready = func(addr string) { ready <- addr }
	go func() { errc <- Serve(ctx, cfg, log, opts) }()
	select {
	case addr := <-ready:
		var once sync.Once
		stop := func() {
			once.Do(func() {
				cancel()
				select {
				case err := <-errc:
					if err != nil {
						t.Errorf("Serve = %v", err)
					}
				case <-time.After(20 * time.Second):
					t.Error("Serve did not return after cancel")
				}
			})
		}
		t.Cleanup(stop)
		return addr, logs, stop
	case err := <-errc:
		cancel()
		t.Fatalf("Serve returned before Ready: %v\n%s", err, logs.String())
	case <-time.After(20 * time.Second):
		cancel()
		t.Fatal("Serve never became ready")
	}
	return "", nil, nil
}

func tlsTestConfig(t *testing.T) *configs.Config {
	cfg := configs.Default()
	cfg.DB = filepath.Join(socketDir(t), "c.db")
	cfg.Listen = "127.0.0.1:0"
	cfg.Password.BcryptCost = bcrypt.MinCost
	return cfg
}

// servedSerial makes a TLS handshake trusting only roots and returns the
// serial of the certificate the server presented.
func servedSerial(t *testing.T, addr, name string, roots *x509.CertPool) int64 {
	t.Helper()
	d := &net.Dialer{Timeout: 10 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{RootCAs: roots, ServerName: name})
	if err != nil {
		t.Fatalf("TLS handshake: %v", err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

// Ensure HTTPS with tls.cert/tls.key works end to end for a client that
// trusts only the test CA: /health, /users/me and a chat over wss://, with
// HSTS on every response; and that replacing the files on disk makes new
// connections get the new certificate without a restart, while a broken
// pair is logged and the old certificate kept.
func TestTLSFiles(t *testing.T) {
	defer func(d time.Duration) { certCheckEvery = d }(certCheckEvery)
	certCheckEvery = 20 * time.Millisecond

	ca := newTestCA(t)
	cfg := tlsTestConfig(t)
	dir := filepath.Dir(cfg.DB)
	cfg.TLS.Cert, cfg.TLS.Key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	certPEM, keyPEM := ca.issue(t, 100)
	replaceFile(t, cfg.TLS.Cert, certPEM)
	replaceFile(t, cfg.TLS.Key, keyPEM)
	var stdout strings.Builder
	addr, logs, _ := startServe(t, cfg, ServeOptions{Stdout: &stdout})
	if !strings.Contains(stdout.String(), "https://"+addr) {
		t.Errorf("stdout = %q, want https://%s", stdout.String(), addr)
	}
	_, port, _ := net.SplitHostPort(addr)
	base := "https://localhost:" + port

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.pool},
	}}
	defer client.CloseIdleConnections()
	get := func(path, token string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}
	resp, body := get("/health", "")
	if resp.StatusCode != http.StatusOK || body != `{"status":"ok"}`+"\n" {
		t.Fatalf("/health = %d %s", resp.StatusCode, body)
	}
	if resp.TLS == nil || resp.TLS.NegotiatedProtocol == "h2" {
		t.Errorf("TLS state %+v: want TLS with HTTP/1.1", resp.TLS)
	}
	if got := resp.Header.Get("Strict-Transport-Security"); got != "max-age=31536000" {
		t.Errorf("Strict-Transport-Security = %q, want max-age=31536000", got)
	}

	// A client that trusts only the system roots refuses the certificate.
	if _, err := http.Get(base + "/health"); err == nil {
		t.Error("a client without the test CA accepted the certificate")
	}

	a, err := admin.Connect(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tokens := map[string]string{}
	for _, name := range []string{"alice", "bob"} {
		if _, err := a.AddUser(bg, admin.AddUserRequest{Name: name, Password: testPassword}); err != nil {
			t.Fatal(err)
		}
		it, err := a.IssueToken(bg, name, 0)
		if err != nil {
			t.Fatal(err)
		}
		tokens[name] = it.AccessToken
	}
	a.Close()

	resp, body = get("/users/me", tokens["alice"])
	var me struct{ Username string }
	if err := json.Unmarshal([]byte(body), &me); resp.StatusCode != http.StatusOK || err != nil || me.Username != "alice" {
		t.Fatalf("/users/me = %d %s", resp.StatusCode, body)
	}

	// Chat over wss://: the write pool (on by default) must hand TLS
	// connections to their own writers, or the frames would reach the
	// socket unencrypted and the client would fail.
	dialer := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: ca.pool}, HandshakeTimeout: 10 * time.Second}
	ws := map[string]*websocket.Conn{}
	for _, name := range []string{"alice", "bob"} {
		c, _, err := dialer.Dial("wss://localhost:"+port+"/ws?token="+tokens[name], nil)
		if err != nil {
			t.Fatalf("wss dial as %s: %v", name, err)
		}
		defer c.Close()
		ws[name] = c
		if err := c.WriteJSON(map[string]any{"type": "join", "room": "general"}); err != nil {
			t.Fatal(err)
		}
		waitFrame(t, c, func(f map[string]any) bool { return f["type"] == "joined" })
	}
	const n = 30 // within ws.send_burst (40)
	for i := range n {
		if err := ws["alice"].WriteJSON(map[string]any{"type": "send", "room": "general", "text": "hi " + itoa(i), "ref": itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		f := waitFrame(t, ws["bob"], func(f map[string]any) bool { return f["type"] == "message" })
		if f["from"] != "alice" || f["text"] != "hi "+itoa(i) {
			t.Fatalf("bob got %v, want message %d from alice", f, i)
		}
	}
	waitFrame(t, ws["alice"], func(f map[string]any) bool { return f["type"] == "ack" && f["ref"] == itoa(n-1) })

	// Reload: a new pair, written atomically, is served to new connections.
	if got := servedSerial(t, addr, "localhost", ca.pool); got != 100 {
		t.Fatalf("served serial = %d, want 100", got)
	}
	certPEM, keyPEM = ca.issue(t, 200)
	replaceFile(t, cfg.TLS.Key, keyPEM)
	replaceFile(t, cfg.TLS.Cert, certPEM)
	waitForLong(t, "the new certificate to be served", func() bool {
		return servedSerial(t, addr, "localhost", ca.pool) == 200
	})
	if !strings.Contains(logs.String(), "TLS certificate changed") {
		t.Errorf("no log of the change:\n%s", logs.String())
	}
	// The live wss connections were not disturbed.
	if err := ws["alice"].WriteJSON(map[string]any{"type": "send", "room": "general", "text": "after reload"}); err != nil {
		t.Fatal(err)
	}
	waitFrame(t, ws["bob"], func(f map[string]any) bool { return f["text"] == "after reload" })

	// A broken pair (a key that does not match) is logged; the old
	// certificate stays.
	_, otherKey := ca.issue(t, 300)
	replaceFile(t, cfg.TLS.Key, otherKey)
	waitForLong(t, "the broken pair to be logged", func() bool {
		servedSerial(t, addr, "localhost", ca.pool)
		return strings.Contains(logs.String(), "TLS certificate not reloaded")
	})
	if got := servedSerial(t, addr, "localhost", ca.pool); got != 200 {
		t.Errorf("after a broken pair, served serial = %d, want 200 (kept)", got)
	}
	if !strings.Contains(logs.String(), "private key does not match public key") {
		t.Errorf("the log does not say why:\n%s", logs.String())
	}
}

// waitForLong is waitFor with a deadline fit for TLS handshakes on a
// loaded machine.
func waitForLong(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond) // polling interval, not a wait for an event
	}
}

func itoa(i int) string { return big.NewInt(int64(i)).String() }

// waitFrame reads frames from c until match accepts one.
func waitFrame(t *testing.T, c *websocket.Conn, match func(map[string]any) bool) map[string]any {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	for {
		var f map[string]any
		if err := c.ReadJSON(&f); err != nil {
			t.Fatalf("reading frames: %v", err)
		}
		if match(f) {
			return f
		}
	}
}

// Ensure Reload re-reads the files even when they look unchanged (same
// size and modification time), and GetCertificate alone does not.
func TestCertReloaderReload(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	c1, k1 := ca.issue(t, 1)
	replaceFile(t, certPath, c1)
	replaceFile(t, keyPath, k1)
	var logs logBuffer
	r, err := LoadCertFiles(certPath, keyPath, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	stamp := func(p string) (time.Time, int64) {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return fi.ModTime(), fi.Size()
	}
	// A new pair of exactly the same sizes (ECDSA signatures vary by a
	// byte or two, so draw until they match), given the old times.
	var c2, k2 []byte
	for range 100 {
		if c2, k2 = ca.issue(t, 2); len(c2) == len(c1) && len(k2) == len(k1) {
			break
		}
	}
	if len(c2) != len(c1) || len(k2) != len(k1) {
		t.Fatal("could not draw a certificate of the same size")
	}
	for _, f := range []struct {
		path string
		data []byte
	}{{certPath, c2}, {keyPath, k2}} {
		mod, _ := stamp(f.path)
		replaceFile(t, f.path, f.data)
		if err := os.Chtimes(f.path, mod, mod); err != nil {
			t.Fatal(err)
		}
	}
	r.now = func() time.Time { return time.Now().Add(time.Hour) } // the check is due
	got, _ := r.GetCertificate(nil)
	if got.Leaf.SerialNumber.Int64() != 1 {
		t.Fatalf("GetCertificate re-read files whose stamps did not change")
	}
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := r.Certificate().Leaf.SerialNumber.Int64(); got != 2 {
		t.Fatalf("after Reload serial = %d, want 2", got)
	}
	// serverTLS.Reload, what SIGHUP calls, reaches it; without files it is
	// a no-op.
	var none *serverTLS
	if err := none.Reload(); err != nil {
		t.Errorf("Reload without TLS = %v", err)
	}
	if err := (&serverTLS{}).Reload(); err != nil {
		t.Errorf("Reload with ACME = %v", err)
	}
	st := &serverTLS{certs: r}
	replaceFile(t, certPath, []byte("garbage"))
	if err := st.Reload(); err == nil {
		t.Error("serverTLS.Reload did not re-read the files")
	}
	replaceFile(t, certPath, c2)
	// A broken file: Reload says why, naming the key and the file, and keeps
	// the certificate.
	replaceFile(t, certPath, []byte("not a certificate\n"))
	err = r.Reload()
	if err == nil || !strings.Contains(err.Error(), "tls.cert") || !strings.Contains(err.Error(), certPath) {
		t.Fatalf("Reload of a broken cert = %v, want an error naming tls.cert and %s", err, certPath)
	}
	if got := r.Certificate().Leaf.SerialNumber.Int64(); got != 2 {
		t.Fatalf("after a failed Reload serial = %d, want 2 (kept)", got)
	}
}

// Ensure a bad certificate setup stops the start with one error naming
// the key and the file.
func TestTLSStartErrors(t *testing.T) {
	ca := newTestCA(t)
	certPEM, keyPEM := ca.issue(t, 1)
	_, otherKey := ca.issue(t, 2)
	cases := []struct {
		name      string
		cert, key []byte
		keyMode   os.FileMode
		want      []string
	}{
		{"key readable by others", certPEM, keyPEM, 0o644, []string{"tls.key", "key.pem", "chmod 600"}},
		{"cert not PEM", []byte("hello"), keyPEM, 0o600, []string{"tls.cert", "cert.pem", "no PEM CERTIFICATE"}},
		{"key not PEM", certPEM, []byte("hello"), 0o600, []string{"tls.key", "key.pem", "no PEM PRIVATE KEY"}},
		{"key does not match", certPEM, otherKey, 0o600, []string{"tls.cert", "tls.key", "does not match"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tlsTestConfig(t)
			dir := filepath.Dir(cfg.DB)
			cfg.TLS.Cert, cfg.TLS.Key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
			if err := os.WriteFile(cfg.TLS.Cert, tc.cert, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(cfg.TLS.Key, tc.key, tc.keyMode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(cfg.TLS.Key, tc.keyMode); err != nil { // past the umask
				t.Fatal(err)
			}
			err := Serve(context.Background(), cfg, slog.New(slog.DiscardHandler), ServeOptions{})
			if err == nil {
				t.Fatal("Serve started")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// Ensure the HSTS header goes only on requests that came over TLS, with
// the configured max-age, and not at all with tls.hsts_max_age 0.
func TestHSTSOnlyOverTLS(t *testing.T) {
	for _, tc := range []struct {
		age  time.Duration
		tls  bool
		want string
	}{
		{365 * 24 * time.Hour, true, "max-age=31536000"},
		{365 * 24 * time.Hour, false, ""},
		{time.Hour, true, "max-age=3600"},
		{0, true, ""},
	} {
		e := newEnv(t, func(c *configs.Config) { c.TLS.HSTSMaxAge = tc.age })
		req := httptest.NewRequest(http.MethodGet, "/health", nil)
		if tc.tls {
			req.TLS = &tls.ConnectionState{HandshakeComplete: true}
		}
		rec := httptest.NewRecorder()
		e.srv.ServeHTTP(rec, req)
		if got := rec.Header().Get("Strict-Transport-Security"); got != tc.want {
			t.Errorf("max age %s, TLS %v: Strict-Transport-Security = %q, want %q", tc.age, tc.tls, got, tc.want)
		}
	}
}

// Ensure the connection cap works under TLS: an idle keep-alive HTTPS
// connection is recognised as idle (connState sees the *tls.Conn around
// the limiter's conn) and closed to make room for a newcomer, and a
// refusal sends no plain-HTTP bytes into what the client expects to be a
// TLS handshake.
func TestConnLimitUnderTLS(t *testing.T) {
	ca := newTestCA(t)
	certPEM, keyPEM := ca.issue(t, 1)
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := newConnLimiter(tcp, 1, 0, nil, slog.New(slog.DiscardHandler))
	l.silent = true
	hs := &http.Server{ConnState: l.connState, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	})}
	go hs.Serve(tls.NewListener(l, &tls.Config{Certificates: []tls.Certificate{cert}}))
	defer hs.Close()
	url := "https://localhost:" + strings.Split(tcp.Addr().String(), ":")[1] + "/"
	newClient := func() *http.Client {
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool}}}
	}
	a, b := newClient(), newClient()
	defer a.CloseIdleConnections()
	defer b.CloseIdleConnections()
	for i, c := range []*http.Client{a, b} { // b needs a's idle connection closed
		resp, err := c.Get(url)
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		// The server marks the connection idle just after it wrote the
		// response, which the client may have read already: wait for it,
		// or the next connection finds no idle one to replace.
		waitFor(t, "the connection to go idle", func() bool {
			l.mu.Lock()
			defer l.mu.Unlock()
			return l.idleCount() == 1
		})
	}

	// The one slot is b's idle connection. A new TLS connection takes it
	// (b's is closed) and, before its first request, is not idle; so the
	// next one is refused, silently.
	busy, err := tls.Dial("tcp", tcp.Addr().String(), &tls.Config{RootCAs: ca.pool, ServerName: "localhost"})
	if err != nil {
		t.Fatalf("a newcomer was not given the idle connection's slot: %v", err)
	}
	defer busy.Close()
	raw, err := net.Dial("tcp", tcp.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	_ = raw.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := raw.Read(make([]byte, 64))
	if n != 0 || err != io.EOF {
		t.Errorf("a refused connection under TLS read %d bytes, %v; want 0 bytes and EOF", n, err)
	}
}
