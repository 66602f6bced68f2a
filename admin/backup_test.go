package admin

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chatctl/chatctl/configs"
	"github.com/chatctl/chatctl/store"
)

// fakeServer serves h on a Unix socket in a short temporary folder and
// returns the Remote for it.
func fakeServer(t *testing.T, h http.HandlerFunc) *Remote {
	t.Helper()
	dir, err := os.MkdirTemp("", "bk")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "s.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /admin/ping", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(`{"status":"ok"}`)) })
	mux.HandleFunc("GET "+BackupPath, h)
	hs := &http.Server{Handler: mux}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	r, err := Dial(path, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Ensure a remote copy that arrives short, or without its length, is an
// error and never passes as a backup.
func TestRemoteBackupShort(t *testing.T) {
	r := fakeServer(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", "100")
		w.Write(bytes.Repeat([]byte{1}, 50))
	})
	var buf bytes.Buffer
	if _, err := r.Backup(context.Background(), &buf); err == nil || !strings.Contains(err.Error(), "broke off after 50 of 100 bytes") {
		t.Fatalf("short copy: %v", err)
	}
	r2 := fakeServer(t, func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"detail":"Not Found"}`))
	})
	if _, err := r2.Backup(context.Background(), &buf); err == nil || err.Error() != "Not Found" {
		t.Fatalf("old server without the endpoint: %v", err)
	}
}

// Ensure BackupFile writes a verified 0600 copy atomically, refuses to
// overwrite without force, and leaves no temporary file when the copy
// fails.
func TestBackupFile(t *testing.T) {
	dir := t.TempDir()
	cfg := configs.Default()
	cfg.DB = filepath.Join(dir, "c.db")
	svc, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	ctx := context.Background()
	if _, err := svc.AddUser(ctx, AddUserRequest{Name: "alice", Hash: "$2a$10$HwhPlplaIAZBG9Nhx/z/eOS1Ywhm9yGqwxKVZJw0fkAmfx7UVqgoq"}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "b.db")
	res, err := BackupFile(ctx, svc, out, cfg.DB, false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Users != 1 || res.Live || res.Replaced {
		t.Errorf("result %+v", res)
	}
	if fi, _ := os.Stat(out); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %04o, want 0600", fi.Mode().Perm())
	}
	if _, err := BackupFile(ctx, svc, out, cfg.DB, false); !errors.Is(err, ErrFileExists) {
		t.Fatalf("second backup without force: %v", err)
	}
	// A copy that fails half way leaves the old file and no temporary.
	before, _ := os.ReadFile(out)
	failing := failingAdmin{svc}
	if _, err := BackupFile(ctx, failing, out, cfg.DB, true); err == nil {
		t.Fatal("a failed copy succeeded")
	}
	if after, _ := os.ReadFile(out); !bytes.Equal(before, after) {
		t.Error("a failed copy changed the existing backup")
	}
	if tmp, _ := filepath.Glob(filepath.Join(dir, ".*")); len(tmp) != 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
	if _, err := BackupFile(ctx, svc, cfg.DB, cfg.DB, true); err == nil || !strings.Contains(err.Error(), "is the store itself") {
		t.Errorf("backup over the store: %v", err)
	}
	if _, err := store.VerifyFile(cfg.DB, time.Second); !errors.Is(err, store.ErrLocked) {
		// The service holds it: VerifyFile must not pretend otherwise.
		t.Errorf("VerifyFile on a held store: %v", err)
	}
	if _, err := os.Stat(cfg.DB); errors.Is(err, fs.ErrNotExist) {
		t.Fatal("store gone")
	}
}

// failingAdmin breaks every copy after a few bytes.
type failingAdmin struct{ *Service }

func (f failingAdmin) Backup(_ context.Context, w io.Writer) (int64, error) {
	n, _ := w.Write([]byte("half a copy"))
	return int64(n), errors.New("connection reset")
}

// Ensure a cancelled context (Ctrl-C) stops a local copy: no file, no
// temporary.
func TestBackupFileCancelled(t *testing.T) {
	dir := t.TempDir()
	cfg := configs.Default()
	cfg.DB = filepath.Join(dir, "c.db")
	svc, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out := filepath.Join(dir, "b.db")
	if _, err := BackupFile(ctx, svc, out, cfg.DB, false); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled backup: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*b.db*")); len(left) != 0 {
		t.Errorf("files left: %v", left)
	}
}
