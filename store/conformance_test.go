package store_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/chatctl/chatctl/store"
	"github.com/chatctl/chatctl/store/storetest"
)

// TestConformance runs the store conformance suite on the bbolt file.
func TestConformance(t *testing.T) {
	var faults storetest.Faults
	storetest.Run(t, storetest.Backend{
		Name: "bbolt",
		New: func(t *testing.T, now func() time.Time) (store.Store, func() store.Store) {
			sw := faults.Switch()
			db, err := store.Open(filepath.Join(t.TempDir(), "c.db"), store.Options{Now: now, NoSync: true, WriteFault: sw.Err})
			if err != nil {
				t.Fatal(err)
			}
			faults.Add(db, sw)
			t.Cleanup(func() { db.Close() })
			return db, nil
		},
		Fault: faults.Set,
	})
}
