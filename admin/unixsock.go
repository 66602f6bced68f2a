package admin

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
)

// ErrNoUnixSockets is the cause named when the store is held by a running
// server that the CLI cannot reach because this system has no Unix
// sockets. Go supports them on Linux, macOS, the BSDs and Windows 10
// version 1803 or later; an older Windows refuses to create one.
var ErrNoUnixSockets = errors.New("this system does not support Unix sockets (Windows needs Windows 10 version 1803 or later), so the CLI cannot reach a running chatctl serve: stop the server to run this command, or use its /admin HTTP API")

// unixSockets reports whether this system can make Unix sockets; a test
// may replace it.
var unixSockets = sync.OnceValue(func() bool { return probeUnixSockets() })

// UnixSockets reports whether this system supports Unix sockets, which the
// admin socket beside the store needs.
func UnixSockets() bool { return unixSockets() }

// probeUnixSockets dials a socket path that does not exist: a system with
// Unix sockets answers "no such file" or "refused"; one without fails to
// create the socket at all. Nothing is created.
func probeUnixSockets() bool {
	path := filepath.Join(os.TempDir(), fmt.Sprintf("chatctl-probe-%d-absent.sock", os.Getpid()))
	c, err := net.Dial("unix", path)
	if err == nil {
		c.Close() // something does listen there; sockets work
		return true
	}
	return !isNoAFUnix(err)
}
