// Package web serves the browser-facing pages that are embedded in the chatctl
// binary: the chat client at /chat and Swagger UI at /docs.
//
// # Basics
//
// Everything under web/chat and web/docs is compiled in with go:embed, so the
// binary needs no files and no network at run time. [Handler] serves both
// trees; [ChatHandler] and [DocsHandler] serve one each, for a server that
// wants to wrap them differently. The handlers expect the full request path
// (they are mounted at the root, not behind http.StripPrefix):
//
//	mux.Handle("GET /chat", web.ChatHandler())
//	mux.Handle("GET /chat/", web.ChatHandler())
//	mux.Handle("GET /docs", web.DocsHandler())
//	mux.Handle("GET /docs/", web.DocsHandler())
//
// # Caching
//
// Each file gets a strong ETag from its content hash. The pages themselves
// (index.html) are served "no-cache", so a browser always revalidates them and
// picks up a new release at once. Local asset references in a page are
// rewritten at start-up to carry "?v=<hash>"; a request carrying the current
// hash is served "immutable" for a year, since that URL can never change
// meaning. Requests without it (or with a stale one) are served "no-cache",
// which is still cheap thanks to the ETag and 304s.
//
// # Caveats
//
// The pages are written to run under [CSP] with no inline script. If the
// response has no Content-Security-Policy by the time these handlers run, they
// set [CSP] themselves, so the pages are protected even when a server forgets;
// a policy set earlier by middleware is left alone.
//
// The pages use absolute paths (/chat/…, /docs/…, /token, /ws, /openapi.json),
// so the server must be mounted at the root of its origin.
package web

import (
	"embed"
	"net/http"
	"strings"
)

// SwaggerUIVersion is the version of the npm package swagger-ui-dist vendored
// under docs/swagger-ui (see docs/swagger-ui/VERSION for how to upgrade).
const SwaggerUIVersion = "5.35.0"

// CSP is the Content-Security-Policy both pages are written for. Neither page
// has an inline script or event handler, so script-src needs only 'self'.
// Swagger UI needs data: images (icons inlined in its CSS) and inline styles
// (set by its React components); the chat page needs connect-src for
// same-origin fetch and WebSocket ("ws:"/"wss:" because 'self' does not match
// the ws schemes in every browser).
const CSP = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; " +
	"connect-src 'self' ws: wss:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// content holds both page trees. The "all:" prefix is not used on purpose:
// dot-files in these folders are editor litter, never assets.
//
//go:embed chat docs
var content embed.FS

// Handler serves the chat client under /chat and Swagger UI under /docs, with
// GET and HEAD; any other path is 404 and any other method 405.
func Handler() http.Handler {
	chat, docs := ChatHandler(), DocsHandler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch p := r.URL.Path; {
		case p == "/chat" || strings.HasPrefix(p, "/chat/"):
			chat.ServeHTTP(w, r)
		case p == "/docs" || strings.HasPrefix(p, "/docs/"):
			docs.ServeHTTP(w, r)
		default:
			http.NotFound(w, r)
		}
	})
}

// ChatHandler serves the single-page chat client: /chat and /chat/ are the
// page, /chat/NAME its assets.
func ChatHandler() http.Handler { return chatSite }

// DocsHandler serves Swagger UI for /openapi.json: /docs and /docs/ are the
// page, /docs/NAME its assets (the vendored swagger-ui-dist files live
// under /docs/swagger-ui/).
func DocsHandler() http.Handler { return docsSite }

// Built once at package init: hashing and rewriting are deterministic, and a
// broken embed (a page referencing a missing file) should fail every test at
// once rather than a request at run time.
var (
	chatSite = mustSite(content, "chat")
	docsSite = mustSite(content, "docs")
)
