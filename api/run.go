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
	"path/filepath"
	"sync"
	"time"

	"github.com/chatctl/chatctl/admin"
	"github.com/chatctl/chatctl/cluster"
	"github.com/chatctl/chatctl/configs"
	"github.com/chatctl/chatctl/store"
	"github.com/chatctl/chatctl/store/pg"
)

// Server timeouts. Slow clients cannot hold a request open forever; the
// WebSocket connections leave these behind when they are upgraded.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 2 * time.Minute
	// pruneEvery is how often expired sessions, old messages (with
	// history.max_age) and old audit entries are deleted.
	pruneEvery = time.Minute
	// changePoll is how often a node reads a shared store's change feed
	// (PostgreSQL): the bound on how late a change made elsewhere (a user
	// disabled by the CLI) takes effect here.
	changePoll = 250 * time.Millisecond
)

// nodeLocker is a store that allows one serving node without a broker,
// or any number with one (store/pg).
type nodeLocker interface {
	LockNode(ctx context.Context) error
	LockNodeShared(ctx context.Context) error
}

// ServeOptions are the optional parts of Serve.
type ServeOptions struct {
	// Stdout receives the operator-facing start-up lines.
	Stdout io.Writer
	// Stderr receives the note that a new store was created.
	Stderr io.Writer
	// Ready, when set, is called with the TCP address once both listeners
	// accept connections.
	Ready func(addr string)
	// Reload, with LoadConfig, re-reads the configuration: each value
	// received (cmd sends one per SIGHUP) calls LoadConfig and applies
	// what can change without a restart (see Server.Reload).
	Reload <-chan struct{}
	// LoadConfig loads and validates the configuration as start-up did.
	LoadConfig func() (*configs.Config, error)
	// Logging, when set, is the logger's control: a reload changes its
	// level and format.
	Logging *Logging
	// MetricsReady, when set and metrics.listen is, is called with the
	// metrics listener's address before Ready.
	MetricsReady func(addr string)
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
	if opts.Stderr == nil {
		opts.Stderr = io.Discard
	}
	// TLS first: a bad certificate pair stops the start with an error
	// naming tls.cert or tls.key, before the store is opened or created.
	stls, err := newServerTLS(cfg, log, opts.ACMEClient)
	if err != nil {
		return err
	}
	svc, err := admin.OpenServer(cfg, log)
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
	if svc.DB().Created() {
		if cfg.Store != "" {
			fmt.Fprintf(opts.Stderr, "created the chatctl schema in %s\n", svc.DB().Path())
		} else {
			abs, _ := filepath.Abs(cfg.DB)
			fmt.Fprintf(opts.Stderr, "created new store %s\n", abs)
		}
	}
	if n, ok := svc.DB().(nodeLocker); ok && cfg.Broker != "" {
		// Several nodes with a broker are the point; the shared lock
		// only keeps out a node without one (it would miss our messages).
		if err := n.LockNodeShared(ctx); err != nil {
			if errors.Is(err, pg.ErrNodeAlone) {
				return fmt.Errorf("%w; stop it, or give it the same broker (every node of a store needs one)", err)
			}
			return err
		}
	} else if ok {
		// One node per PostgreSQL store: a second one would keep its own
		// view of presence and rooms, and its members would miss
		// messages sent on the first.
		if err := n.LockNode(ctx); err != nil {
			if errors.Is(err, pg.ErrNodeLocked) {
				return fmt.Errorf("%w; run one chatctl serve per PostgreSQL store (several nodes need a message broker between them)", err)
			}
			return err
		}
	}

	tcp, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer tcp.Close()
	var metricsLn net.Listener
	if cfg.Metrics.Listen != "" {
		if metricsLn, err = net.Listen("tcp", cfg.Metrics.Listen); err != nil {
			return fmt.Errorf("metrics.listen: %w", err)
		}
		defer metricsLn.Close()
	}
	var challengeLn net.Listener // ACME's HTTP-01 challenges and the redirect to HTTPS
	if stls != nil && stls.acme != nil {
		if challengeLn, err = net.Listen("tcp", cfg.TLS.ACME.HTTPListen); err != nil {
			return fmt.Errorf("tls.acme.http_listen: %w", err)
		}
		defer challengeLn.Close()
	}
	ln := newConnLimiter(tcp, maxConns(cfg.HTTP.MaxConns, log), cfg.HTTP.MaxConnsPerIP, parsePrefixes(cfg.TrustedProxies), log)
	var sock net.Listener
	if cfg.Store != "" {
		// PostgreSQL serves every process: the CLI works on it directly.
	} else if sock, err = listenSocket(cfg.SocketPath()); err != nil {
		// The server still works; only the CLI cannot reach it meanwhile.
		log.Warn("admin socket unavailable; CLI commands will fail while this server runs", "err", err)
		sock = nil
	} else {
		sock = &peerListener{Listener: sock, peerUID: admin.PeerUID, log: log}
	}

	// Declared users and rules (auth.users, auth.access) before anyone
	// can sign in: a user taken out of the file must not get one more
	// login. A reload applies them again (see registerReloads).
	if res, err := svc.ApplyDeclared(ctx, cfg); err != nil {
		return fmt.Errorf("apply auth.users and auth.access: %w", err)
	} else if !res.Empty() {
		log.Info("applied declared users and access rules", "result", res.String())
	}
	// The operator's GOMAXPROCS is left alone.
	srv := NewServer(log, cfg, svc, Options{AdaptiveProcs: os.Getenv("GOMAXPROCS") == ""})
	if cfg.Broker != "" {
		// With a broker the node joins the others on the same store (no
		// node lock: several nodes are the point). Start gathers the live
		// nodes' presence before anyone connects here.
		b, err := cluster.NewNATS(cluster.Options{
			URL: cfg.Broker, Name: cfg.Cluster.Name, Node: cfg.Cluster.NodeID,
			Heartbeat: cfg.Cluster.Heartbeat, PresenceTTL: cfg.Cluster.PresenceTTL, Log: log,
		})
		if err != nil {
			srv.Close()
			return fmt.Errorf("broker: %w", err)
		}
		if err := srv.JoinCluster(b); err != nil {
			_ = b.Close()
			srv.Close()
			return fmt.Errorf("broker: %w", err)
		}
		log.Info("joined the cluster", "broker", configs.RedactURLs(cfg.Broker), "cluster", cfg.Cluster.Name, "node", b.Node())
	}
	if opts.Logging != nil {
		srv.OnReload([]string{"log.format", "log.level"}, func(c *configs.Config) error {
			opts.Logging.Set(c.Log.Format, c.Log.Level)
			return nil
		})
	}
	if stls != nil {
		// SIGHUP re-reads the certificate files at once (they are also
		// re-read when they change). The paths themselves are fixed at
		// start: a changed tls.cert or tls.key is named as needing a
		// restart, so the hook claims no keys.
		srv.OnReload(nil, func(*configs.Config) error { return stls.Reload() })
	}
	hubCtx, stopHub := context.WithCancel(context.Background())
	defer stopHub()
	hubDone := make(chan struct{})
	go func() {
		defer close(hubDone)
		srv.Hub().Run(hubCtx)
	}()
	if w, ok := svc.DB().(store.Watcher); ok {
		// Changes made by the CLI or by other processes reach this node
		// within changePoll: revoked tokens close their sockets, rotated
		// keys verify, deleted rooms close.
		watchDone := make(chan struct{})
		defer func() { stopHub(); <-watchDone }()
		go func() {
			defer close(watchDone)
			err := w.Watch(hubCtx, changePoll, srv.applyChange)
			if err != nil {
				log.Error("change feed stopped; changes by other processes are not seen", "err", err)
			}
		}()
	}

	public := newHTTPServer(srv, log)
	public.ConnState = ln.connState
	private := newHTTPServer(srv.SocketHandler(), log)
	private.ConnContext = srv.SocketConnContext
	errc := make(chan error, 4) // public, socket, metrics, ACME challenge
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
	var others []*http.Server // drained with public and private
	if metricsLn != nil {
		metricsSrv := newHTTPServer(srv.MetricsHandler(), log)
		go func() { errc <- metricsSrv.Serve(metricsLn) }()
		others = append(others, metricsSrv)
	}

	stopPrune := startPruning(svc.DB(), cfg, log)
	defer stopPrune()

	addr := ln.Addr().String()
	storeName, socketName := cfg.DB, cfg.SocketPath()
	if cfg.Store != "" {
		storeName, socketName = svc.DB().Path(), ""
	}
	log.Info("chatctl serving", "addr", addr, "store", storeName, "socket", socketName,
		"max_conns", ln.max, "max_conns_per_ip", ln.perIP)
	fmt.Fprintf(opts.Stdout, "chatctl listening on %s://%s (store %s)\n", scheme, addr, storeName)
	if metricsLn != nil {
		maddr := metricsLn.Addr().String()
		log.Info("metrics serving", "addr", maddr)
		fmt.Fprintf(opts.Stdout, "metrics on http://%s/metrics\n", maddr)
		if opts.MetricsReady != nil {
			opts.MetricsReady(maddr)
		}
	}
	if users, err := svc.Users(ctx); err == nil && len(users) == 0 {
		where := "--db " + cfg.DB
		if cfg.Store != "" {
			where = "--store '" + svc.DB().Path() + "'"
		}
		fmt.Fprintf(opts.Stdout, "no users yet: add one with\n  chatctl %s user add NAME --role admin\n", where)
	}
	if opts.Ready != nil {
		opts.Ready(addr)
	}

	reload := opts.Reload
	if opts.LoadConfig == nil {
		reload = nil // nothing to reload from
	}
serving:
	for {
		select {
		case <-ctx.Done():
			break serving
		case err := <-errc:
			if !errors.Is(err, http.ErrServerClosed) {
				log.Error("server failed", "err", err)
			}
			break serving
		case <-reload:
			reloadConfig(srv, opts.LoadConfig, log)
		}
	}
	log.Info("shutting down")
	return drain(cfg, log, public, private, srv, stopHub, hubDone, others...)
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

// drainStarted, set only by tests, runs in drain once /ready answers 503
// and before any listener closes.
var drainStarted func()

// drain turns /ready to 503, stops accepting (public, private and the
// others, such as the metrics listener) and waits for requests, closes
// WebSockets with 1001 once acknowledged messages are committed, then
// stops the workers. The store is closed by Serve's defer, which flushes
// queued appends.
func drain(cfg *configs.Config, log *slog.Logger, public, private *http.Server, srv *Server, stopHub func(), hubDone <-chan struct{}, others ...*http.Server) error {
	srv.StartDrain()
	if drainStarted != nil {
		drainStarted()
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.HTTP.ShutdownTimeout)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex // guards errs: the servers' goroutines and this one append
	var errs []error
	for _, s := range append([]*http.Server{public, private}, others...) {
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

// startPruning deletes, every pruneEvery and off the request path, expired
// sessions, messages older than history.max_age when that is set, and
// audit entries beyond audit.retention and audit.max_entries. It returns a
// function that stops it.
func startPruning(db store.Store, cfg *configs.Config, log *slog.Logger) func() {
	maxAge := cfg.History.MaxAge
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
			if n, err := db.PruneAudit(cfg.Audit.Retention, cfg.Audit.MaxEntries); err != nil {
				log.Error("prune audit log", "err", err)
			} else if n > 0 {
				log.Info("pruned audit log", "entries", n)
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
