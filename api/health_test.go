package api

import (
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
)

// Ensure /health reports a failed store write (a full disk) as 503 with
// the reason, without the file's path, until a write succeeds again, and
// then answers the seed's exact body.
func TestHealthWriteFailure(t *testing.T) {
	e := newEnv(t, nil)
	e.addUser("root", "admin")
	tok := e.issue("root")
	healthy := func() {
		t.Helper()
		r := e.request(http.MethodGet, "/health", nil, nil)
		if r.status != http.StatusOK || string(r.body) != `{"status":"ok"}`+"\n" {
			t.Fatalf("/health = %d %q, want 200 {\"status\":\"ok\"}", r.status, r.body)
		}
	}
	healthy()

	var enospc error = &os.PathError{Op: "write", Path: e.cfg.DB, Err: syscall.ENOSPC}
	e.fault.Store(&enospc)
	if r := e.call(http.MethodPost, "/admin/users", tok, map[string]any{"name": "bob", "password": testPassword}); r.status != http.StatusInternalServerError {
		t.Fatalf("add user on a full disk = %d %s, want 500", r.status, r.body)
	}
	for range 2 { // it stays unhealthy: reading does not clear it
		r := e.request(http.MethodGet, "/health", nil, nil)
		if r.status != http.StatusServiceUnavailable {
			t.Fatalf("/health after a failed write = %d %s, want 503", r.status, r.body)
		}
		m := r.json(t)
		d, _ := m["detail"].(string)
		if m["status"] != "unavailable" || !strings.Contains(d, "no space left on device") {
			t.Errorf("body = %s, want status unavailable and the reason in detail", r.body)
		}
		if strings.Contains(d, e.cfg.DB) {
			t.Errorf("detail %q shows the store's path", d)
		}
	}

	e.fault.Store(nil)
	if r := e.call(http.MethodPost, "/admin/users", tok, map[string]any{"name": "bob", "password": testPassword}); r.status != http.StatusCreated {
		t.Fatalf("add user after the disk recovered = %d %s, want 201", r.status, r.body)
	}
	healthy()
}
