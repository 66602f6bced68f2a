package admin

import (
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/chatctl/chatctl/configs"
)

// Ensure the socket file check refuses symlinks, non-sockets, sockets of
// other users and sockets others may write to, on stat results alone.
func TestCheckSocketStat(t *testing.T) {
	const me = 1000
	tests := []struct {
		name string
		st   socketStat
		want string // "" for trusted
	}{
		{"OwnPrivateOK", socketStat{fs.ModeSocket | 0o600, me, true}, ""},
		{"RootOwnedOK", socketStat{fs.ModeSocket | 0o600, 0, true}, ""},
		{"OwnReadableOK", socketStat{fs.ModeSocket | 0o644, me, true}, ""},
		{"UnknownOwnerOK", socketStat{fs.ModeSocket | 0o600, 0, false}, ""},
		{"OtherOwner", socketStat{fs.ModeSocket | 0o600, 65534, true}, "owned by uid 65534, not by you (uid 1000) or root"},
		{"WorldWritable", socketStat{fs.ModeSocket | 0o666, me, true}, "writable by group or others (mode 0666, owner uid 1000)"},
		{"GroupWritable", socketStat{fs.ModeSocket | 0o620, me, true}, "(mode 0620"},
		{"Symlink", socketStat{fs.ModeSymlink | 0o777, me, true}, "is a symbolic link"},
		{"RegularFile", socketStat{0o600, me, true}, "not a socket"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := checkSocketStat("/srv/c.db.sock", tc.st, me)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("err = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrUntrustedSocket) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "/srv/c.db.sock") {
				t.Fatalf("err = %v, want ErrUntrustedSocket naming the path and %q", err, tc.want)
			}
		})
	}
}

// recorder is a fake admin socket that records, in accept order, how many
// bytes each connection sent.
type recorder struct {
	ln    net.Listener
	conns chan int // bytes per connection, in accept order
}

func newRecorder(t *testing.T, path string) *recorder {
	t.Helper()
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{ln: ln, conns: make(chan int, 16)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			n, _ := io.Copy(io.Discard, c)
			c.Close()
			r.conns <- int(n)
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return r
}

// received returns the byte counts of the connections made before a
// sentinel connection that sends one byte: the backlog is first in,
// first out, so anything the code under test sent is in the list.
func (r *recorder) received(t *testing.T, path string) []int {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte{'!'})
	c.Close()
	var got []int
	for {
		select {
		case n := <-r.conns:
			if n == 1 {
				return got
			}
			got = append(got, n)
		case <-time.After(10 * time.Second):
			t.Fatal("the sentinel connection never arrived")
		}
	}
}

// Ensure Dial sends nothing to a socket that is writable by others, owned
// by another user or reached through a symlink: it does not even
// connect, and the error is one line naming the socket and the owner.
func TestDialRefusesUntrustedSocket(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Unix file modes")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "c.db.sock")
	rec := newRecorder(t, path)

	check := func(t *testing.T, target, want string) {
		t.Helper()
		_, err := Dial(target, time.Second)
		if !errors.Is(err, ErrUntrustedSocket) || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Fatalf("Dial = %v, want one line of ErrUntrustedSocket with %q", err, want)
		}
		if !strings.Contains(err.Error(), target) {
			t.Errorf("error %q does not name %s", err, target)
		}
		if got := rec.received(t, path); len(got) != 0 {
			t.Fatalf("the socket got connections carrying %v bytes, want none", got)
		}
	}
	t.Run("WorldWritable", func(t *testing.T) {
		os.Chmod(path, 0o666)
		defer os.Chmod(path, 0o600)
		check(t, path, "writable by group or others (mode 0666")
	})
	t.Run("Symlink", func(t *testing.T) {
		link := filepath.Join(dir, "link.sock")
		if err := os.Symlink(path, link); err != nil {
			t.Fatal(err)
		}
		check(t, link, "symbolic link")
	})
	t.Run("OtherOwner", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("needs root to give the socket to another user")
		}
		if err := os.Chown(path, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		defer os.Chown(path, 0, 0)
		check(t, path, "owned by uid 65534")
	})
}

// Ensure Dial refuses a server whose process runs as another user, as its
// credentials say after connecting, and sends it no byte.
func TestDialRefusesOtherPeer(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Unix sockets")
	}
	path := filepath.Join(t.TempDir(), "c.db.sock")
	os.Remove(path)
	rec := newRecorder(t, path)
	other := func(net.Conn) (uint32, bool, error) { return euid() + 1, true, nil }
	_, err := dialWith(path, time.Second, other)
	if !errors.Is(err, ErrUntrustedSocket) || !strings.Contains(err.Error(), "runs as uid") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("Dial = %v, want one line of ErrUntrustedSocket about the peer's uid", err)
	}
	got := rec.received(t, path)
	if len(got) != 1 || got[0] != 0 {
		t.Fatalf("connections before the sentinel carried %v bytes, want one connection with 0", got)
	}
}

// Ensure PeerUID reads our own uid from a real connection where the
// system can tell.
func TestPeerUID(t *testing.T) {
	if runtime.GOOS != "linux" && runtime.GOOS != "darwin" && runtime.GOOS != "freebsd" {
		t.Skip("no peer credentials here")
	}
	path := filepath.Join(t.TempDir(), "p.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, conn := range []net.Conn{c, <-accepted} {
		uid, known, err := PeerUID(conn)
		if err != nil || !known || uid != euid() {
			t.Errorf("PeerUID = %d %v %v, want %d", uid, known, err, euid())
		}
		if !TrustedUID(uid) {
			t.Errorf("TrustedUID(%d) = false", uid)
		}
	}
}

// Ensure Connect, the CLI's way in, refuses a hostile socket beside the
// store with one line instead of falling back or sending to it, and
// leaves the store alone.
func TestConnectRefusesUntrustedSocket(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Unix file modes")
	}
	cfg := configs.Default()
	cfg.DB = filepath.Join(t.TempDir(), "c.db")
	rec := newRecorder(t, cfg.SocketPath())
	if err := os.Chmod(cfg.SocketPath(), 0o666); err != nil {
		t.Fatal(err)
	}
	a, err := Connect(cfg)
	if err == nil {
		a.Close()
	}
	if !errors.Is(err, ErrUntrustedSocket) || !strings.Contains(err.Error(), cfg.SocketPath()) {
		t.Fatalf("Connect = %v, want ErrUntrustedSocket naming %s", err, cfg.SocketPath())
	}
	if got := rec.received(t, cfg.SocketPath()); len(got) != 0 {
		t.Fatalf("the socket got connections carrying %v bytes, want none", got)
	}
	if _, err := os.Stat(cfg.DB); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the store was created or opened: %v", err)
	}
}
