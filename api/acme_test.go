package api

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/letsencrypt/challtestsrv"
	pebbleca "github.com/letsencrypt/pebble/v2/ca"
	pebbledb "github.com/letsencrypt/pebble/v2/db"
	pebbleva "github.com/letsencrypt/pebble/v2/va"
	pebblewfe "github.com/letsencrypt/pebble/v2/wfe"
)

// pebble is Let's Encrypt's test ACME server, run in this process: its
// real WFE, CA and VA, the VA validating challenges over the network.
type pebble struct {
	srv   *httptest.Server // the ACME directory, over HTTPS
	roots *x509.CertPool   // what Pebble's certificates chain to
}

// acmeDomain is the name the test certificate is issued for. autocert
// refuses single-label names such as localhost, so Pebble's VA resolves it
// through a DNS server of the test's own (challtestsrv, Pebble's companion)
// that answers 127.0.0.1 to every A query and nothing to AAAA.
const acmeDomain = "chat.chatctl.test"

// startPebble runs Pebble with its VA sending HTTP-01 validations to
// 127.0.0.1:httpPort and TLS-ALPN-01 ones to 127.0.0.1:tlsPort.
func startPebble(t *testing.T, httpPort, tlsPort int) *pebble {
	t.Helper()
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")      // no random waits before validating
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0") // no spurious badNonce errors
	logger := log.New(io.Discard, "", 0)
	if testing.Verbose() {
		logger = log.New(os.Stderr, "pebble ", log.Lmicroseconds)
	}
	db := pebbledb.NewMemoryStore()
	ca := pebbleca.New(logger, db, "", "ecdsa", 0, 1, map[string]pebbleca.Profile{
		"default": {Description: "default"},
	})
	dnsAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t, "127.0.0.1")))
	dns, err := challtestsrv.New(challtestsrv.Config{DNSAddrs: []string{dnsAddr}, Log: logger})
	if err != nil {
		t.Fatal(err)
	}
	dns.SetDefaultDNSIPv4("127.0.0.1")
	dns.SetDefaultDNSIPv6("")
	go dns.Run()
	t.Cleanup(dns.Shutdown)
	waitForLong(t, "the test DNS server", func() bool {
		c, err := net.DialTimeout("tcp", dnsAddr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	va := pebbleva.New(logger, httpPort, tlsPort, false, dnsAddr, db)
	wfe := pebblewfe.New(logger, db, va, ca, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)
	srv := httptest.NewTLSServer(wfe.Handler())
	t.Cleanup(srv.Close)
	roots := x509.NewCertPool()
	roots.AddCert(ca.GetRootCert(0).Cert)
	return &pebble{srv: srv, roots: roots}
}

// freePort returns a TCP port on host that nothing listens on right now.
func freePort(t *testing.T, host string) int {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Ensure tls.acme gets a real certificate from an ACME CA (Pebble, in
// process) by answering its HTTP-01 challenge on tls.acme.http_listen, and
// serves it: a client trusting only Pebble's root reaches /health over
// HTTPS, with HSTS. The plain-HTTP listener redirects everything else to
// HTTPS, without HSTS. The certificate and account are cached beside the
// store (0700), so a restart serves the same certificate with the CA gone.
func TestACMEPebble(t *testing.T) {
	httpPort := freePort(t, "127.0.0.1")
	// TLS-ALPN-01, which autocert tries first, goes to a closed port and
	// fails: only HTTP-01 can get the certificate.
	deadPort := freePort(t, "127.0.0.1")
	p := startPebble(t, httpPort, deadPort)

	cfg := tlsTestConfig(t)
	cfg.TLS.ACME.Domains = []string{acmeDomain}
	cfg.TLS.ACME.Email = "ops@chatctl.test"
	cfg.TLS.ACME.Directory = p.srv.URL + pebblewfe.DirectoryPath
	cfg.TLS.ACME.HTTPListen = net.JoinHostPort("127.0.0.1", strconv.Itoa(httpPort))
	if err := cfg.Validate(); err != nil && !strings.Contains(err.Error(), "bcrypt_cost") { // tests use a cheap cost
		t.Fatal(err)
	}
	addr, logs, stop := startServe(t, cfg, ServeOptions{ACMEClient: p.srv.Client()})
	_, port, _ := net.SplitHostPort(addr)

	// Clients reach acmeDomain at 127.0.0.1, as its DNS would send them.
	dialLocal := func(ctx context.Context, network, a string) (net.Conn, error) {
		_, port, _ := net.SplitHostPort(a)
		return (&net.Dialer{}).DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
	}
	client := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: p.roots},
		DialContext:     dialLocal,
	}}
	defer client.CloseIdleConnections()
	// The first handshake waits while the certificate is issued.
	resp, err := client.Get("https://" + acmeDomain + ":" + port + "/health")
	if err != nil {
		t.Fatalf("GET /health over HTTPS: %v\n%s", err, logs.String())
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != `{"status":"ok"}`+"\n" {
		t.Fatalf("/health = %d %s", resp.StatusCode, body)
	}
	leaf := resp.TLS.PeerCertificates[0]
	if !slices.Contains(leaf.DNSNames, acmeDomain) || !strings.Contains(leaf.Issuer.CommonName, "Pebble") {
		t.Errorf("served certificate: names %v, issuer %q; want %s from Pebble", leaf.DNSNames, leaf.Issuer.CommonName, acmeDomain)
	}
	if got := resp.Header.Get("Strict-Transport-Security"); got != "max-age=31536000" {
		t.Errorf("Strict-Transport-Security = %q", got)
	}
	if !strings.Contains(logs.String(), `msg="ACME HTTP-01 challenge" host=`+acmeDomain+" status=200") {
		t.Errorf("the CA's HTTP-01 request was not answered (200) on tls.acme.http_listen:\n%s", logs.String())
	}

	// Plain HTTP on the challenge listener: a redirect to HTTPS, no HSTS.
	noFollow := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: dialLocal}, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	resp, err = noFollow.Get("http://" + acmeDomain + ":" + strconv.Itoa(httpPort) + "/users/me?x=1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := "https://" + acmeDomain + ":" + port + "/users/me?x=1"; resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
		t.Errorf("plain HTTP = %d Location %q, want 308 %s", resp.StatusCode, resp.Header.Get("Location"), want)
	}
	if resp.Header.Get("Strict-Transport-Security") != "" {
		t.Error("HSTS sent over plain HTTP")
	}

	// The cache: private, holding the certificate.
	dir := cfg.ACMECacheDir()
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("ACME cache %s mode %04o, want 0700", dir, fi.Mode().Perm())
	}
	if _, err := os.Stat(filepath.Join(dir, acmeDomain)); err != nil {
		t.Errorf("no cached certificate: %v", err)
	}
	serial := leaf.SerialNumber
	client.CloseIdleConnections()

	// Restart with the CA gone: the cached certificate is served.
	p.srv.Close()
	stop()
	addr2, _, _ := startServe(t, cfg, ServeOptions{ACMEClient: p.srv.Client()})
	_, port2, _ := net.SplitHostPort(addr2)
	c, err := tls.Dial("tcp", "127.0.0.1:"+port2, &tls.Config{RootCAs: p.roots, ServerName: acmeDomain})
	if err != nil {
		t.Fatalf("handshake after restart: %v", err)
	}
	defer c.Close()
	if got := c.ConnectionState().PeerCertificates[0].SerialNumber; got.Cmp(serial) != 0 {
		t.Errorf("after restart serial %v, want the cached %v", got, serial)
	}
}
