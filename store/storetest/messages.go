package storetest

import (
	"context"
	"fmt"
	"sync"
)

// messageCases: rooms and messages (gapless ids, history, epochs).
var messageCases = []Case{
	{"AppendGaplessConcurrent", func(e *Env) {
		// 2 handles (processes, where the backend has them) × 8 senders
		// × 3 rooms: each room's ids are exactly 1..n.
		const senders, each = 8, 20
		rooms := []string{"a", "b.c", "d-e"}
		var wg sync.WaitGroup
		for h := 0; h < 2; h++ {
			s := e.Handle()
			for i := 0; i < senders; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for j := 0; j < each; j++ {
						room := rooms[(i+j)%len(rooms)]
						if _, err := s.AppendMessage(context.Background(), room, "alice", fmt.Sprint(h, i, j), e.Clock.Now()); err != nil {
							e.Error(err)
							return
						}
					}
				}()
			}
		}
		wg.Wait()
		total := 0
		for _, r := range rooms {
			ms, err := e.S.MessagesAfter(r, 0, 1000)
			e.must(err)
			for i, m := range ms {
				if m.ID != uint64(i+1) || m.Room != r {
					e.Fatalf("room %s: message %d has id %d (room %q), want %d", r, i, m.ID, m.Room, i+1)
				}
			}
			total += len(ms)
		}
		if total != 2*senders*each {
			e.Fatalf("stored %d messages, want %d", total, 2*senders*each)
		}
	}},
}
