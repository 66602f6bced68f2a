//go:build unix

package api

import (
	"net"
	"os"
	"sync"
	"syscall"
)

// umaskMu serialises the process-wide umask change around bind.
var umaskMu sync.Mutex

// listenUnixPrivate binds a Unix socket that is never visible with a mode
// wider than 0600 (chmod after bind would leave a window).
func listenUnixPrivate(path string) (net.Listener, error) {
	umaskMu.Lock()
	old := syscall.Umask(0o177)
	ln, err := net.Listen("unix", path)
	syscall.Umask(old)
	umaskMu.Unlock()
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil { // belt and braces
		ln.Close()
		return nil, err
	}
	return ln, nil
}
