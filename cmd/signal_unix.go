//go:build !windows && !plan9 && !js && !wasip1

package cmd

import (
	"os"
	"os/signal"
	"syscall"
)

// notifyReload delivers SIGHUP, the conventional "reload your
// configuration" signal, to c.
func notifyReload(c chan<- os.Signal) { signal.Notify(c, syscall.SIGHUP) }
