package api

import (
	"net/http"
	"strings"

	"github.com/chatctl/chatctl/admin"
)

// route is one entry of the API surface. The table is the single list of
// endpoints: it builds the mux, and a test holds /openapi.json to it.
type route struct {
	pattern string // Go 1.22 mux pattern: "METHOD /path"
	handler http.Handler
}

// publicRoutes lists every route of the TCP listener.
func (s *Server) publicRoutes() []route {
	return []route{
		// Unauthenticated.
		{"GET /{$}", handleRoot()},
		{"GET /health", s.handleHealth()},
		{"GET /ready", s.handleReady()},
		{"POST /token", s.handleToken()},
		{"POST /users", s.handleCreateUser()},
		{"GET /openapi.json", handleOpenAPI()},
		{"GET /asyncapi.json", handleAsyncAPI()},
		{"GET /metrics", s.metricsOnPublic()},

		// Bearer token required.
		{"GET /users/me", s.requireAuth(handleMe(s.svc))},
		{"GET /ws", s.handleWS()},
		{"GET /rooms", s.requireAuth(s.handleRooms())},
	}
}

// routes builds the public mux: the routes above plus /admin for role
// admin.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range s.publicRoutes() {
		mux.Handle(rt.pattern, rt.handler)
	}
	s.adminRoutes(mux, true)
	for _, p := range s.pages() {
		mux.Handle(p.pattern, p.handler)
	}
	mux.Handle("/", notFound(mux))
	return mux
}

// adminRouteTable lists the /admin API: what the CLI does, over HTTP.
func (s *Server) adminRouteTable() []route {
	a, l := s.admin, s.log
	return []route{
		{"GET /admin/users", handleUsers(a, l)},
		{"POST /admin/users", s.hashing(handleAddUser(a, l))},
		{"GET /admin/users/{name}", handleUser(a, l)},
		{"DELETE /admin/users/{name}", handleRemoveUser(a, l)},
		{"PUT /admin/users/{name}/password", s.hashing(handleSetPassword(a, l))},
		{"PUT /admin/users/{name}/role", handleSetRole(a, l)},
		{"PUT /admin/users/{name}/disabled", handleSetDisabled(a, l)},
		{"POST /admin/users/{name}/tokens", handleIssueToken(a, l)},
		{"GET /admin/users/{name}/sessions", handleSessions(a, l)},
		{"POST /admin/users/{name}/unlock", handleUnlockUser(a, l)},
		{"POST /admin/revoke", handleRevoke(a, l)},
		{"POST /admin/tokens/inspect", handleInspect(a, l)},
		{"GET /admin/rooms", handleRooms(a, l)},
		{"DELETE /admin/rooms/{name}", handleDeleteRoom(a, l)},
		{"POST /admin/rooms", handleCreateRoom(a, l)},
		{"GET /admin/rooms/{name}/members", handleRoomMembers(a, l)},
		{"PUT /admin/rooms/{name}/members/{user}", handleAddMember(a, l)},
		{"DELETE /admin/rooms/{name}/members/{user}", handleKickMember(a, l)},
		{"GET /admin/access", handleAccessRules(a, l)},
		{"PUT /admin/access", handleSetAccess(a, l)},
		{"POST /admin/access/reset", handleResetAccess(a, l)},
		{"GET /admin/keys", handleKeys(a, l)},
		{"POST /admin/keys/rotate", handleRotateKey(a, l)},
		{"POST /admin/keys/{kid}/retire", handleRetireKey(a, l)},
		{"GET /admin/audit", handleAudit(a, l)},
	}
}

// adminRoutes adds the /admin API to mux, behind an admin bearer token
// when authenticated is true (TCP), open on the Unix socket.
func (s *Server) adminRoutes(mux *http.ServeMux, authenticated bool) *http.ServeMux {
	for _, rt := range s.adminRouteTable() {
		h := rt.handler
		if authenticated {
			h = s.requireAuth(requireAdmin(s.httpActor(h)))
		} else {
			h = socketActor(h)
		}
		mux.Handle(rt.pattern, h)
	}
	if !authenticated {
		mux.Handle("GET /admin/ping", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			encode(w, http.StatusOK, map[string]string{"status": "ok"})
		}))
		// Socket only: a copy holds every password hash and signing
		// key, more than an admin token should be able to take away.
		mux.Handle("GET "+admin.BackupPath, handleBackup(s.svc.DB(), s.log))
	}
	return mux
}

// notFound answers what no route matched: 405 with Allow when the path
// exists for other methods, else 404; both in JSON like every error.
func notFound(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var allow []string
		for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete} {
			probe := r.Clone(r.Context())
			probe.Method = m
			if _, pattern := mux.Handler(probe); pattern != "/" && pattern != "" {
				allow = append(allow, m)
			}
		}
		if len(allow) == 0 {
			errBody(w, http.StatusNotFound, "Not Found")
			return
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		errBody(w, http.StatusMethodNotAllowed, "Method Not Allowed")
	})
}
