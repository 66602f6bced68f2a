package pg_test

import (
	"context"
	"testing"
	"time"

	"github.com/chatctl/chatctl/internal/pgtest"
	"github.com/chatctl/chatctl/store"
	"github.com/chatctl/chatctl/store/pg"
	"github.com/chatctl/chatctl/store/storetest"
)

// open opens a handle on url with the clock now, closed at cleanup.
func open(t *testing.T, url string, now func() time.Time) *pg.DB {
	t.Helper()
	return openOpts(t, url, pg.Options{Now: now})
}

// openOpts opens a handle on url with opts, closed at cleanup.
func openOpts(t *testing.T, url string, opts pg.Options) *pg.DB {
	t.Helper()
	db, err := pg.Open(context.Background(), url, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestConformance runs the store conformance suite on PostgreSQL.
func TestConformance(t *testing.T) {
	pgtest.ServerURL(t)
	var faults storetest.Faults
	storetest.Run(t, storetest.Backend{
		Name: "postgres",
		New: func(t *testing.T, now func() time.Time) (store.Store, func() store.Store) {
			url := pgtest.URL(t)
			handle := func() store.Store {
				sw := faults.Switch()
				db := openOpts(t, url, pg.Options{Now: now, CommitFault: sw.Err})
				faults.Add(db, sw)
				return db
			}
			return handle(), handle
		},
		Fault: faults.Set,
	})
}
