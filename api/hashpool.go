package api

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// hashPool runs bcrypt work (logins, new passwords) on a fixed set of
// workers, no more than the cores, so a login storm cannot take every
// core from /users/me and chat.
//
// A bcrypt hash holds its P for a quarter of a second, and Go preempts it
// only every 10 ms, so on a server with one P per core a storm would still
// delay everything else by up to 10 ms. So while bcrypt work is in flight
// the pool adds one P (GOMAXPROCS+1), and each worker runs on its own OS
// thread at a lower priority (nice 10): the kernel then runs the other
// goroutines' thread first. When the pool has been idle for a while the P
// is taken back, since an extra P costs plain request handling about a
// tenth of its throughput on a single core.
type hashPool struct {
	jobs chan func()

	// adaptive enables the GOMAXPROCS change; it is process-wide, so only
	// the real server (Serve) turns it on.
	adaptive bool
	inFlight atomic.Int32
	mu       sync.Mutex  // guards raised and lower
	raised   bool        // GOMAXPROCS is one above its base
	base     int         // GOMAXPROCS before raising
	lower    *time.Timer // pending return to base
}

// errBusy is returned when too many logins are already waiting.
var errBusy = errors.New("server busy: too many logins in progress")

// procsIdle is how long the pool must be idle before the extra P goes.
const procsIdle = time.Second

// hashWorkers is the pool width: the cores this process may use.
func hashWorkers() int { return max(1, runtime.NumCPU()) }

func newHashPool(workers, queue int, adaptive bool) *hashPool {
	p := &hashPool{jobs: make(chan func(), queue), adaptive: adaptive}
	for range workers {
		go p.work()
	}
	return p
}

func (p *hashPool) work() {
	runtime.LockOSThread() // the thread keeps the lower priority; never unlocked
	lowerThreadPriority()
	for job := range p.jobs {
		job()
	}
}

// do runs fn on a worker and waits for it. It fails fast with errBusy
// when the queue is full. If ctx ends while fn is still queued, fn is
// skipped and ctx's error returned; once fn runs, do waits for it, so fn
// may safely use the caller's request and response.
func (p *hashPool) do(ctx context.Context, fn func()) error {
	p.begin()
	defer p.end()
	done := make(chan struct{})
	var state atomic.Int32 // 0 queued, 1 running, 2 abandoned
	select {
	case p.jobs <- func() {
		defer close(done)
		if state.CompareAndSwap(0, 1) {
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
		if state.CompareAndSwap(0, 2) {
			return ctx.Err()
		}
		<-done // already running: wait, fn may be writing the response
		return nil
	}
}

// begin raises GOMAXPROCS for the first job in flight.
func (p *hashPool) begin() {
	if p.inFlight.Add(1) != 1 || !p.adaptive {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lower != nil {
		p.lower.Stop()
		p.lower = nil
	}
	if !p.raised {
		p.base = runtime.GOMAXPROCS(0)
		runtime.GOMAXPROCS(p.base + 1)
		p.raised = true
	}
}

// end schedules the return to the base GOMAXPROCS once idle.
func (p *hashPool) end() {
	if p.inFlight.Add(-1) != 0 || !p.adaptive {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lower != nil {
		p.lower.Stop()
	}
	p.lower = time.AfterFunc(procsIdle, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.inFlight.Load() == 0 && p.raised {
			runtime.GOMAXPROCS(p.base)
			p.raised = false
		}
	})
}

// close stops the workers and gives back the extra P.
func (p *hashPool) close() {
	close(p.jobs)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lower != nil {
		p.lower.Stop()
	}
	if p.raised {
		runtime.GOMAXPROCS(p.base)
		p.raised = false
	}
}
