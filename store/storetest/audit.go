package storetest

import (
	"fmt"
	"sync"
	"time"

	"github.com/chatctl/chatctl/store"
)

// auditEntry is an audit entry of action by actor on target.
func auditEntry(action, actor, target string) store.AuditEntry {
	return store.AuditEntry{Action: action, Actor: actor, From: "local", Target: target, Outcome: store.AuditOK}
}

// seqs lists the sequence numbers of entries.
func seqs(list []store.AuditEntry) []uint64 {
	var out []uint64
	for _, e := range list {
		out = append(out, e.Seq)
	}
	return out
}

// auditCases: the audit log.
var auditCases = []Case{
	{"AuditOrder", func(e *Env) {
		// Oldest first with increasing sequence numbers, even when many
		// share one time; an entry's own earlier time sorts it first.
		if list, err := e.S.Audit(store.AuditQuery{}); err != nil || len(list) != 0 {
			e.Fatalf("empty store: %v, %v", list, err)
		}
		for i := range 5 {
			e.must(e.S.AppendAudit(auditEntry("user.add", "root", fmt.Sprint("u", i))))
		}
		list, err := e.Handle().Audit(store.AuditQuery{})
		e.must(err)
		if len(list) != 5 {
			e.Fatalf("Audit = %+v", list)
		}
		for i, a := range list {
			want := auditEntry("user.add", "root", fmt.Sprint("u", i))
			want.Seq, want.Time = uint64(i+1), e.Clock.Now()
			if a != want {
				e.Errorf("entry %d = %+v, want %+v", i, a, want)
			}
		}
		early := auditEntry("key.rotate", "root", "k")
		early.Time = e.Clock.Now().Add(-time.Hour)
		e.must(e.S.AppendAudit(early))
		list, err = e.S.Audit(store.AuditQuery{})
		e.must(err)
		if len(list) != 6 || list[0].Action != "key.rotate" || list[0].Seq != 6 || !list[0].Time.Equal(early.Time) {
			e.Fatalf("first = %+v", list[0])
		}
		// One call, several entries: consecutive numbers in order.
		e.must(e.S.AppendAudit(auditEntry("a.1", "x", ""), auditEntry("a.2", "x", ""), auditEntry("a.3", "x", "")))
		list, err = e.S.Audit(store.AuditQuery{Action: "a"})
		e.must(err)
		if fmt.Sprint(seqs(list)) != "[7 8 9]" || list[0].Action != "a.1" || list[2].Action != "a.3" {
			e.Fatalf("batch = %+v", list)
		}
		if e.S.AuditDropped() != 0 {
			e.Fatalf("dropped %d", e.S.AuditDropped())
		}
	}},
	{"AuditQuery", func(e *Env) {
		start := e.Clock.Now()
		add := func(a store.AuditEntry) {
			e.Helper()
			e.must(e.S.AppendAudit(a))
			e.Clock.Add(time.Minute)
		}
		add(auditEntry("user.add", "root", "alice"))     // +0
		add(auditEntry("login.ok", "alice", ""))         // +1
		add(auditEntry("login.failed", "bob", ""))       // +2
		add(auditEntry("user.remove", "root", "bob"))    // +3
		add(auditEntry("user.userish", "root", "carol")) // +4: not under "user.user"
		tests := []struct {
			name string
			q    store.AuditQuery
			want []uint64
		}{
			{"All", store.AuditQuery{}, []uint64{1, 2, 3, 4, 5}},
			{"Since", store.AuditQuery{Since: start.Add(2 * time.Minute)}, []uint64{3, 4, 5}},
			{"SinceBetween", store.AuditQuery{Since: start.Add(90 * time.Second)}, []uint64{3, 4, 5}},
			{"UserAsActorOrTarget", store.AuditQuery{User: "BOB"}, []uint64{3, 4}},
			{"ActionExact", store.AuditQuery{Action: "login.ok"}, []uint64{2}},
			{"ActionGroup", store.AuditQuery{Action: "login"}, []uint64{2, 3}},
			{"ActionNotAPrefixOfAName", store.AuditQuery{Action: "user.user"}, nil},
			{"ActionNotAWordPrefix", store.AuditQuery{Action: "log"}, nil},
			{"LimitKeepsNewest", store.AuditQuery{Limit: 2}, []uint64{4, 5}},
			{"LimitAboveCount", store.AuditQuery{Limit: 50}, []uint64{1, 2, 3, 4, 5}},
			{"Combined", store.AuditQuery{User: "root", Action: "user", Limit: 2, Since: start}, []uint64{4, 5}},
			{"NoMatch", store.AuditQuery{User: "dave"}, nil},
		}
		for _, tc := range tests {
			list, err := e.S.Audit(tc.q)
			e.must(err)
			if fmt.Sprint(seqs(list)) != fmt.Sprint(tc.want) {
				e.Errorf("%s: seqs = %v, want %v", tc.name, seqs(list), tc.want)
			}
		}
	}},
	{"AuditPrune", func(e *Env) {
		const old, fresh = 7, 1011
		batch := func(n int, at time.Time) {
			e.Helper()
			entries := make([]store.AuditEntry, n)
			for i := range entries {
				entries[i] = auditEntry("login.failed", "x", "")
				entries[i].Time = at
			}
			e.must(e.S.AppendAudit(entries...))
		}
		batch(old, e.Clock.Now().Add(-100*24*time.Hour))
		batch(fresh, e.Clock.Now().Add(-time.Hour))
		n, err := e.S.PruneAudit(90*24*time.Hour, 0)
		if err != nil || n != old {
			e.Fatalf("by age: %d, %v; want %d", n, err, old)
		}
		n, err = e.Handle().PruneAudit(90*24*time.Hour, 1000)
		if err != nil || n != fresh-1000 {
			e.Fatalf("by count: %d, %v; want %d", n, err, fresh-1000)
		}
		list, err := e.S.Audit(store.AuditQuery{})
		e.must(err)
		if len(list) != 1000 || list[999].Seq != old+fresh || list[0].Seq != old+fresh-999 {
			e.Fatalf("kept %d, from seq %d to %d", len(list), list[0].Seq, list[len(list)-1].Seq)
		}
		if n, err := e.S.PruneAudit(0, 1000); err != nil || n != 0 {
			e.Fatalf("nothing to prune: %d, %v", n, err)
		}
		if n, err := e.S.PruneAudit(0, 0); err != nil || n != 0 {
			e.Fatalf("no bounds: %d, %v", n, err)
		}
	}},
	{"AuditRecordAndFlush", func(e *Env) {
		// Queued entries from concurrent callers are all there after
		// FlushAudit, with their time of recording.
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 50 {
					e.S.RecordAudit(auditEntry("login.ok", fmt.Sprint("g", g), fmt.Sprint(i)))
				}
			}()
		}
		wg.Wait()
		e.S.FlushAudit()
		list, err := e.S.Audit(store.AuditQuery{Action: "login.ok"})
		e.must(err)
		if len(list)+int(e.S.AuditDropped()) != 200 || e.S.AuditDropped() != 0 {
			e.Fatalf("%d written, %d dropped of 200", len(list), e.S.AuditDropped())
		}
		per := map[string]int{}
		for i, a := range list {
			if !a.Time.Equal(e.Clock.Now()) || (i > 0 && a.Seq <= list[i-1].Seq) {
				e.Fatalf("entry %d = %+v", i, a)
			}
			if fmt.Sprint(per[a.Actor]) != a.Target {
				e.Fatalf("%s's entries out of order: %+v", a.Actor, a)
			}
			per[a.Actor]++
		}
		e.S.FlushAudit() // nothing queued: returns
	}},
}
