// Command natsd runs a plain NATS server (github.com/nats-io/nats-server,
// the module chatctl already depends on) for the cluster benchmark
// (bench/scripts/cluster.sh), on a machine that has Go but no nats-server
// binary. It is `nats-server -a HOST -p PORT` and nothing more: no
// JetStream, no auth, no cluster routes. SIGINT or SIGTERM stops it.
//
//	go run ./bench/natsd -addr 127.0.0.1:4222
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:4222", "host:port to listen on")
	flag.Parse()
	if err := run(*addr); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run(addr string) error {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("bad -addr %q: want host:port", addr)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return fmt.Errorf("bad -addr %q: want host:port", addr)
	}
	s, err := server.NewServer(&server.Options{Host: host, Port: port, NoSigs: true, NoLog: true})
	if err != nil {
		return err
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return fmt.Errorf("NATS server on %s not ready within 10s", addr)
	}
	fmt.Printf("nats listening on nats://%s\n", s.Addr())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	s.Shutdown()
	s.WaitForShutdown()
	return nil
}
