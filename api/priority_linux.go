package api

import "golang.org/x/sys/unix"

// lowerThreadPriority sets the calling OS thread to nice 10 (Linux nices
// threads one by one).
func lowerThreadPriority() { _ = unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), 10) }
