package api

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/chatctl/chatctl/buildinfo"
)

// Ensure /metrics exports chatctl_build_info = 1 labelled with what
// `chatctl version` prints, and /health keeps the seed's exact body.
func TestBuildInfoMetric(t *testing.T) {
	e := newEnv(t, nil)
	info := buildinfo.Get()
	series := fmt.Sprintf(`chatctl_build_info{goversion=%q,revision=%q,version=%q}`, info.GoVersion, info.Revision, info.Version)
	got := e.scrape(t)
	if v, ok := got[series]; !ok || v != 1 {
		var have []string
		for k := range got {
			if len(k) > 18 && k[:18] == "chatctl_build_info" {
				have = append(have, k)
			}
		}
		t.Fatalf("%s = %v (present %v); build info series: %v", series, v, ok, have)
	}
	if info.GoVersion == "" || info.Version == "" || info.Revision == "" {
		t.Fatalf("build info has an empty field: %+v", info)
	}
	r := e.request(http.MethodGet, "/health", nil, nil)
	if r.status != http.StatusOK || string(r.body) != `{"status":"ok"}`+"\n" && string(r.body) != `{"status":"ok"}` {
		t.Fatalf("GET /health = %d %q, want the seed's body", r.status, r.body)
	}
}
