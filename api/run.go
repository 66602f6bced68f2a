package api

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/chatctl/chatctl/admin"
	"github.com/chatctl/chatctl/configs"
	"github.com/chatctl/chatctl/store"
)

// Server timeouts. Slow clients cannot hold a request open forever; the
// WebSocket connections leave these behind when they are upgraded.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 2 * time.Minute
	// pruneEvery is how often expired sessions and, with history.max_age,
	// old messages are deleted.
	pruneEvery = time.Minute
)

// ServeOptions are the optional parts of Serve.
type ServeOptions struct {
	// Stdout receives the operator-facing start-up lines.
	Stdout io.Writer
	// Ready, when set, is called with the TCP address once both listeners
	// accept connections.
	Ready func(addr string)
	// ACMEClient, when set, is the HTTP client autocert talks to the ACME
	// directory with (tests use it to trust their own CA); nil is
	// http.DefaultClient.
	ACMEClient *http.Client
}

// Serve runs chatctl's server until ctx is done, then drains: it stops
// accepting, closes every WebSocket with 1001 after committing what was
// acknowledged, and closes the store. A clean drain returns nil.
func Serve(ctx context.Context, cfg *configs.Config, log *slog.Logger, opts ServeOptions) error {
	if opts.Stdout == nil {
		opts.Stdout = io.Discard
	}
	// TLS first: a bad certificate pair stops the start with an error
	// naming tls.cert or tls.key, before the store is opened or created.
	stls, err := newServerTLS(cfg, log, opts.ACMEClient)
	if err != nil {
		return err
	}
	svc, err := admin.Open(cfg)
	if errors.Is(err, store.ErrLocked) {
		if r, derr := admin.Dial(cfg.SocketPath(), 500*time.Millisecond); derr == nil {
			r.Close()
			return fmt.Errorf("another chatctl serve is already running on %s (admin socket %s)", cfg.DB, cfg.SocketPath())
		}
	}
	if err != nil {
		return err
	}
	defer svc.Close()

	tcp, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer tcp.Close()
	var challengeLn net.Listener // ACME's HTTP-01 challenges and the redirect to HTTPS
	if stls != nil && stls.acme != nil {
		if challengeLn, err = net.Listen("tcp", cfg.TLS.ACME.HTTPListen); err != nil {
			return fmt.Errorf("tls.acme.http_listen: %w", err)
		}
		defer challengeLn.Close()
	}
	ln := newConnLimiter(tcp, maxConns(cfg.HTTP.MaxConns, log), cfg.HTTP.MaxConnsPerIP, parsePrefixes(cfg.TrustedProxies), log)
	sock, err := listenSocket(cfg.SocketPath())
	if err != nil {
		// The server still works; only the CLI cannot reach it meanwhile.
		log.Warn("admin socket unavailable; CLI commands will fail while this server runs", "err", err)
		sock = nil
	} else {
		sock = &peerListener{Listener: sock, peerUID: admin.PeerUID, log: log}
	}

	// The operator's GOMAXPROCS is left alone.
	srv := NewServer(log, cfg, svc, Options{AdaptiveProcs: os.Getenv("GOMAXPROCS") == ""})
	hubCtx, stopHub := context.WithCancel(context.Background())
	defer stopHub()
	hubDone := make(chan struct{})
	go func() {
		defer close(hubDone)
		srv.Hub().Run(hubCtx)
	}()

	public := newHTTPServer(srv, log)
	public.ConnState = ln.connState
	private := newHTTPServer(srv.SocketHandler(), log)
	errc := make(chan error, 3)
	var publicLn net.Listener = ln
	scheme := "http"
	if stls != nil {
		// Served through tls.NewListener, not ServeTLS, so HTTP/2 is never
		// offered: /ws needs HTTP/1.1. On SIGHUP, call stls.Reload() (nil
		// safe; the files are also re-read by themselves when they change).
		publicLn, scheme = tls.NewListener(ln, stls.config), "https"
		ln.silent = true
	}
	go func() { errc <- public.Serve(publicLn) }()
	if challengeLn != nil {
		_, httpsPort, _ := net.SplitHostPort(tcp.Addr().String())
		challenge := newHTTPServer(stls.challengeHandler(httpsPort), log)
		go func() { errc <- challenge.Serve(challengeLn) }()
		defer challenge.Close()
		log.Info("ACME HTTP-01 and HTTPS redirect listening", "addr", challengeLn.Addr().String())
		fmt.Fprintf(opts.Stdout, "chatctl answering ACME HTTP-01 and redirecting to HTTPS on http://%s\n", challengeLn.Addr())
	}
	if sock != nil {
		go func() { errc <- private.Serve(sock) }()
		defer os.Remove(cfg.SocketPath())
	}

	stopPrune := startPruning(svc.DB(), cfg.History.MaxAge, log)
	defer stopPrune()

	addr := ln.Addr().String()
	log.Info("chatctl serving", "addr", addr, "db", cfg.DB, "socket", cfg.SocketPath(),
		"max_conns", ln.max, "max_conns_per_ip", ln.perIP)
	fmt.Fprintf(opts.Stdout, "chatctl listening on %s://%s (store %s)\n", scheme, addr, cfg.DB)
	if users, err := svc.Users(ctx); err == nil && len(users) == 0 {
		fmt.Fprintf(opts.Stdout, "no users yet: add one with\n  chatctl --db %s user add NAME --role admin\n", cfg.DB)
	}
	if opts.Ready != nil {
		opts.Ready(addr)
	}

	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			log.Error("server failed", "err", err)
		}
	}
	log.Info("shutting down")
	return drain(cfg, log, public, private, srv, stopHub, hubDone)
}

// serverTimeouts are the http.Server timeouts of every listener.
type serverTimeouts struct {
	readHeader, read, write, idle time.Duration
}

// timeouts is what newHTTPServer uses; tests shorten it (they do not run
// in parallel).
var timeouts = serverTimeouts{readHeaderTimeout, readTimeout, writeTimeout, idleTimeout}

// newHTTPServer is the http.Server of every listener, TCP and admin
// socket alike: the same timeouts, so a client that sends slowly or not
// at all cannot hold a connection (or the memory of a body) forever.
func newHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: timeouts.readHeader,
		ReadTimeout:       timeouts.read,
		WriteTimeout:      timeouts.write,
		IdleTimeout:       timeouts.idle,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// drain stops accepting and waits for requests, closes WebSockets with
// 1001 once acknowledged messages are committed, then stops the workers.
// The store is closed by Serve's defer, which flushes queued appends.
func drain(cfg *configs.Config, log *slog.Logger, public, private *http.Server, srv *Server, stopHub func(), hubDone <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(context.Background(), cfg.HTTP.ShutdownTimeout)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex // guards errs: the servers' goroutines and this one append
	var errs []error
	for _, s := range []*http.Server{public, private} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Shutdown(ctx); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	if err := srv.Hub().Shutdown(ctx); err != nil {
		mu.Lock()
		errs = append(errs, fmt.Errorf("close chat connections: %w", err))
		mu.Unlock()
	}
	stopHub()
	<-hubDone
	wg.Wait()
	srv.Close()
	if err := errors.Join(errs...); err != nil {
		log.Warn("shutdown was not clean", "err", err)
		return err
	}
	log.Info("stopped")
	return nil
}

// listenSocket opens the admin socket at path, mode 0600. A stale socket
// file from a server that died is replaced; the store lock we hold proves
// no other server is using it.
func listenSocket(path string) (net.Listener, error) {
	if _, err := os.Stat(path); err == nil {
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale socket %s: %w", path, err)
		}
	}
	// Create it private from the first moment: umask 0177 for the bind.
	ln, err := listenUnixPrivate(path)
	if err != nil {
		return nil, fmt.Errorf("admin socket %s: %w", path, err)
	}
	return ln, nil
}

// startPruning deletes expired sessions, and messages older than maxAge
// when that is set, every pruneEvery. It returns a function that stops it.
func startPruning(db *store.DB, maxAge time.Duration, log *slog.Logger) func() {
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(pruneEvery)
		defer t.Stop()
		for {
			if n, err := db.PruneSessions(); err != nil {
				log.Error("prune sessions", "err", err)
			} else if n > 0 {
				log.Info("pruned expired sessions", "sessions", n)
			}
			if maxAge > 0 {
				if n, err := db.PruneMessages(maxAge); err != nil {
					log.Error("prune history", "err", err)
				} else if n > 0 {
					log.Info("pruned history", "messages", n)
				}
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	// Stopping waits for a prune in progress, so the store closes after it.
	return func() { close(done); <-exited }
}
