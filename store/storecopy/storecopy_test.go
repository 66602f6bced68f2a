package storecopy_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chatctl/chatctl/internal/pgtest"
	"github.com/chatctl/chatctl/store"
	"github.com/chatctl/chatctl/store/storecopy"
	"github.com/chatctl/chatctl/store/storetest"
)

// fill makes a bbolt store at path with storetest.Fill and closes it.
func fill(t *testing.T, path string) storetest.Filled {
	t.Helper()
	db, err := store.Open(path, store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	return storetest.Fill(t, db)
}

// Ensure a copy from a file to PostgreSQL and back, by URL and path as
// the command gives them, keeps everything, and names both stores.
func TestRunThroughPostgres(t *testing.T) {
	pgtest.ServerURL(t)
	ctx := context.Background()
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.db"), filepath.Join(dir, "b.db")
	f := fill(t, a)
	url := pgtest.URL(t)
	rep, err := storecopy.Run(ctx, a, url, store.CopyOptions{})
	if err != nil || !rep.OK || rep.From != a || !strings.HasPrefix(rep.To, "postgres://") || rep.Target.Messages != 60 || rep.Target.Members != 3 {
		t.Fatalf("file → PostgreSQL: %+v, %v", rep, err)
	}
	if rep, err = storecopy.Run(ctx, url, b, store.CopyOptions{}); err != nil || !rep.OK || rep.Target.Users != 4 {
		t.Fatalf("PostgreSQL → file: %+v, %v", rep, err)
	}
	src, err := store.Open(a, store.Options{Access: store.Read})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := store.Open(b, store.Options{Access: store.Write})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	storetest.CheckCopy(t, src, dst, f, true)
}

// Ensure a copy that fails removes the file it created, and leaves a
// file that existed (empty) in place, still empty.
func TestRunFailureLeavesNoFile(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.db")
	fill(t, a)
	for _, existed := range []bool{false, true} {
		b := filepath.Join(dir, "b.db")
		if existed {
			db, err := store.Open(b, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			db.Close()
		}
		ctx, cancel := context.WithCancel(context.Background())
		_, err := storecopy.Run(ctx, a, b, store.CopyOptions{Progress: func(done, total int64) { cancel() }})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("interrupted copy: %v", err)
		}
		_, serr := os.Stat(b)
		if existed {
			db, err := store.Open(b, store.Options{Access: store.Read})
			if err != nil {
				t.Fatal(err)
			}
			c, err := db.Count(context.Background())
			db.Close()
			if err != nil || !c.Empty() {
				t.Errorf("the existing target after a failed copy: %v, %v; want empty", c, err)
			}
			os.Remove(b)
		} else if !os.IsNotExist(serr) {
			t.Errorf("the target the copy created is still there: %v", serr)
		}
	}
}
