package api

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"

	"github.com/chatctl/chatctl/configs"
)

// certCheckEvery is how often, at most, a TLS handshake looks at the
// certificate files' modification time and size. Tests shorten it.
var certCheckEvery = 2 * time.Second

// CertReloader serves the certificate pair at tls.cert and tls.key. A TLS
// handshake (GetCertificate) re-reads the pair when either file's
// modification time or size changed, looking at most every certCheckEvery;
// Reload re-reads it at once (the SIGHUP path). A pair that fails to load
// (a half-written file, a key that does not match) is logged and the
// previous one kept, so a botched renewal never takes the server down.
type CertReloader struct {
	certPath, keyPath string
	log               *slog.Logger
	now               func() time.Time

	mu      sync.Mutex       // guards the fields below
	cert    *tls.Certificate // served; never nil after LoadCertFiles
	stamp   pairStamp        // of the files last read, good or not
	checked time.Time        // last look at the stamps
}

// fileStamp is what tells a changed file: modification time and size.
type fileStamp struct {
	mod  time.Time
	size int64
}

type pairStamp [2]fileStamp

// LoadCertFiles reads the pair for the first time. Its errors name the key
// (tls.cert or tls.key) and the file.
func LoadCertFiles(certPath, keyPath string, log *slog.Logger) (*CertReloader, error) {
	r := &CertReloader{certPath: certPath, keyPath: keyPath, log: log, now: time.Now}
	stamp, _ := r.stamps()
	cert, err := loadPair(certPath, keyPath)
	if err != nil {
		return nil, err
	}
	r.cert, r.stamp, r.checked = cert, stamp, r.now()
	r.logLoaded("TLS certificate loaded", cert)
	return r, nil
}

// GetCertificate is the tls.Config hook: the current certificate, after
// re-reading the files if they changed (checked at most every
// certCheckEvery).
func (r *CertReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := r.now(); now.Sub(r.checked) >= certCheckEvery {
		r.checked = now
		if stamp, err := r.stamps(); err == nil && stamp != r.stamp {
			r.stamp = stamp
			_ = r.reloadLocked("files changed")
		}
	}
	return r.cert, nil
}

// Reload re-reads the certificate files now, whether or not they look
// changed (for SIGHUP). On error the previous certificate stays in use and
// the error, which names the key and the file, is returned (and logged).
// It is safe to call from any goroutine.
func (r *CertReloader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stamp, _ = r.stamps()
	r.checked = r.now()
	return r.reloadLocked("reload requested")
}

// Certificate returns the certificate being served.
func (r *CertReloader) Certificate() *tls.Certificate {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cert
}

func (r *CertReloader) reloadLocked(why string) error {
	cert, err := loadPair(r.certPath, r.keyPath)
	if err != nil {
		r.log.Error("TLS certificate not reloaded; still serving the previous one", "reason", why, "err", err)
		return err
	}
	if slices.Equal(cert.Certificate[0], r.cert.Certificate[0]) {
		return nil
	}
	old := r.cert.Leaf
	r.cert = cert
	r.logLoaded("TLS certificate changed", cert, "reason", why,
		"old_serial", old.SerialNumber.Text(16), "old_not_after", old.NotAfter)
	return nil
}

func (r *CertReloader) logLoaded(msg string, cert *tls.Certificate, extra ...any) {
	l := cert.Leaf
	args := append([]any{"cert", r.certPath, "subject", l.Subject.String(), "dns_names", l.DNSNames,
		"serial", l.SerialNumber.Text(16), "not_after", l.NotAfter}, extra...)
	r.log.Info(msg, args...)
	if left := time.Until(l.NotAfter); left < 0 {
		r.log.Warn("TLS certificate has expired", "cert", r.certPath, "not_after", l.NotAfter)
	} else if left < 7*24*time.Hour {
		r.log.Warn("TLS certificate expires within a week", "cert", r.certPath, "not_after", l.NotAfter)
	}
}

// stamps stats both files.
func (r *CertReloader) stamps() (pairStamp, error) {
	var s pairStamp
	for i, p := range []string{r.certPath, r.keyPath} {
		fi, err := os.Stat(p)
		if err != nil {
			return s, err
		}
		s[i] = fileStamp{fi.ModTime(), fi.Size()}
	}
	return s, nil
}

// loadPair reads and checks a PEM certificate chain and its private key.
func loadPair(certPath, keyPath string) (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("tls.cert: cannot read %s: %w", absPath(certPath), unwrapPath(err))
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("tls.key: cannot read %s: %w", absPath(keyPath), unwrapPath(err))
	}
	if b, _ := pem.Decode(certPEM); b == nil || b.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("tls.cert: %s holds no PEM CERTIFICATE block", absPath(certPath))
	}
	if b, _ := pem.Decode(keyPEM); b == nil || !strings.HasSuffix(b.Type, "PRIVATE KEY") {
		return nil, fmt.Errorf("tls.key: %s holds no PEM PRIVATE KEY block", absPath(keyPath))
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("tls.cert %s and tls.key %s: %w", absPath(certPath), absPath(keyPath), err)
	}
	if cert.Leaf == nil { // Go fills it in since 1.23; parse it where it does not
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("tls.cert: %s: %w", absPath(certPath), err)
		}
	}
	return &cert, nil
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// serverTLS is what Serve needs to speak HTTPS: the tls.Config of the
// public listener and, with ACME, the handler of the plain-HTTP listener.
type serverTLS struct {
	config *tls.Config
	// certs is set with tls.cert/tls.key: Reload it on SIGHUP.
	certs *CertReloader
	// acme is set with tls.acme: see challengeHandler.
	acme    *autocert.Manager
	domains []string
	log     *slog.Logger
}

// challengeHandler is the plain-HTTP listener's handler with ACME: it
// answers HTTP-01 challenges and redirects the rest to HTTPS on httpsPort.
func (t *serverTLS) challengeHandler(httpsPort string) http.Handler {
	return logChallenges(t.acme.HTTPHandler(redirectHTTPS(t.domains, httpsPort)), t.log)
}

// Reload re-reads tls.cert and tls.key (the SIGHUP path; see
// CertReloader.Reload). With plain HTTP (t nil) or ACME, whose certificates
// renew by themselves, there is nothing to reload and it returns nil.
func (t *serverTLS) Reload() error {
	if t == nil || t.certs == nil {
		return nil
	}
	return t.certs.Reload()
}

// newServerTLS builds the TLS side of cfg, or returns nil for plain HTTP.
// acmeClient, when set, is the HTTP client of the ACME protocol (tests
// trust their own CA with it).
func newServerTLS(cfg *configs.Config, log *slog.Logger, acmeClient *http.Client) (*serverTLS, error) {
	switch {
	case cfg.TLS.Cert != "":
		certs, err := LoadCertFiles(cfg.TLS.Cert, cfg.TLS.Key, log)
		if err != nil {
			return nil, err
		}
		return &serverTLS{config: tlsConfig(certs.GetCertificate), certs: certs}, nil
	case len(cfg.TLS.ACME.Domains) > 0:
		dir := cfg.ACMECacheDir()
		if err := privateDir(dir); err != nil {
			return nil, fmt.Errorf("tls.acme: cache folder: %w", err)
		}
		m := &autocert.Manager{
			Prompt:     autocert.AcceptTOS,
			Cache:      autocert.DirCache(dir),
			HostPolicy: autocert.HostWhitelist(cfg.TLS.ACME.Domains...),
			Email:      cfg.TLS.ACME.Email,
			Client:     &acme.Client{DirectoryURL: cfg.TLS.ACME.Directory, HTTPClient: acmeClient},
		}
		get := func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			cert, err := m.GetCertificate(hello)
			if err != nil {
				log.Warn("ACME: no certificate for TLS handshake", "server_name", hello.ServerName, "err", err)
			}
			return cert, err
		}
		log.Info("ACME on", "domains", cfg.TLS.ACME.Domains, "directory", cfg.TLS.ACME.Directory,
			"cache", dir, "http_listen", cfg.TLS.ACME.HTTPListen)
		return &serverTLS{config: tlsConfig(get), acme: m, domains: cfg.TLS.ACME.Domains, log: log}, nil
	}
	return nil, nil
}

// tlsConfig is the public listener's TLS: TLS 1.2 or later, HTTP/1.1 only
// (WebSocket upgrades need it; gorilla/websocket does not speak HTTP/2),
// and the ALPN protocol of ACME's TLS-ALPN-01 challenge.
func tlsConfig(get func(*tls.ClientHelloInfo) (*tls.Certificate, error)) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: get,
		NextProtos:     []string{"http/1.1", acme.ALPNProto},
	}
}

// checkDirModes is true where Unix permission bits are meaningful.
const checkDirModes = runtime.GOOS != "windows"

// privateDir creates dir 0700 if missing and refuses one that group or
// others may use: it holds the ACME account key and the certificates' keys.
func privateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a folder", absPath(dir))
	}
	if checkDirModes && fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%w: %s is accessible by group or others (mode %04o); fix: chmod 700 %s",
			configs.ErrLoosePermissions, absPath(dir), fi.Mode().Perm(), absPath(dir))
	}
	return nil
}

// logChallenges logs the requests for ACME challenges on the plain-HTTP
// listener (not the redirects), so an operator can see whether the CA got
// through. It drops a port from their Host: autocert checks the Host
// against the domains as it is, and a CA that validates on another port
// than 80 (a test CA, or a port forward) sends one.
func logChallenges(next http.Handler, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/.well-known/acme-challenge/") {
			next.ServeHTTP(w, r)
			return
		}
		if h, _, err := net.SplitHostPort(r.Host); err == nil {
			r.Host = h
		}
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		log.Info("ACME HTTP-01 challenge", "host", r.Host, "status", sw.status, "client", r.RemoteAddr)
	})
}

// redirectHTTPS sends plain-HTTP requests to the same path over HTTPS, on
// the public listener's port, with 308 (the method and body are kept). A
// Host that is not one of the ACME domains is replaced by the first one,
// so the redirect never points anywhere else.
func redirectHTTPS(domains []string, port string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if !slices.ContainsFunc(domains, func(d string) bool { return strings.EqualFold(d, host) }) {
			host = domains[0]
		}
		if n, _ := strconv.Atoi(port); n != 443 {
			host = net.JoinHostPort(host, port)
		}
		http.Redirect(w, r, "https://"+host+r.URL.RequestURI(), http.StatusPermanentRedirect)
	})
}
