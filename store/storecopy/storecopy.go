// Package storecopy is `chatctl store copy` (SPEC §7): it opens a source
// and a target store, each a bbolt file or a PostgreSQL database, and
// copies everything from one to the other with store.Copy.
package storecopy

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/chatctl/chatctl/configs"
	"github.com/chatctl/chatctl/store"
	"github.com/chatctl/chatctl/store/pg"
)

// Report is what Run did, for people and for -o json.
type Report struct {
	From string `json:"from"`
	To   string `json:"to"`
	store.CopyReport
	OK bool `json:"ok"`
}

// side is a store named on the command line.
type side struct {
	name string // for messages: an absolute path, or the URL without its password
	url  string // the PostgreSQL URL, or "" for a file
	path string // the file, or "" for PostgreSQL
}

// parse tells a bbolt path from a PostgreSQL URL.
func parse(flag, s string) (side, error) {
	switch {
	case strings.TrimSpace(s) == "":
		return side{}, fmt.Errorf("%s must not be empty: give a bbolt file or a postgres:// URL", flag)
	case configs.IsPostgres(s):
		name := configs.RedactURL(s)
		u, err := url.Parse(s)
		if err != nil {
			return side{}, fmt.Errorf("%s %s: not a valid URL (check the escaping of special characters in the password)", flag, name)
		}
		if u.Host == "" && u.Query().Get("host") == "" {
			return side{}, fmt.Errorf("%s %s: the URL names no host", flag, name)
		}
		return side{name: name, url: s}, nil
	case strings.Contains(s, "://"):
		return side{}, fmt.Errorf("%s %s: neither a bbolt file nor a postgres:// URL", flag, configs.RedactURL(s))
	}
	abs, err := filepath.Abs(s)
	if err != nil {
		abs = s
	}
	return side{name: abs, path: s}, nil
}

// Run copies the store from into the store to, which must be empty (a
// file is created when missing), and checks the copy. The report is
// returned also when the check fails (with an error wrapping
// store.ErrMismatch); the target is then left empty, and a file that Run
// created is removed.
func Run(ctx context.Context, from, to string, opts store.CopyOptions) (Report, error) {
	src, err := parse("--from", from)
	if err != nil {
		return Report{}, err
	}
	dst, err := parse("--to", to)
	if err != nil {
		return Report{}, err
	}
	rep := Report{From: src.name, To: dst.name}
	if src.url != "" && src.url == dst.url || src.path != "" && dst.path != "" && sameFile(src.path, dst.path) {
		return rep, fmt.Errorf("--from and --to are the same store (%s)", src.name)
	}

	in, closeIn, err := openSource(ctx, src)
	if err != nil {
		return rep, err
	}
	defer closeIn()
	out, closeOut, err := openTarget(ctx, dst)
	if err != nil {
		return rep, err
	}
	rep.CopyReport, err = store.Copy(ctx, in, out, opts)
	if cerr := closeOut(err == nil); err == nil {
		err = cerr
	}
	rep.OK = err == nil
	return rep, err
}

// sameFile reports whether a and b are one existing file.
func sameFile(a, b string) bool {
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	return err == nil && os.SameFile(fa, fb)
}

// exportStore is a store that can be copied from and closed.
type exportStore interface {
	store.Exporter
	Close() error
}

// openSource opens the store to copy from, for reading.
func openSource(ctx context.Context, s side) (store.Exporter, func(), error) {
	var db exportStore
	var err error
	if s.url != "" {
		db, err = pg.Open(ctx, s.url, pg.Options{Access: store.Read})
	} else {
		db, err = store.Open(s.path, store.Options{Access: store.Read})
		if errors.Is(err, store.ErrLocked) {
			err = fmt.Errorf("store %s: %w: stop chatctl serve first (a copy needs the file to itself)", s.name, store.ErrLocked)
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("--from: %w", err)
	}
	return db, func() { db.Close() }, nil
}

// openTarget opens (or creates) the store to copy into. Its close
// function removes a file that it created when the copy did not succeed.
func openTarget(ctx context.Context, s side) (store.Importer, func(ok bool) error, error) {
	if s.url != "" {
		db, err := pg.Open(ctx, s.url, pg.Options{Access: store.Create})
		if err != nil {
			return nil, nil, fmt.Errorf("--to: %w", err)
		}
		return db, func(bool) error { return db.Close() }, nil
	}
	db, err := store.Open(s.path, store.Options{Access: store.Create})
	if errors.Is(err, store.ErrLocked) {
		err = fmt.Errorf("store %s: %w: stop chatctl serve first", s.name, store.ErrLocked)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("--to: %w", err)
	}
	return db, func(ok bool) error {
		err := db.Close()
		if !ok && db.Created() {
			return errors.Join(err, os.Remove(s.path))
		}
		if err != nil {
			return fmt.Errorf("store %s: %w", s.name, err)
		}
		return nil
	}, nil
}
