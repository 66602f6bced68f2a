// Package storetest is the conformance suite of store.Store: one table of
// cases that every backend (the bbolt file, PostgreSQL) must pass. A
// backend's test calls Run with a Backend that opens fresh stores; the
// cases only use store.Store, so a behaviour checked here is the same on
// every backend.
package storetest

import (
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatctl/chatctl/store"
)

// Backend opens stores of one kind for the suite.
type Backend struct {
	// Name names the backend in messages.
	Name string
	// New opens a fresh, empty store whose clock is now. It registers
	// its own cleanup. more opens another handle on the same store, as
	// another process would (it may be called several times; each handle
	// is closed by the backend's cleanup); it is nil for a backend that
	// only one process can open at a time (bbolt), and cases then use the
	// first handle for every "process".
	New func(t *testing.T, now func() time.Time) (s store.Store, more func() store.Store)
	// Fault makes the message commits of s (a store or handle New
	// returned) fail with err from now on, as a database or disk failing
	// the commit would; a nil err lets them commit again. The bbolt
	// backend wires it to store.Options.WriteFault, PostgreSQL to
	// pg.Options.CommitFault.
	Fault func(s store.Store, err error)
}

// Env is what a case works with.
type Env struct {
	*testing.T
	// Clock is the stores' clock; cases move it.
	Clock *Clock
	// S is the store.
	S store.Store
	// Backend is the backend's name.
	Backend string
	more    func() store.Store
	fault   func(s store.Store, err error)
}

// Handle returns another handle on the store, as another process sees
// it, or S when the backend has one handle per store.
func (e *Env) Handle() store.Store {
	if e.more == nil {
		return e.S
	}
	return e.more()
}

// Fault makes the message commits of s fail with err (nil: commit
// again); see Backend.Fault.
func (e *Env) Fault(s store.Store, err error) {
	e.Helper()
	if e.fault == nil {
		e.Fatalf("backend %s has no Fault", e.Backend)
	}
	e.fault(s, err)
}

// Shared reports whether Handle opens separate handles.
func (e *Env) Shared() bool { return e.more != nil }

// Case is one behaviour every backend must have.
type Case struct {
	Name string
	Run  func(e *Env)
}

// Cases returns the whole table, in order.
func Cases() []Case {
	return slices.Concat(userCases, keyCases, sessionCases, messageCases, auditCases, accessCases)
}

// Start is where every case's clock starts.
var Start = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// Run runs every case against b, each on a fresh store.
func Run(t *testing.T, b Backend) {
	for _, c := range Cases() {
		t.Run(c.Name, func(t *testing.T) {
			clock := &Clock{t: Start}
			s, more := b.New(t, clock.Now)
			c.Run(&Env{T: t, Clock: clock, S: s, Backend: b.Name, more: more, fault: b.Fault})
		})
	}
}

// Clock is a settable clock, safe for concurrent use.
type Clock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Add moves the clock forward by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// must fails the case on err.
func (e *Env) must(err error) {
	e.Helper()
	if err != nil {
		e.Fatal(err)
	}
}

// FaultSwitch is an error a test sets and clears; its Err method is the
// hook a backend calls before a commit (store.Options.WriteFault,
// pg.Options.CommitFault).
type FaultSwitch struct {
	err atomic.Pointer[error]
}

// Err returns the error set, or nil.
func (f *FaultSwitch) Err() error {
	if p := f.err.Load(); p != nil {
		return *p
	}
	return nil
}

// Faults maps the stores a backend opened to their switches; its Set is
// a Backend.Fault.
type Faults struct {
	m sync.Map // store.Store → *FaultSwitch
}

// Switch returns a new switch for a store about to be opened; Add then
// ties it to the store.
func (f *Faults) Switch() *FaultSwitch { return new(FaultSwitch) }

// Add ties sw to s.
func (f *Faults) Add(s store.Store, sw *FaultSwitch) { f.m.Store(s, sw) }

// Set sets the error of s's switch (nil clears it).
func (f *Faults) Set(s store.Store, err error) {
	sw, ok := f.m.Load(s)
	if !ok {
		panic("storetest: Fault on a store the backend did not open")
	}
	if err == nil {
		sw.(*FaultSwitch).err.Store(nil)
		return
	}
	sw.(*FaultSwitch).err.Store(&err)
}
