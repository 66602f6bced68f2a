package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Ensure Open's access modes: Read and Write never create a file or its
// folder, Read opens a file without write permission read-only (writes
// then fail with ErrReadOnly), Write refuses such a file, and only a
// created file reports Created.
func TestOpenAccess(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "sub", "c.db")
	for _, access := range []Access{Read, Write} {
		_, err := Open(missing, Options{Access: access})
		if !errors.Is(err, ErrNoStore) {
			t.Fatalf("access %d on a missing file: %v, want ErrNoStore", access, err)
		}
		if want := "store " + missing + ": does not exist"; err.Error() != want {
			t.Errorf("error %q, want %q", err, want)
		}
	}
	if _, err := os.Stat(filepath.Dir(missing)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the folder was created: %v", err)
	}

	path := filepath.Join(dir, "c.db")
	db, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if !db.Created() || db.ReadOnly() {
		t.Errorf("new store: Created %v ReadOnly %v, want true false", db.Created(), db.ReadOnly())
	}
	if _, err := db.CreateUser(User{Name: "alice", Hash: "h", Role: "user"}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	db, err = Open(path, Options{Access: Read})
	if err != nil {
		t.Fatal(err)
	}
	if db.Created() || db.ReadOnly() {
		t.Errorf("writable store opened for reading: Created %v ReadOnly %v, want false false", db.Created(), db.ReadOnly())
	}
	db.Close()

	if err := os.Chmod(path, 0o400); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	if _, err := Open(path, Options{Access: Write}); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("Write on a 0400 file: %v, want ErrReadOnly", err)
	}
	if _, err := Open(path, Options{}); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("Create on a 0400 file: %v, want ErrReadOnly", err)
	}
	db, err = Open(path, Options{Access: Read})
	if err != nil {
		t.Fatal(err)
	}
	if !db.ReadOnly() {
		t.Error("0400 file not opened read-only")
	}
	if u, err := db.User("alice"); err != nil || u.Name != "alice" {
		t.Errorf("read on a read-only store: %+v, %v", u, err)
	}
	if _, err := db.CreateUser(User{Name: "bob", Hash: "h", Role: "user"}); !errors.Is(err, ErrReadOnly) {
		t.Errorf("write on a read-only store: %v, want ErrReadOnly", err)
	}
	// Two readers at once: a read-only open takes a shared lock.
	db2, err := Open(path, Options{Access: Read, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatalf("second reader: %v", err)
	}
	db2.Close()
	db.Close()
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("the read-only file changed")
	}
}

// Ensure opening a store at the current schema writes nothing: reading
// commands leave the file as it was.
func TestOpenWritesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	before, _ := os.ReadFile(path)
	db, err = Open(path, Options{Access: Read})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Users(); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("opening and reading the store changed the file")
	}
}

// Ensure WriteTo copies a consistent snapshot while messages are appended
// concurrently: the copy passes VerifyFile and holds, in every room, ids
// 1..n without a gap, including every message acked before it began.
func TestWriteToUnderAppends(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(filepath.Join(dir, "c.db"), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rooms := []string{"a", "b", "c", "d"}
	var mu sync.Mutex // guards acked
	acked := map[string]uint64{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 8 {
		room := rooms[i%len(rooms)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				m, err := db.AppendMessage(context.Background(), room, "u", fmt.Sprintf("%d-%d", i, n), time.Now())
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				acked[room] = max(acked[room], m.ID)
				mu.Unlock()
			}
		}()
	}
	waitFor := func(n uint64) {
		deadline := time.Now().Add(20 * time.Second)
		for {
			mu.Lock()
			var sum uint64
			for _, v := range acked {
				sum += v
			}
			mu.Unlock()
			if sum >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("fewer than %d appends in 20 s", n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	for i := range 3 {
		waitFor(uint64(200 * (i + 1)))
		mu.Lock()
		before := map[string]uint64{}
		for r, v := range acked {
			before[r] = v
		}
		mu.Unlock()
		file := filepath.Join(dir, fmt.Sprintf("b%d.db", i))
		f, err := os.Create(file)
		if err != nil {
			t.Fatal(err)
		}
		var announced int64
		n, err := db.WriteTo(f, func(size int64) { announced = size })
		if err != nil || n != announced {
			t.Fatalf("WriteTo: %d bytes of %d announced, %v", n, announced, err)
		}
		f.Close()
		sum, err := VerifyFile(file, 0)
		if err != nil {
			t.Fatalf("copy %d: %v", i, err)
		}
		cp, err := Open(file, Options{Access: Read})
		if err != nil {
			t.Fatal(err)
		}
		total := 0
		for _, room := range rooms {
			msgs, err := cp.MessagesAfter(room, 0, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			for j, m := range msgs {
				if m.ID != uint64(j+1) {
					t.Fatalf("copy %d room %s: message %d has id %d", i, room, j, m.ID)
				}
			}
			if uint64(len(msgs)) < before[room] {
				t.Fatalf("copy %d room %s: %d messages, but %d were acked before it began", i, room, len(msgs), before[room])
			}
			total += len(msgs)
		}
		cp.Close()
		if sum.Messages != total || sum.Rooms != len(rooms) {
			t.Errorf("copy %d summary %+v, counted %d messages", i, sum, total)
		}
	}
	close(stop)
	wg.Wait()
}

// Ensure VerifyFile refuses what is no chatctl store, without a crash.
func TestVerifyFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	other := filepath.Join(dir, "other.db")
	b, err := bolt.Open(other, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	b.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("x")); return err })
	b.Close()
	newer := filepath.Join(dir, "newer.db")
	db, err := Open(newer, Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Bolt().Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keySchema, []byte(fmt.Sprint(SchemaVersion+1)))
	})
	db.Close()
	tests := []struct {
		name, path string
		want       error
		text       string
	}{
		{"missing", filepath.Join(dir, "none.db"), fs.ErrNotExist, "no such file"},
		{"folder", dir, nil, "is a folder"},
		{"empty", write("empty.db", nil), ErrCorrupt, "empty"},
		{"text", write("text.db", bytes.Repeat([]byte("not bbolt "), 2000)), ErrCorrupt, ""},
		{"other bbolt file", other, ErrCorrupt, `no "meta" bucket`},
		{"newer schema", newer, ErrNewerSchema, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := VerifyFile(tt.path, 100*time.Millisecond)
			if err == nil {
				t.Fatal("accepted")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("error %v, want %v", err, tt.want)
			}
			if !bytes.Contains([]byte(err.Error()), []byte(tt.text)) {
				t.Errorf("error %q, want it to say %q", err, tt.text)
			}
		})
	}
}

// Ensure Probe tells a held file from a free or damaged one.
func TestProbe(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	if err := Probe(path, 0); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing: %v", err)
	}
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := Probe(path, 50*time.Millisecond); !errors.Is(err, ErrLocked) {
		t.Fatalf("held: %v, want ErrLocked", err)
	}
	db.Close()
	if err := Probe(path, 50*time.Millisecond); err != nil {
		t.Fatalf("free: %v", err)
	}
	if err := os.WriteFile(path, bytes.Repeat([]byte{0xff}, 8192), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Probe(path, 50*time.Millisecond); err != nil {
		t.Fatalf("damaged but free: %v", err)
	}
}
