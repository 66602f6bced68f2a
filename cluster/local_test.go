package cluster

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

// Ensure the in-process broker of a lone node loops kicks and change hints
// back synchronously, keeps presence as the node's own counts, and costs
// nothing for messages, typing, read echoes and subscriptions (none loops
// back).
func TestLocal(t *testing.T) {
	l := NewLocal("")
	if !ValidNodeID(l.Node()) {
		t.Fatalf("node id %q", l.Node())
	}
	rec := newRecorder()
	if err := l.Start(rec); err != nil {
		t.Fatal(err)
	}
	if !l.Up() || l.Stats().Nodes != 1 {
		t.Fatal("a lone node is always up, and alone")
	}
	if err := l.Subscribe("a.b"); err != nil {
		t.Fatal(err)
	}
	if err := l.Subscribe(""); !errors.Is(err, ErrRoomName) {
		t.Errorf("Subscribe empty: %v", err)
	}
	if err := l.PublishMessages("a.b", "e", msgs(1, 1, "x")); err != nil {
		t.Fatal(err)
	}
	if err := l.PublishTyping("a.b", "alice"); err != nil {
		t.Fatal(err)
	}
	if err := l.PublishRead("alice", "a.b", 3); err != nil {
		t.Fatal(err)
	}
	if err := l.Kick(Kick{JTI: "j1"}); err != nil {
		t.Fatal(err)
	}
	if err := l.Changed(7); err != nil {
		t.Fatal(err)
	}
	// No lock needed to look: Kick and Changed returned after delivery, on
	// this goroutine.
	if !reflect.DeepEqual(rec.kicks, []Kick{{JTI: "j1"}}) || !reflect.DeepEqual(rec.changed, []uint64{7}) {
		t.Fatalf("loopback: kicks %+v, changed %v", rec.kicks, rec.changed)
	}
	if len(rec.msgs) != 0 || len(rec.typing) != 0 || len(rec.reads) != 0 {
		t.Fatalf("looped back: messages %+v, typing %+v, reads %+v", rec.msgs, rec.typing, rec.reads)
	}
	if c, ok := l.SetPresence("r", "alice", 1); !ok || c != join("r", "alice") {
		t.Fatalf("first tab: %+v %v", c, ok)
	}
	if _, ok := l.SetPresence("r", "alice", 2); ok {
		t.Fatal("second tab changed presence")
	}
	if c, ok := l.SetPresence("r", "alice", 0); !ok || c != leave("r", "alice") {
		t.Fatalf("last tab: %+v %v", c, ok)
	}
	if n := l.SetConns("alice", 3, time.Now()); n != 3 {
		t.Fatalf("SetConns = %d", n)
	}
	if total, _ := l.View().Conns("alice"); total != 3 {
		t.Fatalf("Conns = %d", total)
	}
	l.Close()
	if err := l.Kick(Kick{User: "x"}); !errors.Is(err, ErrClosed) {
		t.Errorf("Kick after Close: %v", err)
	}
	if err := l.PublishTyping("a.b", "alice"); !errors.Is(err, ErrClosed) {
		t.Errorf("PublishTyping after Close: %v", err)
	}
	if err := l.PublishRead("alice", "a.b", 3); !errors.Is(err, ErrClosed) {
		t.Errorf("PublishRead after Close: %v", err)
	}
	if l.Up() {
		t.Error("up after Close")
	}
}

// Ensure Local's message, typing and read paths allocate nothing: the
// single-node figures must not move.
func TestLocalPublishAllocs(t *testing.T) {
	l := NewLocal("n")
	l.Start(newRecorder())
	batch := msgs(1, 1, "x")
	if n := testing.AllocsPerRun(100, func() {
		l.Subscribe("general")
		l.PublishMessages("general", "e", batch)
		l.PublishTyping("general", "alice")
		l.PublishRead("alice", "general", 1)
		l.Unsubscribe("general")
	}); n != 0 {
		t.Errorf("%v allocations per publish", n)
	}
}
