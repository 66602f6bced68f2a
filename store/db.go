package store

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// SchemaVersion is the layout this binary writes. Open upgrades older files
// with the migrations below and refuses newer ones.
const SchemaVersion = 2

// DefaultTimeout is how long Open waits for the file lock. It stays well
// under the 2 seconds within which a CLI command must fail (SPEC §4).
const DefaultTimeout = time.Second

var (
	bucketMeta  = []byte("meta")
	bucketUsers = []byte("users")
	bucketKeys  = []byte("keys")
	keySchema   = []byte("schema")
)

// migrations[i] upgrades a store from schema i to i+1. Version 0 is a new,
// empty file: its migration creates the first layout.
var migrations = []func(tx *bolt.Tx) error{
	0: func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketUsers, bucketKeys, bucketSessions, bucketRefresh, bucketDenied, bucketRooms} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return fmt.Errorf("create bucket %s: %w", b, err)
			}
		}
		return nil
	},
	1: func(tx *bolt.Tx) error { // access rules, private rooms, read markers (store/access.go)
		for _, b := range [][]byte{bucketAccess, bucketPrivate, bucketReads, bucketDeclared} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return fmt.Errorf("create bucket %s: %w", b, err)
			}
		}
		return nil
	},
}

// Options tune Open. The zero value is usable.
type Options struct {
	// Timeout is how long to wait for the file lock; 0 means DefaultTimeout.
	Timeout time.Duration
	// Now is the clock used for timestamps; nil means time.Now.
	Now func() time.Time
	// NoSync skips fsync on commit. Only for tests and benchmarks.
	NoSync bool
	// WriteFault, when set, is called at the end of every write
	// transaction; an error fails that write as a failed commit (a full
	// disk) would: nothing is written and LastWriteErr reports it. Only
	// for tests.
	WriteFault func() error
	// Access says whether Open may create the file and whether it needs
	// to write; the zero value is Create.
	Access Access
}

// Access is what a caller of Open needs of the file.
type Access int

const (
	// Create opens the file read-write and creates it (and its folder)
	// when it is missing: for the commands that set a store up.
	Create Access = iota
	// Write opens an existing file read-write: a missing file is
	// ErrNoStore, a read-only one ErrReadOnly.
	Write
	// Read opens an existing file for reading: a missing file is
	// ErrNoStore. A file that cannot be written (no write permission for
	// its owner, or a read-only file system) is opened read-only, with a
	// shared lock; writes to it then fail with ErrReadOnly.
	Read
)

// DB is an open store.
type DB struct {
	bolt  *bolt.DB
	path  string
	now   func() time.Time
	users userCache

	created  bool // Open created the file; set at Open, then read only
	readOnly bool // opened read-only; set at Open, then read only

	retention atomic.Pointer[Retention]

	health     writeHealth  // outcome of the latest write (atomics)
	writeFault func() error // Options.WriteFault; set at Open, then read only

	appendOnce    sync.Once
	appendMu      sync.RWMutex // guards appendClosed against sends on appends
	appendClosed  bool
	appends       chan *appendReq
	committerDone chan struct{}
	commits       atomic.Uint64 // message commits (transactions) so far

	deniedOnce sync.Once
	denied     sync.Map // jti -> expiry of revoked access tokens

	audit AuditQueue // RecordAudit's queue and writer (see auditqueue.go)
}

// Open opens or creates the store at path (see Options.Access). It
// returns ErrLocked when another process holds the file, ErrCorrupt when it
// is not a valid store, ErrNewerSchema for a file from a newer chatctl,
// ErrNoStore for a missing file that may not be created and ErrReadOnly
// for a read-only file that must be written; every error names the file.
func Open(path string, opts Options) (*DB, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	fi, statErr := os.Stat(path)
	if statErr == nil && fi.IsDir() {
		return nil, fmt.Errorf("store %s: is a folder, not a file", path)
	}
	missing := errors.Is(statErr, fs.ErrNotExist)
	readOnly := false
	switch {
	case opts.Access != Create && missing:
		return nil, fmt.Errorf("store %s: %w", absPath(path), ErrNoStore)
	case opts.Access != Create && statErr != nil:
		return nil, fmt.Errorf("store %s: %w", path, unwrapPath(statErr))
	case statErr == nil:
		if why := notWritable(path, fi); why != "" {
			if opts.Access != Read {
				return nil, fmt.Errorf("store %s: %w (%s); this command changes it", absPath(path), ErrReadOnly, why)
			}
			readOnly = true
		}
	}
	if opts.Access == Create {
		if dir := filepath.Dir(path); dir != "" {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, fmt.Errorf("store %s: create folder: %w", path, unwrapPath(err))
			}
		}
	}
	b, err := openBolt(path, opts, readOnly)
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("store %s: %w (another chatctl holds it)", path, ErrLocked)
	case errors.Is(err, ErrCorrupt):
		return nil, fmt.Errorf("store %s: %w", path, err)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum),
		errors.Is(err, berrors.ErrVersionMismatch), errors.Is(err, berrors.ErrInvalidMapping):
		return nil, fmt.Errorf("store %s: %w: %v", path, ErrCorrupt, err)
	case err != nil:
		return nil, fmt.Errorf("store %s: %w", path, unwrapPath(err))
	}
	db := &DB{bolt: b, path: path, now: opts.Now, writeFault: opts.WriteFault, created: missing, readOnly: readOnly}
	db.audit.Init(db.AppendAudit)
	if readOnly {
		err = db.checkSchema()
	} else {
		err = db.migrate()
	}
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	return db, nil
}

// notWritable says why the store file at path cannot be written, or ""
// when it can. A file without write permission for its owner counts as
// read-only even for root, who could write it anyway: the operator made it
// so on purpose.
func notWritable(path string, fi fs.FileInfo) string {
	if fi.Mode().Perm()&0o200 == 0 {
		return fmt.Sprintf("mode %04o", fi.Mode().Perm())
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		if errors.Is(err, fs.ErrPermission) || isReadOnlyFS(err) {
			return unwrapPath(err).Error()
		}
		return "" // bbolt's open will report it
	}
	f.Close()
	return ""
}

// absPath returns p made absolute, or p when that fails.
func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// openBolt opens the file with bbolt after checking that it is sound:
// bbolt meets a damaged file with panics (some in goroutines of its own,
// where they cannot be recovered) or, for a truncated file, with SIGBUS.
func openBolt(path string, opts Options, readOnly bool) (*bolt.DB, error) {
	fi, err := os.Stat(path)
	if err == nil && fi.Size() == 0 {
		// bbolt would quietly make an empty file a new store, and so
		// hide a store lost to a bad copy or a full disk. The one empty
		// file that is fine is a store another chatctl has just created
		// and is writing its first pages into (under its lock): give it
		// the lock timeout to finish.
		if fi, err = waitWritten(path, opts.Timeout); err == nil && fi.Size() == 0 {
			return nil, fmt.Errorf("%w: the file is empty (0 bytes); remove it to start a new store", ErrCorrupt)
		}
	}
	if err == nil && fi.Size() > 0 {
		if err := checkFile(path, fi.Size(), opts.Timeout); err != nil {
			return nil, err
		}
	}
	// NoFreelistSync: the free-page list is rebuilt at open by walking
	// the pages rather than written on every commit, which makes each
	// message commit cheaper (the trade etcd makes too).
	return bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.Timeout, NoSync: opts.NoSync, NoFreelistSync: true, FreelistType: bolt.FreelistMapType, ReadOnly: readOnly})
}

// waitWritten stats path until it is no longer empty or timeout passed.
func waitWritten(path string, timeout time.Duration) (os.FileInfo, error) {
	deadline := time.Now().Add(timeout)
	for {
		fi, err := os.Stat(path)
		if err != nil || fi.Size() > 0 || time.Now().After(deadline) {
			return fi, err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkFile opens an existing file read-only (a shared lock, no free-list
// scan) and walks every page of every bucket in this goroutine, where a
// panic or a memory fault can be turned into ErrCorrupt.
func checkFile(path string, size int64, timeout time.Duration) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	b, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: timeout})
	if err != nil {
		return err
	}
	defer b.Close()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrCorrupt, r)
		}
	}()
	return b.View(func(tx *bolt.Tx) error {
		// The size seen before the lock may be stale: another chatctl
		// could have been creating or growing the file meanwhile.
		if fi, err := os.Stat(path); err == nil {
			size = fi.Size()
		}
		if need := tx.Size(); size < need {
			// Pages past the end would be read as SIGBUS later.
			return fmt.Errorf("%w: the file is %d bytes, its pages need %d (truncated?)", ErrCorrupt, size, need)
		}
		return tx.ForEach(func(_ []byte, bk *bolt.Bucket) error { return walk(bk) })
	})
}

// walk visits every key of bk and of its nested buckets, which reads every
// branch and leaf page.
func walk(bk *bolt.Bucket) error {
	c := bk.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if v == nil {
			if nested := bk.Bucket(k); nested != nil {
				if err := walk(nested); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// unwrapPath drops the *PathError's own copy of the path, which the
// callers' messages already name.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// migrate brings the file to SchemaVersion in one transaction. A file at
// SchemaVersion already is only read: opening a store writes nothing.
func (db *DB) migrate() error {
	current := false
	db.bolt.View(func(tx *bolt.Tx) error {
		if meta := tx.Bucket(bucketMeta); meta != nil {
			current = string(meta.Get(keySchema)) == strconv.Itoa(SchemaVersion)
		}
		return nil
	})
	if current {
		return nil
	}
	return db.update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		version := 0
		if v := meta.Get(keySchema); v != nil {
			if version, err = strconv.Atoi(string(v)); err != nil {
				return fmt.Errorf("%w: bad schema version %q", ErrCorrupt, v)
			}
		}
		if version > SchemaVersion {
			return fmt.Errorf("%w (schema %d, this binary knows %d)", ErrNewerSchema, version, SchemaVersion)
		}
		for ; version < SchemaVersion; version++ {
			if err := migrations[version](tx); err != nil {
				return fmt.Errorf("migrate schema %d to %d: %w", version, version+1, err)
			}
		}
		return meta.Put(keySchema, []byte(strconv.Itoa(SchemaVersion)))
	})
}

// checkSchema is migrate for a read-only store: it can upgrade nothing,
// so a file of another schema is refused.
func (db *DB) checkSchema() error {
	return db.bolt.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			return fmt.Errorf("%w: no schema version (not a chatctl store)", ErrCorrupt)
		}
		version, err := strconv.Atoi(string(meta.Get(keySchema)))
		switch {
		case err != nil:
			return fmt.Errorf("%w: bad schema version %q", ErrCorrupt, meta.Get(keySchema))
		case version > SchemaVersion:
			return fmt.Errorf("%w (schema %d, this binary knows %d)", ErrNewerSchema, version, SchemaVersion)
		case version < SchemaVersion:
			return fmt.Errorf("%w: schema %d needs an upgrade to %d, which a read-only file cannot take; run any chatctl command with write access once", ErrReadOnly, version, SchemaVersion)
		}
		return nil
	})
}

// Created reports whether Open created the file.
func (db *DB) Created() bool { return db.created }

// ReadOnly reports whether the store was opened read-only.
func (db *DB) ReadOnly() bool { return db.readOnly }

// Path returns the file the store was opened from.
func (db *DB) Path() string { return db.path }

// Close commits queued messages and releases the file lock.
func (db *DB) Close() error {
	db.appendOnce.Do(func() {}) // no committer may start from now on
	db.stopCommitter()
	db.audit.Stop()
	return db.bolt.Close()
}

// Bolt returns the underlying bbolt handle, for packages that keep their
// own buckets in the same file.
func (db *DB) Bolt() *bolt.DB { return db.bolt }

// Check runs bbolt's consistency check and returns the first problem. It
// must not run while something writes (bbolt's check reads the free-page
// list writers change), so it first commits the audit entries still
// queued.
func (db *DB) Check() error {
	db.FlushAudit()
	return db.bolt.View(func(tx *bolt.Tx) error {
		var first error
		for err := range tx.Check() { // drain, so Check's goroutine ends
			if first == nil {
				first = err
			}
		}
		return first
	})
}

// Schema returns the schema version recorded in the file.
func (db *DB) Schema() (int, error) {
	var v int
	err := db.bolt.View(func(tx *bolt.Tx) error {
		var err error
		v, err = strconv.Atoi(string(tx.Bucket(bucketMeta).Get(keySchema)))
		return err
	})
	return v, err
}

// maxVersion bounds token versions to 53 bits: the largest integers a
// JSON number carries exactly in every client (RFC 7493 §2.2), so `token
// inspect` and JavaScript show the claim as it is.
const maxVersion = 1 << 53

// newVersion returns a random token version other than old (the value it
// replaces; 0 for none). Versions used to come from a store-wide
// sequence, so one user's token told the versions of everyone created
// after; random ones tell nothing. Stores written by older binaries keep
// their small values, which verify as before until the next change.
func newVersion(old uint64) uint64 {
	for {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			panic("crypto/rand: " + err.Error()) // never fails on supported systems
		}
		v := binary.BigEndian.Uint64(b[:]) % maxVersion
		if v != 0 && v != old {
			return v
		}
	}
}

func put(b *bolt.Bucket, key string, v any) error { return putJSON(b, []byte(key), v) }
