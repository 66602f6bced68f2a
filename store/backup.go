package store

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// WriteTo writes a consistent copy of the whole store to w: bbolt's
// Tx.WriteTo inside one read transaction, so writers carry on meanwhile
// and the copy holds exactly what was committed when it began. size is
// called first with the copy's length in bytes (nil to skip), so that a
// stream can announce it. It returns the bytes written.
//
// The read transaction lasts as long as w takes: a writer that needs to
// grow the file waits for it (bbolt remaps only without readers), so w
// must not stall.
func (db *DB) WriteTo(w io.Writer, size func(int64)) (int64, error) {
	var n int64
	err := db.bolt.View(func(tx *bolt.Tx) error {
		if size != nil {
			size(tx.Size())
		}
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	return n, err
}

// FileSummary describes a store file checked by VerifyFile.
type FileSummary struct {
	Path     string `json:"path"`
	Bytes    int64  `json:"bytes"`
	Schema   int    `json:"schema"`
	Users    int    `json:"users"`
	Keys     int    `json:"keys"`
	Rooms    int    `json:"rooms"`
	Messages int    `json:"messages"`
}

// requiredBuckets are the buckets every store of schema 1 or later has.
var requiredBuckets = [][]byte{bucketMeta, bucketUsers, bucketKeys, bucketSessions, bucketRefresh, bucketDenied, bucketRooms}

// VerifyFile checks that path is a sound chatctl store without changing
// it: it opens the file read-only, reads every page (a damaged page is an
// error, never a crash), runs bbolt's consistency check, and checks the
// schema version and chatctl's buckets. Errors wrap ErrCorrupt,
// ErrNewerSchema or ErrLocked (when a process holds the file for
// writing).
func VerifyFile(path string, timeout time.Duration) (FileSummary, error) {
	sum := FileSummary{Path: absPath(path)}
	fi, err := os.Stat(path)
	if err != nil {
		return sum, unwrapPath(err)
	}
	if fi.IsDir() {
		return sum, errors.New("is a folder, not a file")
	}
	if fi.Size() == 0 {
		return sum, fmt.Errorf("%w: the file is empty (0 bytes)", ErrCorrupt)
	}
	sum.Bytes = fi.Size()
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if err := checkFile(path, fi.Size(), timeout); err != nil {
		return sum, boltErr(err)
	}
	b, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: timeout})
	if err != nil {
		return sum, boltErr(err)
	}
	defer b.Close()
	err = b.View(func(tx *bolt.Tx) error {
		var first error
		for err := range tx.Check() { // drain, so Check's goroutine ends
			if first == nil {
				first = err
			}
		}
		if first != nil {
			return fmt.Errorf("%w: consistency check: %v", ErrCorrupt, first)
		}
		for _, name := range requiredBuckets {
			if tx.Bucket(name) == nil {
				return fmt.Errorf("%w: no %q bucket (not a chatctl store)", ErrCorrupt, name)
			}
		}
		v := tx.Bucket(bucketMeta).Get(keySchema)
		schema, err := strconv.Atoi(string(v))
		if err != nil || schema < 1 {
			return fmt.Errorf("%w: bad schema version %q", ErrCorrupt, v)
		}
		if schema > SchemaVersion {
			return fmt.Errorf("%w (schema %d, this binary knows %d)", ErrNewerSchema, schema, SchemaVersion)
		}
		sum.Schema = schema
		sum.Users = tx.Bucket(bucketUsers).Stats().KeyN
		sum.Keys = tx.Bucket(bucketKeys).Stats().KeyN
		return tx.Bucket(bucketRooms).ForEachBucket(func(name []byte) error {
			sum.Rooms++
			sum.Messages += readCount(tx.Bucket(bucketRooms).Bucket(name))
			return nil
		})
	})
	return sum, err
}

// boltErr maps bbolt's open errors to the store's.
func boltErr(err error) error {
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return fmt.Errorf("%w (a process holds it for writing)", ErrLocked)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum),
		errors.Is(err, berrors.ErrVersionMismatch), errors.Is(err, berrors.ErrInvalidMapping):
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return unwrapPath(err)
}

// Probe reports whether a process holds the store file at path for
// writing (ErrLocked, after timeout), without reading more of it than
// bbolt's lock needs: a damaged file is no error here. A missing file is
// fs.ErrNotExist.
func Probe(path string, timeout time.Duration) (err error) {
	if _, err := os.Stat(path); err != nil {
		return err
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if recover() != nil {
			err = nil // damaged, but nobody holds it
		}
	}()
	b, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: timeout})
	if errors.Is(err, berrors.ErrTimeout) {
		return fmt.Errorf("%w (another process holds it)", ErrLocked)
	}
	if err == nil {
		b.Close()
	}
	return nil
}
