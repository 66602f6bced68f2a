package api

import (
	"context"
	"errors"
	"runtime"

	"golang.org/x/sys/unix"
)

// hashPool runs bcrypt work (logins, new passwords) on a fixed set of
// workers, no more than the cores, so a login storm cannot take every
// core from /users/me and chat. Each worker is locked to its own OS thread
// with a lower scheduling priority (nice 10): when other requests need the
// CPU, the kernel runs them first.
type hashPool struct {
	jobs chan func()
}

// errBusy is returned when too many logins are already waiting.
var errBusy = errors.New("server busy: too many logins in progress")

// hashWorkers is the pool width: the cores this process may use.
func hashWorkers() int { return max(1, runtime.NumCPU()) }

func newHashPool(workers, queue int) *hashPool {
	p := &hashPool{jobs: make(chan func(), queue)}
	for range workers {
		go p.work()
	}
	return p
}

func (p *hashPool) work() {
	runtime.LockOSThread() // the thread keeps the lower priority; never unlocked
	_ = unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), 10)
	for job := range p.jobs {
		job()
	}
}

// do runs fn on a worker and waits for it. It fails fast with errBusy
// when the queue is full, and returns ctx's error if the client gives up
// (fn then still runs, but its result is dropped).
func (p *hashPool) do(ctx context.Context, fn func()) error {
	done := make(chan struct{})
	select {
	case p.jobs <- func() {
		defer close(done)
		if ctx.Err() == nil { // skip work for clients that left
			fn()
		}
	}:
	default:
		return errBusy
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
