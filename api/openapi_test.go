package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// openAPIDoc is the part of /openapi.json the tests read.
type openAPIDoc struct {
	OpenAPI    string                               `json:"openapi"`
	Info       map[string]any                       `json:"info"`
	Paths      map[string]map[string]map[string]any `json:"paths"`
	Components struct {
		SecuritySchemes map[string]struct {
			Type   string `json:"type"`
			Scheme string `json:"scheme"`
		} `json:"securitySchemes"`
	} `json:"components"`
}

// docPath maps a mux pattern to the path of the document, or "" for
// patterns that duplicate another one (the trailing-slash pages).
func docPath(pattern string) (method, path string) {
	method, path, _ = strings.Cut(pattern, " ")
	switch path {
	case "/{$}":
		path = "/"
	case "/chat/", "/docs/":
		return method, ""
	}
	return method, path
}

// httpMethods are the operations an OpenAPI path item may have.
var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// Ensure /openapi.json is valid OpenAPI 3.1 and describes exactly the
// routes the server has: every route documented, every documented
// operation routed, and the bearer scheme defined.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	e := newEnv(t, nil)
	r := e.request(http.MethodGet, "/openapi.json", nil, nil)
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET /openapi.json = %d %q", r.status, r.header.Get("Content-Type"))
	}
	var doc openAPIDoc
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi = %q, want 3.1.0", doc.OpenAPI)
	}
	if doc.Info["title"] == nil || doc.Info["version"] == nil {
		t.Errorf("info lacks title or version: %v", doc.Info)
	}
	bearer := false
	for _, s := range doc.Components.SecuritySchemes {
		bearer = bearer || (s.Type == "http" && strings.EqualFold(s.Scheme, "bearer"))
	}
	if !bearer {
		t.Errorf("no http bearer security scheme: %+v", doc.Components.SecuritySchemes)
	}

	s := e.srv
	routed := map[string]bool{} // "get /path"
	for _, rt := range slices.Concat(s.publicRoutes(), s.adminRouteTable(), s.pages()) {
		method, path := docPath(rt.pattern)
		if path == "" {
			continue
		}
		m := strings.ToLower(method)
		routed[m+" "+path] = true
		if _, ok := doc.Paths[path][m]; !ok {
			t.Errorf("route %q is not in /openapi.json (want paths[%q].%s)", rt.pattern, path, m)
		}
	}
	mux, ok := s.routes().(*http.ServeMux)
	if !ok {
		t.Fatalf("routes() is a %T, want *http.ServeMux", s.routes())
	}
	for path, item := range doc.Paths {
		for m, op := range item {
			if !slices.Contains(httpMethods, m) {
				continue // parameters, summary, …
			}
			if !routed[m+" "+path] {
				t.Errorf("/openapi.json documents %s %s, which is not in the route table", strings.ToUpper(m), path)
			}
			// And the mux really sends it somewhere other than the 404.
			req := httptest.NewRequest(strings.ToUpper(m), strings.ReplaceAll(path, "{name}", "x"), nil)
			if _, pattern := mux.Handler(req); pattern == "" || pattern == "/" {
				t.Errorf("%s %s reaches pattern %q", strings.ToUpper(m), path, pattern)
			}
			if _, ok := op["responses"]; !ok {
				t.Errorf("%s %s has no responses", strings.ToUpper(m), path)
			}
		}
	}
}

// Ensure the protected operations of /openapi.json declare security, and
// the public ones do not require it.
func TestOpenAPISecurity(t *testing.T) {
	var doc struct {
		Security []map[string][]string                                          `json:"security"`
		Paths    map[string]map[string]struct{ Security []map[string][]string } `json:"paths"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	secured := func(path, method string) bool {
		op := doc.Paths[path][method]
		if op.Security != nil {
			return len(op.Security) > 0 && len(op.Security[0]) > 0
		}
		return len(doc.Security) > 0
	}
	for path, item := range doc.Paths {
		for m := range item {
			if !slices.Contains(httpMethods, m) {
				continue
			}
			want := strings.HasPrefix(path, "/admin/") || path == "/users/me" || path == "/ws" || path == "/rooms"
			if got := secured(path, m); got != want && !(path == "/users" && m == "post") {
				t.Errorf("%s %s: secured = %v, want %v", strings.ToUpper(m), path, got, want)
			}
		}
	}
}
