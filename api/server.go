// Package api is chatctl's HTTP server: the OAuth2 token endpoint, the
// user and admin APIs, the WebSocket chat endpoint, OpenAPI, metrics and
// the pages. Every rule about users, passwords and tokens lives in package
// admin (and auth below it); handlers only translate HTTP to calls.
package api

import (
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/chatctl/chatctl/access"
	"github.com/chatctl/chatctl/admin"
	"github.com/chatctl/chatctl/api/chat"
	"github.com/chatctl/chatctl/auth"
	"github.com/chatctl/chatctl/cluster"
	"github.com/chatctl/chatctl/configs"
	"github.com/chatctl/chatctl/store"
)

// Server is the HTTP handler of chatctl serve.
type Server struct {
	cfg       *configs.Config
	svc       *admin.Service
	admin     admin.Admin // svc, plus kicking users off the chat on revocation
	tokens    *auth.Tokens
	log       *slog.Logger
	metrics   *metrics
	proxies   []netip.Prefix
	hashes    *hashPool
	hub       *chat.Hub
	loginRate *loginLimits    // failed logins, per address and username
	signups   *failureLimiter // sign-ups per address (addrKey)
	now       func() time.Time
	hsts      []string // the Strict-Transport-Security value (tls.hsts_max_age); nil: none

	handler http.Handler // the public routes with middleware
	socket  http.Handler // the admin routes for the Unix socket

	// live holds the settings a config reload changes that requests read
	// (origins); see liveSettings. reload is the rest of the reload state.
	live   atomic.Pointer[liveSettings]
	reload reloader
	// draining is set once a graceful shutdown starts (drain): /ready
	// answers 503 from then on. Atomic: drain writes, handlers read.
	draining atomic.Bool
	// roomsDefault is rooms.default_access as last reloaded; nil: cfg's.
	roomsDefault atomic.Pointer[string]

	// beforeServe, set only by tests, runs between a /ws token check and
	// the hub taking the connection: the window a revocation can hit.
	beforeServe atomic.Pointer[func()]
}

// Options are optional parts of a Server.
type Options struct {
	// Now is the clock for rate limits; nil means time.Now.
	Now func() time.Time
	// AdaptiveProcs lets the bcrypt pool raise GOMAXPROCS by one while
	// logins are hashing (see hashPool). Only for the process's one server.
	AdaptiveProcs bool
}

// NewServer returns the server for cfg on the admin service svc.
func NewServer(log *slog.Logger, cfg *configs.Config, svc *admin.Service, opts Options) *Server {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{
		cfg: cfg, svc: svc, tokens: svc.Tokens(), log: log, now: opts.Now,
		metrics:   newMetrics(svc.DB()),
		proxies:   parsePrefixes(cfg.TrustedProxies),
		hashes:    newHashPool(hashWorkers(), 64*hashWorkers(), opts.AdaptiveProcs),
		loginRate: newLoginLimits(cfg, opts.Now),
		signups:   newFailureLimiter(cfg.Login.SignupBurst, cfg.Login.SignupPerMinute, opts.Now),
	}
	if age := cfg.TLS.HSTSMaxAge; age > 0 {
		s.hsts = []string{"max-age=" + strconv.FormatInt(int64(age/time.Second), 10)}
	}
	svc.DB().SetRetention(store.Retention{MaxPerRoom: cfg.History.MaxPerRoom})
	s.hub = chat.NewHub(hubStore{svc.DB(), s.metrics}, hubAuth{s}, hubConfig(s), log)
	s.metrics.registerCluster(s.hub)
	// Every revocation, whichever path made it (CLI over the socket,
	// /admin, refresh reuse on /token), closes the sockets it ends: on
	// this node, and through the broker on every other node (cluster.Local,
	// alone, only loops it back here).
	svc.OnRevoke(s.kick)
	// Access rules live in the hub's memory: loaded now, reloaded after
	// every change the Service makes (CLI over the socket, /admin, config).
	if err := s.hub.SetAccessLoader(s.loadAccess); err != nil {
		log.Error("load access rules; every room is closed until they load", "err", err)
		s.hub.SetAccess(access.New(access.Deny, nil, nil))
	}
	svc.OnAccessChange(func() { _ = s.hub.RecheckAccess() })
	s.registerReloads()
	s.admin = &liveAdmin{Service: svc, hub: s.hub, logins: s.loginRate}
	s.handler = s.secure(s.observe(s.cors(s.routes())))
	s.socket = s.observe(s.limitBodies(s.adminRoutes(http.NewServeMux(), false)))
	return s
}

// kick closes the sockets r ends on every node (see NewServer).
func (s *Server) kick(r admin.Revocation) {
	err := s.hub.Broker().Kick(cluster.Kick{User: r.User, JTI: r.JTI, Session: r.Session, Kid: r.Kid})
	if errors.Is(err, cluster.ErrClosed) {
		// The broker is gone (shutting down): this node at least.
		s.hub.Revoke(chat.Revoked{User: r.User, JTI: r.JTI, Session: r.Session, Kid: r.Kid})
	} else if err != nil {
		s.log.Warn("revocation not sent to the other nodes; they read it from the change feed", "err", err)
	}
}

// JoinCluster makes b the hub's broker and starts it (see chat.Hub.UseBroker):
// call it before the hub runs and before serving. Close closes it.
func (s *Server) JoinCluster(b cluster.Broker) error { return s.hub.UseBroker(b) }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// SocketHandler serves the /admin API without authentication, for the
// Unix socket whose file mode (0600) is the access control.
func (s *Server) SocketHandler() http.Handler { return s.socket }

// MetricsHandler serves the listener of metrics.listen: GET /metrics,
// /health and /ready, with the security headers and request metrics of
// the public listener; every other path answers 404.
func (s *Server) MetricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metrics.handler())
	mux.Handle("GET /health", s.handleHealth())
	mux.Handle("GET /ready", s.handleReady())
	mux.Handle("/", notFound(mux))
	return s.secure(s.observe(mux))
}

// StartDrain makes /ready answer 503 (draining): the first step of a
// graceful shutdown, taken before any listener closes, so that a load
// balancer stops sending new clients while the old ones finish.
func (s *Server) StartDrain() { s.draining.Store(true) }

// Hub returns the chat hub. Run its Run method for pings, token expiry and
// shutdown.
func (s *Server) Hub() *chat.Hub { return s.hub }

// Close stops the bcrypt workers and leaves the cluster. Call it after the
// HTTP server and the hub stopped.
func (s *Server) Close() {
	s.hashes.close()
	_ = s.hub.Broker().Close()
}
