package web

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"regexp"
	"strings"
	"testing"
)

// get runs one request through Handler and returns the recorded response.
func get(t *testing.T, method, target string, header map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, req)
	return rec
}

// pageRefs returns the src/href values of a page, in order.
var anyRef = regexp.MustCompile(`\b(?:src|href)="([^"]*)"`)

func pageRefs(body string) []string {
	var refs []string
	for _, m := range anyRef.FindAllStringSubmatch(body, -1) {
		refs = append(refs, m[1])
	}
	return refs
}

// inlineScript finds what the CSP would block: a script element with a body
// (one without src) and event-handler attributes.
var inlineScript = regexp.MustCompile(`<script(\s[^>]*)?>[^<\s]|<script>|\son[a-z]+=`)

// moduleImports returns the relative specifiers of static ES module imports.
var importRe = regexp.MustCompile(`(?m)^import\s[^'"]*['"](\.[^'"]+)['"]`)

// Ensure both pages are served at /x and /x/ as revalidated HTML with an ETag.
func TestHandler_Pages(t *testing.T) {
	for _, p := range []string{"/chat", "/chat/", "/docs", "/docs/"} {
		t.Run(p, func(t *testing.T) {
			rec := get(t, "GET", p, nil)
			if rec.Code != http.StatusOK {
				t.Fatalf("status = %d", rec.Code)
			}
			h := rec.Header()
			if got := h.Get("Content-Type"); got != "text/html; charset=utf-8" {
				t.Errorf("Content-Type = %q", got)
			}
			if got := h.Get("Cache-Control"); got != "no-cache" {
				t.Errorf("Cache-Control = %q", got)
			}
			if h.Get("ETag") == "" || h.Get("Last-Modified") != "" {
				t.Errorf("ETag = %q, Last-Modified = %q", h.Get("ETag"), h.Get("Last-Modified"))
			}
			if h.Get("Content-Security-Policy") != CSP || h.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("security headers = %v", h)
			}
		})
	}
}

// Ensure every asset a page references (and every module those import) is
// local, versioned, and served with the right type and an immutable policy.
func TestHandler_ReferencedAssets(t *testing.T) {
	wantType := map[string]string{
		".js":  "text/javascript; charset=utf-8",
		".css": "text/css; charset=utf-8",
		".png": "image/png",
		".svg": "image/svg+xml",
	}
	for _, page := range []string{"/chat/", "/docs/"} {
		body := get(t, "GET", page, nil).Body.String()
		if strings.Contains(body, "http://") || strings.Contains(body, "https://") {
			t.Errorf("%s mentions an absolute http(s) URL", page)
		}
		if inlineScript.MatchString(body) {
			t.Errorf("%s has inline script, which the CSP forbids", page)
		}
		for _, ref := range pageRefs(body) {
			if strings.HasPrefix(ref, "#") {
				continue // in-page link
			}
			u, err := url.Parse(ref)
			if err != nil || u.Scheme != "" || u.Host != "" || !strings.HasPrefix(u.Path, "/") {
				t.Errorf("%s: reference %q is not a same-origin absolute path", page, ref)
				continue
			}
			ext := path.Ext(u.Path)
			if ext == "" || ext == ".json" {
				continue // links to pages (/docs/, /chat/) and to the server's /openapi.json
			}
			if u.Query().Get("v") == "" {
				t.Errorf("%s: asset %q is not versioned", page, ref)
			}
			rec := get(t, "GET", ref, nil)
			if rec.Code != http.StatusOK {
				t.Errorf("%s: GET %s = %d", page, ref, rec.Code)
				continue
			}
			if got := rec.Header().Get("Content-Type"); got != wantType[ext] {
				t.Errorf("GET %s: Content-Type = %q, want %q", ref, got, wantType[ext])
			}
			if got := rec.Header().Get("Cache-Control"); got != cacheImmutable {
				t.Errorf("GET %s: Cache-Control = %q", ref, got)
			}
			if ext == ".js" && !strings.Contains(u.Path, "/swagger-ui/") { // vendored bundles import nothing
				checkImports(t, u.Path, rec.Body.String())
			}
		}
	}
}

// checkImports follows relative module imports from the script at dir.
func checkImports(t *testing.T, from, src string) {
	t.Helper()
	for _, m := range importRe.FindAllStringSubmatch(src, -1) {
		target := path.Join(path.Dir(from), m[1])
		rec := get(t, "GET", target, nil)
		if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "text/javascript; charset=utf-8" {
			t.Errorf("%s imports %s: status %d, type %q", from, target, rec.Code, rec.Header().Get("Content-Type"))
			continue
		}
		checkImports(t, target, rec.Body.String())
	}
}

// Ensure our own chat and docs code never reaches outside the origin.
func TestOwnCode_NoExternalURLs(t *testing.T) {
	site := []*site{chatSite, docsSite}
	for _, s := range site {
		for p, a := range s.files {
			if strings.Contains(p, "/swagger-ui/") {
				continue // vendored, unmodified
			}
			// An XML namespace is a name, not a fetch.
			body := bytes.ReplaceAll(a.body, []byte(`xmlns="http://www.w3.org/2000/svg"`), nil)
			if bytes.Contains(body, []byte("http://")) || bytes.Contains(body, []byte("https://")) {
				t.Errorf("%s contains an http(s) URL", p)
			}
		}
	}
}

// Ensure anything that is not a page or an embedded asset is 404.
func TestHandler_NotFound(t *testing.T) {
	for _, p := range []string{
		"/", "/chatx", "/docsx", "/chat/nope.js", "/chat/index.html", "/docs/index.html",
		"/docs/swagger-ui", "/docs/swagger-ui/", "/chat/../web.go", "/chat//app.js", "/openapi.json",
	} {
		if rec := get(t, "GET", p, nil); rec.Code != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", p, rec.Code)
		}
	}
}

// Ensure only GET and HEAD are served, and HEAD sends no body.
func TestHandler_Methods(t *testing.T) {
	if rec := get(t, "POST", "/chat/", nil); rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST = %d, Allow %q", rec.Code, rec.Header().Get("Allow"))
	}
	rec := get(t, "HEAD", "/chat/app.js", nil)
	if rec.Code != http.StatusOK || rec.Body.Len() != 0 {
		t.Errorf("HEAD = %d with %d body bytes", rec.Code, rec.Body.Len())
	}
}

// Ensure caching: a matching If-None-Match is a 304, an unversioned or stale
// asset URL is revalidated, not cached forever.
func TestHandler_Caching(t *testing.T) {
	first := get(t, "GET", "/chat/app.js", nil)
	etag := first.Header().Get("ETag")
	if first.Header().Get("Cache-Control") != "no-cache" || etag == "" {
		t.Fatalf("unversioned: Cache-Control %q, ETag %q", first.Header().Get("Cache-Control"), etag)
	}
	if rec := get(t, "GET", "/chat/app.js", map[string]string{"If-None-Match": etag}); rec.Code != http.StatusNotModified {
		t.Errorf("If-None-Match: status %d", rec.Code)
	}
	if rec := get(t, "GET", "/chat/app.js?v=stale", nil); rec.Header().Get("Cache-Control") != "no-cache" {
		t.Errorf("stale version cached as %q", rec.Header().Get("Cache-Control"))
	}
}

// Ensure a client that accepts gzip gets a smaller, valid gzip body with its
// own ETag, and everyone is told the response varies.
func TestHandler_Gzip(t *testing.T) {
	plain := get(t, "GET", "/docs/swagger-ui/swagger-ui-bundle.js", nil)
	zipped := get(t, "GET", "/docs/swagger-ui/swagger-ui-bundle.js", map[string]string{"Accept-Encoding": "gzip, deflate, br"})
	if zipped.Header().Get("Content-Encoding") != "gzip" || zipped.Header().Get("Vary") != "Accept-Encoding" {
		t.Fatalf("headers = %v", zipped.Header())
	}
	if zipped.Header().Get("ETag") == plain.Header().Get("ETag") {
		t.Error("gzip and identity share an ETag")
	}
	zr, err := gzip.NewReader(zipped.Body)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(got, plain.Body.Bytes()) {
		t.Errorf("gunzip mismatch (err %v)", err)
	}
	if rec := get(t, "GET", "/chat/app.js", map[string]string{"Accept-Encoding": "gzip;q=0"}); rec.Header().Get("Content-Encoding") != "" {
		t.Error("gzip sent despite q=0")
	}
}

// Ensure a CSP set by the server's middleware is not replaced.
func TestHandler_KeepsServerCSP(t *testing.T) {
	rec := httptest.NewRecorder()
	rec.Header().Set("Content-Security-Policy", "default-src 'none'")
	Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/chat/", nil))
	if got := rec.Header().Values("Content-Security-Policy"); len(got) != 1 || got[0] != "default-src 'none'" {
		t.Errorf("CSP = %q", got)
	}
}

// Ensure the vendored Swagger UI is the version the code and note claim,
// and that the docs page loads /openapi.json without persisting tokens.
func TestDocs_SwaggerUI(t *testing.T) {
	note := get(t, "GET", "/docs/swagger-ui/VERSION", nil)
	if note.Code != http.StatusOK || !strings.HasPrefix(note.Body.String(), "swagger-ui-dist "+SwaggerUIVersion+"\n") {
		t.Errorf("VERSION = %d %q", note.Code, note.Body.String())
	}
	if rec := get(t, "GET", "/docs/swagger-ui/LICENSE", nil); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "Apache License") {
		t.Errorf("LICENSE = %d", rec.Code)
	}
	init := get(t, "GET", "/docs/init.js", nil).Body.String()
	for _, want := range []string{"url: '/openapi.json'", "persistAuthorization: false", "queryConfigEnabled: false", "validatorUrl: null"} {
		if !strings.Contains(init, want) {
			t.Errorf("init.js lacks %q", want)
		}
	}
}

// Ensure the elements browser tests drive exist on the chat page.
func TestChat_Selectors(t *testing.T) {
	body := get(t, "GET", "/chat/", nil).Body.String()
	for _, id := range []string{
		"username", "password", "signin", "signin-error", "signout", "conn-status", "banner", "reconnect",
		"room-input", "join", "room-error", "rooms", "messages", "pending", "load-older",
		"message-input", "send", "send-error", "members", "live",
		"dms", "dm-form", "dm-input", "dm-start", "dm-error", "directory-panel", "directory", "directory-refresh", "typing",
	} {
		if !strings.Contains(body, `id="`+id+`"`) {
			t.Errorf("chat page lacks #%s", id)
		}
	}
}
