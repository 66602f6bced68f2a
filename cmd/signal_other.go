//go:build windows || plan9 || js || wasip1

package cmd

import "os"

// notifyReload does nothing: this platform has no SIGHUP. Restart the
// server to apply a changed configuration.
func notifyReload(chan<- os.Signal) {}
