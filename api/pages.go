package api

import (
	"net/http"

	"github.com/chatctl/chatctl/web"
)

// pages are the embedded browser pages, each with the Content-Security-
// Policy it was written for.
func (s *Server) pages() []route {
	withCSP := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Security-Policy", web.CSP)
			h.ServeHTTP(w, r)
		})
	}
	chat, docs := withCSP(web.ChatHandler()), withCSP(web.DocsHandler())
	return []route{
		{"GET /chat", chat},
		{"GET /chat/", chat},
		{"GET /docs", docs},
		{"GET /docs/", docs},
	}
}
