package pg

// Benchmarks of durable appends, PostgreSQL against the bbolt file (fsync
// on, a real file) in the same run, as the machine is shared:
//
//	CHATCTL_TEST_POSTGRES=postgres://… taskset -c 1 go test ./store/pg/ \
//		-run '^$' -bench 'AppendManyRooms|AppendOneRoom' -count 5
//
// BenchmarkAppendTuning compares the choices messages.go made (batch
// bound, committers, insert method, schema); run it the same way with
// -bench AppendTuning.

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatctl/chatctl/internal/pgtest"
	"github.com/chatctl/chatctl/store"
)

// benchPG opens a handle on a fresh database, or on url when given.
func benchPG(b *testing.B, url string, opts Options) (*DB, string) {
	b.Helper()
	if url == "" {
		url = pgtest.URL(b)
	}
	opts.Access = store.Create
	db, err := Open(context.Background(), url, opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db, url
}

// benchBolt opens a bbolt store with fsync on, in a real file.
func benchBolt(b *testing.B) *store.DB {
	b.Helper()
	db, err := store.Open(filepath.Join(b.TempDir(), "c.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

// appendLoad runs b.N appends from senders goroutines (sender i on
// handles[i%len(handles)]), each sending its next message once the last
// is acked, to a room room(rng) picks, and reports msgs/s, messages per
// commit, and the p50 and p99 ack latency.
func appendLoad(b *testing.B, handles []store.Store, senders int, room func(*rand.Rand) string) {
	var commits0 uint64
	for _, h := range handles {
		commits0 += h.MessageCommits()
	}
	cpu0 := serverCPU(b, handles)
	var next atomic.Int64
	lat := make([][]time.Duration, senders)
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for i := range senders {
		s := handles[i%len(handles)]
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 1))
			for next.Add(1) <= int64(b.N) {
				t := time.Now()
				if _, err := s.AppendMessage(context.Background(), room(rng), "alice", "hello there, a chat message", t); err != nil {
					b.Error(err)
					return
				}
				lat[i] = append(lat[i], time.Since(t))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if cpu := serverCPU(b, handles) - cpu0; cpu > 0 {
		// Less sensitive to the machine's other load than msgs/s.
		b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "pg-cpu-µs/msg")
	}
	var commits uint64
	for _, h := range handles {
		commits += h.MessageCommits()
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(b.N)/float64(max(commits-commits0, 1)), "msgs/commit")
	if len(all) > 0 {
		b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
	}
	b.ReportMetric(0, "ns/op") // meaningless with many senders
}

// serverCPU returns the CPU time used so far by the PostgreSQL backends
// serving the handles that are *DB (read from /proc: the server must be
// local), 0 when there are none or /proc cannot be read.
func serverCPU(b *testing.B, handles []store.Store) time.Duration {
	var total time.Duration
	for _, h := range handles {
		db, ok := h.(*DB)
		if !ok {
			continue
		}
		rows, err := db.pool.Query(context.Background(),
			`SELECT pid FROM pg_stat_activity WHERE datname = current_database()`)
		if err != nil {
			b.Fatal(err)
		}
		pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
		if err != nil {
			b.Fatal(err)
		}
		for _, pid := range pids {
			total += procCPU(pid)
		}
		break // every handle is on the same database
	}
	return total
}

// procCPU returns the user+system time of process pid, or 0.
func procCPU(pid int32) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which ends with ")"): utime and
	// stime are the 12th and 13th, in clock ticks (100 a second).
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * 10 * time.Millisecond
}

// manyRooms picks one of 1,000 rooms at random.
func manyRooms() func(*rand.Rand) string {
	names := make([]string, 1000)
	for i := range names {
		names[i] = fmt.Sprint("room", i)
	}
	return func(r *rand.Rand) string { return names[r.IntN(len(names))] }
}

// BenchmarkAppendManyRooms: durable messages/s, 256 senders over 1,000
// rooms, on one handle.
func BenchmarkAppendManyRooms(b *testing.B) {
	const senders = 256
	b.Run("postgres", func(b *testing.B) {
		pgtest.ServerURL(b)
		db, _ := benchPG(b, "", Options{})
		appendLoad(b, []store.Store{db}, senders, manyRooms())
	})
	b.Run("bbolt", func(b *testing.B) {
		appendLoad(b, []store.Store{benchBolt(b)}, senders, manyRooms())
	})
}

// BenchmarkAppendOneRoom: one room, 64 concurrent senders; on PostgreSQL
// from two handles (two pools, as two processes would), which take turns
// on the room's row lock. bbolt allows one process: one handle.
func BenchmarkAppendOneRoom(b *testing.B) {
	const senders = 64
	one := func(*rand.Rand) string { return "general" }
	b.Run("postgres-2handles", func(b *testing.B) {
		pgtest.ServerURL(b)
		db1, url := benchPG(b, "", Options{})
		db2, _ := benchPG(b, url, Options{})
		appendLoad(b, []store.Store{db1, db2}, senders, one)
	})
	b.Run("postgres-1handle", func(b *testing.B) {
		pgtest.ServerURL(b)
		db, _ := benchPG(b, "", Options{})
		appendLoad(b, []store.Store{db}, senders, one)
	})
	b.Run("bbolt", func(b *testing.B) {
		appendLoad(b, []store.Store{benchBolt(b)}, senders, one)
	})
}

// BenchmarkAppendTuning: 256 senders over 1,000 rooms (oneroom/…: 512
// senders in one room) on PostgreSQL, with the batch bound, the number of
// committers, the insert method and the schema varied one at a time from
// what messages.go uses (default). pg-cpu-µs/msg, the server's CPU per
// message, is steadier than msgs/s on a shared machine.
func BenchmarkAppendTuning(b *testing.B) {
	pgtest.ServerURL(b)
	type variant struct {
		name       string
		batch      int
		committers int
		copyFrom   bool
		schema     string // run after Open
		oneRoom    bool   // 512 senders in one room instead
	}
	variants := []variant{
		{name: "default", batch: 1024, committers: 2},
		{name: "batch=256", batch: 256, committers: 2},
		{name: "batch=64", batch: 64, committers: 2},
		{name: "committers=1", batch: 1024, committers: 1},
		{name: "committers=4", batch: 1024, committers: 4},
		{name: "committers=8", batch: 1024, committers: 8},
		{name: "copyfrom", batch: 1024, committers: 2, copyFrom: true},
		{name: "with-fk", batch: 1024, committers: 2, schema: `ALTER TABLE messages ADD FOREIGN KEY (room) REFERENCES rooms (name) ON DELETE CASCADE`},
		{name: "with-ts-index", batch: 1024, committers: 2, schema: `CREATE INDEX messages_ts ON messages (ts)`},
		{name: "rooms-fillfactor=50", batch: 1024, committers: 2, schema: `ALTER TABLE rooms SET (fillfactor = 50)`},
		{name: "oneroom/default", batch: 1024, committers: 2, oneRoom: true},
		{name: "oneroom/batch=256", batch: 256, committers: 2, oneRoom: true},
		{name: "oneroom/batch=64", batch: 64, committers: 2, oneRoom: true},
		{name: "oneroom/copyfrom", batch: 1024, committers: 2, oneRoom: true, copyFrom: true},
	}
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			defer func(n int) { maxBatch = n }(maxBatch)
			maxBatch = v.batch
			if v.copyFrom {
				altCommit = func(m *messages) func(context.Context, []*appendReq) error { return m.commitCopy }
				defer func() { altCommit = nil }()
			}
			db, _ := benchPG(b, "", Options{Committers: v.committers})
			if v.schema != "" {
				if _, err := db.pool.Exec(context.Background(), v.schema); err != nil {
					b.Fatal(err)
				}
			}
			if v.oneRoom {
				appendLoad(b, []store.Store{db}, 512, func(*rand.Rand) string { return "general" })
				return
			}
			appendLoad(b, []store.Store{db}, 256, manyRooms())
		})
	}
}

// upsertRooms is upsertAppend's first half, for commitCopy.
const upsertRooms = `
INSERT INTO rooms AS r (name, epoch, last_id, count, created_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $3::bigint[], $4::timestamptz[])
ON CONFLICT (name) DO UPDATE
	SET last_id = r.last_id + excluded.last_id, count = r.count + excluded.count
RETURNING name, epoch, last_id`

// commitCopy is the alternative to commitUnnest that BenchmarkAppendTuning
// measures: an explicit transaction with the rooms' upsert, then COPY of
// the messages, then COMMIT (four round trips instead of one).
func (m *messages) commitCopy(ctx context.Context, batch []*appendReq) error {
	g := groupRooms(batch)
	return pgx.BeginFunc(ctx, m.db.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, upsertRooms, g.names, g.epochs, g.counts, g.created)
		if err != nil {
			return err
		}
		lastIDs := make([]int64, len(g.names))
		epochs := make([]string, len(g.names))
		var name, epoch string
		var last int64
		if _, err := pgx.ForEachRow(rows, []any{&name, &epoch, &last}, func() error {
			i := g.index[name]
			lastIDs[i], epochs[i] = last, epoch
			return nil
		}); err != nil {
			return err
		}
		for i, r := range batch {
			r.msg.ID = uint64(lastIDs[g.room[i]] - g.back[i])
			r.msg.Epoch = epochs[g.room[i]]
		}
		_, err = tx.CopyFrom(ctx, pgx.Identifier{"messages"}, []string{"room", "id", "sender", "body", "ts"},
			pgx.CopyFromSlice(len(batch), func(i int) ([]any, error) {
				r := batch[i].msg
				return []any{r.Room, int64(r.ID), r.From, r.Text, r.TS}, nil
			}))
		return err
	})
}
