// Package natstest runs a real NATS server (github.com/nats-io/nats-server)
// inside a test process, on 127.0.0.1, for the tests of several nodes.
//
//	s := natstest.Start(t, -1)            // a random port; shut down when t ends
//	url := natstest.URL(s)                // nats://127.0.0.1:PORT
//	s.Shutdown(); s.WaitForShutdown()     // NATS stops...
//	natstest.Start(t, natstest.Port(s))   // ...and comes back on the same port
package natstest

import (
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Start runs a NATS server on 127.0.0.1:port (-1 or 0: a random port) and
// returns it once it accepts connections; it is shut down when t ends.
func Start(t testing.TB, port int) *server.Server {
	t.Helper()
	if port == 0 {
		port = -1
	}
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		t.Fatal("natstest: NATS server not ready within 10 s")
	}
	t.Cleanup(s.Shutdown)
	return s
}

// URL is the server's client URL, nats://127.0.0.1:PORT.
func URL(s *server.Server) string { return "nats://" + s.Addr().String() }

// Port is the server's port, to start it again on the same one.
func Port(s *server.Server) int { return s.Addr().(*net.TCPAddr).Port }

// FreePort returns a port nothing listens on now, for a server started
// later (a test of a broker that starts while NATS is down).
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
