package admin

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/chatctl/chatctl/configs"
)

// Ensure the probe tells "no AF_UNIX" from "no such socket", and finds
// Unix sockets on this system (every platform chatctl's CI builds for has
// them).
func TestUnixSocketsProbe(t *testing.T) {
	if !UnixSockets() {
		t.Fatal("UnixSockets() = false on a system with Unix sockets")
	}
	noAF := &net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("socket", syscall.EAFNOSUPPORT)}
	if !isNoAFUnix(noAF) {
		t.Errorf("isNoAFUnix(%v) = false", noAF)
	}
	absent := &net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", syscall.ENOENT)}
	if isNoAFUnix(absent) {
		t.Errorf("isNoAFUnix(%v) = true", absent)
	}
}

// Ensure a CLI command on a store held by a server says, on a system
// without Unix sockets, that the system is the cause and what to do.
func TestConnectWithoutUnixSockets(t *testing.T) {
	old := unixSockets
	unixSockets = func() bool { return false }
	t.Cleanup(func() { unixSockets = old })

	cfg := configs.Default()
	cfg.DB = filepath.Join(t.TempDir(), "c.db")
	db, err := bolt.Open(cfg.DB, 0o600, nil) // the server's hold on the store
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	a, err := Connect(cfg)
	if err == nil {
		a.Close()
		t.Fatal("Connect succeeded on a held store")
	}
	if !errors.Is(err, ErrNoUnixSockets) || !strings.Contains(err.Error(), "stop the server") {
		t.Fatalf("Connect = %v, want ErrNoUnixSockets", err)
	}
}
