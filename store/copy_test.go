package store_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chatctl/chatctl/store"
	"github.com/chatctl/chatctl/store/storetest"
)

// Ensure a bbolt store copies into a new file with every record, hash,
// id and sequence, and that the copy serves the same tokens and room ids.
func TestCopyFileToFile(t *testing.T) {
	dir := t.TempDir()
	src := storetest.OpenFile(t, filepath.Join(dir, "src.db"))
	f := storetest.Fill(t, src)
	dst := storetest.OpenFile(t, filepath.Join(dir, "dst.db"))
	var progress []string
	rep, err := store.Copy(context.Background(), src, dst, store.CopyOptions{
		Progress: func(done, total int64) { progress = append(progress, fmt.Sprintf("%d/%d", done, total)) },
	})
	if err != nil {
		t.Fatal(err)
	}
	want := store.Counts{Users: 4, Keys: 3, Sessions: 3, RefreshTokens: 4, Denied: 3, Rooms: 6, Messages: 40 + 3 + 10 + 2 + 1 + 4,
		AccessRules: 5, PrivateRooms: 3, Members: 3, ReadMarkers: 6, Declared: 3, Audit: 6}
	if rep.Source != want || rep.Target != want || rep.RoomsChecked != 6 || len(rep.Mismatches) != 0 {
		t.Errorf("report %+v, want counts %+v on both sides, 6 rooms", rep, want)
	}
	if got := strings.Join(progress, " "); got != "60/60" {
		t.Errorf("progress %q, want the final count", got)
	}
	storetest.CheckCopy(t, src, dst, f, false)
}

// Ensure a copy into a store that holds anything is refused and changes
// nothing there.
func TestCopyRefusesNonEmpty(t *testing.T) {
	dir := t.TempDir()
	src := storetest.OpenFile(t, filepath.Join(dir, "src.db"))
	storetest.Fill(t, src)
	for name, fill := range map[string]func(*store.DB) error{
		"user": func(db *store.DB) error {
			_, err := db.CreateUser(store.User{Name: "x", Hash: storetest.Hash, Role: "user"})
			return err
		},
		"key": func(db *store.DB) error { _, err := db.ActiveKey(); return err },
		"room": func(db *store.DB) error {
			_, err := db.AppendMessage(context.Background(), "r", "x", "hi", time.Now())
			return err
		},
		"audit": func(db *store.DB) error { return db.AppendAudit(store.AuditEntry{Action: "x", Outcome: store.AuditOK}) },
		"access rule": func(db *store.DB) error {
			return db.SetAccessRule(store.AccessRule{User: "*", Pattern: "x", Perm: "deny"})
		},
		"private room": func(db *store.DB) error { return db.CreatePrivateRoom("p", nil) },
		"read marker": func(db *store.DB) error {
			_, err := db.SetReadMarker("x", "r", 1)
			return err
		},
		"declared list": func(db *store.DB) error { return db.SetDeclared("auth.users", nil) },
	} {
		t.Run(name, func(t *testing.T) {
			file := strings.ReplaceAll(name, " ", "-") + ".db"
			dst := storetest.OpenFile(t, filepath.Join(dir, file))
			if err := fill(dst); err != nil {
				t.Fatal(err)
			}
			before := storetest.Dump(t, dst, false)
			_, err := store.Copy(context.Background(), src, dst, store.CopyOptions{})
			if !errors.Is(err, store.ErrNotEmpty) || !strings.Contains(err.Error(), file+" is not empty (1 "+name) {
				t.Fatalf("copy into a store with a %s: %v", name, err)
			}
			if d := storetest.Diff(before, storetest.Dump(t, dst, false)); d != "" {
				t.Errorf("the target changed:\n%s", d)
			}
		})
	}
}

// tamper is an Importer whose loader changes what passes through it, as
// a faulty copy would.
type tamper struct {
	store.Importer
	change func(store.Record) (store.Record, bool) // false drops the record
}

func (t tamper) Load(ctx context.Context) (store.Loader, error) {
	l, err := t.Importer.Load(ctx)
	return tamperLoader{l, t.change}, err
}

type tamperLoader struct {
	store.Loader
	change func(store.Record) (store.Record, bool)
}

func (l tamperLoader) Put(ctx context.Context, r store.Record) error {
	r, keep := l.change(r)
	if !keep {
		return nil
	}
	return l.Loader.Put(ctx, r)
}

// Ensure a copy that does not match its source is an error naming the
// difference, and leaves the target empty.
func TestCopyMismatch(t *testing.T) {
	dir := t.TempDir()
	src := storetest.OpenFile(t, filepath.Join(dir, "src.db"))
	storetest.Fill(t, src)
	for _, c := range []struct {
		name   string
		change func(store.Record) (store.Record, bool)
		want   []string
	}{
		{"dropped message", func(r store.Record) (store.Record, bool) {
			m, ok := r.(store.Message)
			return r, !ok || m.Room != "general" || m.ID != 7
		}, []string{
			"messages: 60 in the source, 59 in the target",
			`room "general": 40 messages in the source, 39 in the target`,
		}},
		{"last id", func(r store.Record) (store.Record, bool) {
			if rr, ok := r.(store.RoomRecord); ok && rr.Name == "capped" {
				rr.LastID = 10
				return rr, true
			}
			return r, true
		}, []string{`room "capped": last id 25 in the source, 10 in the target`}},
		{"dropped user", func(r store.Record) (store.Record, bool) {
			u, ok := r.(store.User)
			return r, !ok || u.Name != "bob"
		}, []string{"users: 4 in the source, 3 in the target"}},
		{"dropped access rule", func(r store.Record) (store.Record, bool) {
			a, ok := r.(store.AccessRule)
			return r, !ok || a.User != "*" || a.Pattern != "ops-*"
		}, []string{"access rules: 5 in the source, 4 in the target"}},
		{"dropped member", func(r store.Record) (store.Record, bool) {
			if p, ok := r.(store.PrivateRoom); ok && p.Name == "staff" {
				p.Members = p.Members[1:]
				return p, true
			}
			return r, true
		}, []string{"room members: 3 in the source, 2 in the target"}},
		{"dropped private room", func(r store.Record) (store.Record, bool) {
			p, ok := r.(store.PrivateRoom)
			return r, !ok || p.Name != "empty"
		}, []string{"private rooms: 3 in the source, 2 in the target"}},
		{"dropped read marker", func(r store.Record) (store.Record, bool) {
			m, ok := r.(store.ReadMarker)
			return r, !ok || m.User != "dave" || m.Room != "staff"
		}, []string{"read markers: 6 in the source, 5 in the target"}},
		{"dropped declared list", func(r store.Record) (store.Record, bool) {
			d, ok := r.(store.DeclaredList)
			return r, !ok || d.Kind != "auth.access"
		}, []string{"declared lists: 3 in the source, 2 in the target"}},
		{"dropped room", func(r store.Record) (store.Record, bool) {
			switch r := r.(type) {
			case store.RoomRecord:
				return r, r.Name != "Zeta"
			case store.Message:
				return r, r.Room != "Zeta"
			}
			return r, true
		}, []string{`room "Zeta": in the source only`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dst := storetest.OpenFile(t, filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-")+".db"))
			rep, err := store.Copy(context.Background(), src, tamper{dst, c.change}, store.CopyOptions{})
			if !errors.Is(err, store.ErrMismatch) {
				t.Fatalf("err %v, want a mismatch", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if len(rep.Mismatches) == 0 {
				t.Error("the report names no mismatch")
			}
			if n, err := dst.Count(context.Background()); err != nil || !n.Empty() {
				t.Errorf("target after a failed copy: %v, %v; want empty", n, err)
			}
		})
	}
}

// Ensure progress is reported every 10,000 messages (with Every 0) and
// once at the end, and that an interrupted copy leaves the target empty.
func TestCopyProgressAndCancel(t *testing.T) {
	dir := t.TempDir()
	src := storetest.OpenFile(t, filepath.Join(dir, "src.db"))
	load, err := src.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	const n = 25000
	must(load.Put(ctx, store.RoomRecord{Name: "big", Epoch: "e1", LastID: n, Count: n, CreatedAt: time.Now()}))
	for id := uint64(1); id <= n; id++ {
		must(load.Put(ctx, store.Message{Room: "big", ID: id, From: "a", Text: "x", TS: time.Now()}))
	}
	must(load.Commit(ctx))

	var got []string
	dst := storetest.OpenFile(t, filepath.Join(dir, "dst.db"))
	_, err = store.Copy(ctx, src, dst, store.CopyOptions{Progress: func(done, total int64) { got = append(got, fmt.Sprintf("%d/%d", done, total)) }})
	must(err)
	if s := strings.Join(got, " "); s != "10000/25000 20000/25000 25000/25000" {
		t.Errorf("progress %q", s)
	}

	cctx, cancel := context.WithCancel(ctx)
	dst2 := storetest.OpenFile(t, filepath.Join(dir, "dst2.db"))
	_, err = store.Copy(cctx, src, dst2, store.CopyOptions{Progress: func(done, total int64) { cancel() }})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted copy: %v", err)
	}
	if c, err := dst2.Count(ctx); err != nil || !c.Empty() {
		t.Errorf("target after an interrupted copy: %v, %v; want empty", c, err)
	}
	// And the emptied target takes a whole copy afterwards.
	if _, err := store.Copy(ctx, src, dst2, store.CopyOptions{}); err != nil {
		t.Fatal(err)
	}
}

// lossy is an Exporter that loses the records drop selects after its
// counts, as a faulty export would.
type lossy struct {
	store.Exporter
	drop func(store.Record) bool
}

func (l lossy) Export(ctx context.Context, put func(store.Record) error) error {
	return l.Exporter.Export(ctx, func(r store.Record) error {
		if l.drop(r) {
			return nil
		}
		return put(r)
	})
}

// Ensure an export that does not deliver what its snapshot counted is a
// mismatch too.
func TestCopyExportMismatch(t *testing.T) {
	dir := t.TempDir()
	src := storetest.OpenFile(t, filepath.Join(dir, "src.db"))
	storetest.Fill(t, src)
	dst := storetest.OpenFile(t, filepath.Join(dir, "dst.db"))
	drop := func(r store.Record) bool { _, ok := r.(store.Key); return ok }
	_, err := store.Copy(context.Background(), lossy{src, drop}, dst, store.CopyOptions{})
	if !errors.Is(err, store.ErrMismatch) || !strings.Contains(err.Error(), "keys: 3 in the source, 0 in the export; keys: 3 in the source, 0 in the target;") {
		t.Fatalf("lossy export: %v", err)
	}
}
