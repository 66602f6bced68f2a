package api

import (
	"bufio"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"
)

// statusWriter records the status for logs and metrics. It supports
// hijacking so WebSocket upgrades pass through.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("hijacking not supported")
	}
	if w.status == 0 {
		w.status = http.StatusSwitchingProtocols
	}
	return h.Hijack()
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// observe logs and measures every request. It logs the path only, never
// the query: browsers pass tokens in ?token= on /ws.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		d := time.Since(start)
		s.metrics.observe(route, sw.status, d)
		if !s.log.Enabled(r.Context(), slog.LevelInfo) {
			return // the log line would be dropped: skip building it
		}
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", sw.status),
			slog.Duration("duration", d),
			slog.String("client", clientAddr(r, s.proxies)),
		)
	})
}

// securityHeaders go on every response.
var securityHeaders = http.Header{
	"X-Content-Type-Options":     {"nosniff"},
	"X-Frame-Options":            {"DENY"},
	"Referrer-Policy":            {"no-referrer"},
	"Cross-Origin-Opener-Policy": {"same-origin"},
}

var jsonCSP = []string{"default-src 'none'; frame-ancestors 'none'"}

// secure sets the security headers every response carries, and limits
// request bodies.
func (s *Server) secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		for k, v := range securityHeaders { // canonical keys: no Set needed
			h[k] = v
		}
		if !strings.HasPrefix(r.URL.Path, "/docs") && !strings.HasPrefix(r.URL.Path, "/chat") {
			// JSON answers need no content at all; the pages set their own.
			h["Content-Security-Policy"] = jsonCSP
		}
		if r.TLS != nil && s.hsts != nil {
			// Only over HTTPS: browsers ignore it on plain HTTP (RFC 6797
			// §8.1), and it must never reach the ACME redirect listener.
			h["Strict-Transport-Security"] = s.hsts
		}
		limitBody(w, r, s.cfg.HTTP.MaxBody)
		next.ServeHTTP(w, r)
	})
}

// limitBody caps r's body at http.max_body: the one body limit of every
// listener (the public one through secure, the admin socket through
// limitBodies).
func limitBody(w http.ResponseWriter, r *http.Request, max int64) {
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = http.MaxBytesReader(w, r.Body, max)
	}
}

// limitBodies is limitBody as middleware, for the admin socket.
func (s *Server) limitBodies(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limitBody(w, r, s.cfg.HTTP.MaxBody)
		next.ServeHTTP(w, r)
	})
}

// cors answers browsers from the origins in cors.origins. Same-origin
// requests need nothing, so the default (empty list) adds no header.
func (s *Server) cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		allowed := s.live.Load().corsOrigins // a reload may change it
		if origin == "" || !(slices.Contains(allowed, origin) || slices.Contains(allowed, "*")) {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", origin)
		h.Add("Vary", "Origin")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}
