package api

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chatctl/chatctl/admin"
	"github.com/chatctl/chatctl/store"
)

// Ensure the admin socket streams a copy of the store that is a sound
// chatctl store with the same users, announced with its length; and that
// the TCP listener has no such endpoint, even for an admin's token (a
// copy holds every hash and key).
func TestBackupSocketOnly(t *testing.T) {
	e := newEnv(t, nil)
	e.addUser("root", "admin")
	e.addUser("alice", "user")
	r, _ := e.serveSocket(t)

	var buf bytes.Buffer
	n, err := r.Backup(context.Background(), &buf)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(buf.Len()) || n == 0 {
		t.Fatalf("Backup returned %d, wrote %d bytes", n, buf.Len())
	}
	file := filepath.Join(t.TempDir(), "b.db")
	if err := os.WriteFile(file, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	sum, err := store.VerifyFile(file, 0)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Users != 2 || sum.Bytes != n {
		t.Errorf("copy summary %+v, want 2 users in %d bytes", sum, n)
	}

	tok := e.issue("root")
	resp := e.call(http.MethodGet, admin.BackupPath, tok, nil)
	if resp.status != http.StatusNotFound {
		t.Fatalf("GET %s on TCP with an admin token: %d, want 404", admin.BackupPath, resp.status)
	}
	if ct := resp.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("TCP answered with %s, want a JSON error", ct)
	}
}
