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
	db, err := pg.Open(context.Background(), url, pg.Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestConformance runs the store conformance suite on PostgreSQL.
func TestConformance(t *testing.T) {
	pgtest.ServerURL(t)
	storetest.Run(t, storetest.Backend{
		Name: "postgres",
		New: func(t *testing.T, now func() time.Time) (store.Store, func() store.Store) {
			url := pgtest.URL(t)
			return open(t, url, now), func() store.Store { return open(t, url, now) }
		},
	})
}
