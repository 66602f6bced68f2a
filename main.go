// Command chatctl is the admin CLI and the server of a real-time chat
// service. See README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/chatctl/chatctl/cmd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cmd.Main(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
