package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/chatctl/chatctl/configs"
	"github.com/chatctl/chatctl/store"
)

// ErrFileExists is returned by BackupFile and Restore when the file they
// would write exists and overwriting it was not asked for.
var ErrFileExists = errors.New("file exists")

// ErrServerRunning is returned by Restore while a chatctl server holds the
// store.
var ErrServerRunning = errors.New("a chatctl server is running on this store")

// BackupResult describes a backup written by BackupFile, or a store
// written by Restore.
type BackupResult struct {
	store.FileSummary
	// Store is the store the copy was taken from (BackupFile) or written
	// to (Restore), absolute.
	Store string `json:"store"`
	// From is the backup Restore read ("-" for stdin).
	From string `json:"from,omitempty"`
	// Replaced is true when an existing file was overwritten (--force).
	Replaced bool `json:"replaced"`
	// Live is true when a running server made the copy.
	Live bool `json:"live"`
}

// BackupFile writes a consistent copy of adm's store to path: into a
// temporary file (mode 0600) in path's folder, fsynced, checked with
// store.VerifyFile, then renamed over path. An existing path is
// ErrFileExists unless force; the store itself is never overwritten.
// storePath is the store's file, to refuse writing over it.
func BackupFile(ctx context.Context, adm Admin, path, storePath string, force bool) (BackupResult, error) {
	res := BackupResult{Store: absPath(storePath)}
	_, res.Live = adm.(*Remote)
	dst := absPath(path)
	replaced, err := checkTarget(dst, force)
	if err != nil {
		return res, err
	}
	if same(dst, storePath) {
		return res, fmt.Errorf("%s is the store itself; write the backup to another file", dst)
	}
	err = writeAtomic(dst, func(f *os.File) error {
		_, err := adm.Backup(ctx, ctxWriter{ctx, f})
		if err != nil && ctx.Err() != nil {
			return fmt.Errorf("backup interrupted: %w", ctx.Err())
		}
		return err
	})
	if err != nil {
		return res, err
	}
	res.Replaced = replaced
	res.FileSummary, err = store.VerifyFile(dst, store.DefaultTimeout)
	return res, err
}

// Restore replaces the store of cfg with the backup at src ("-" reads it
// from stdin): only while no server holds the store (ErrServerRunning,
// store.ErrLocked), only after the backup passed store.VerifyFile, and
// over an existing store only with force (else ErrFileExists). It writes
// a temporary file in the store's folder (mode 0600), fsyncs it and
// renames it over the store, so a failure at any point leaves the old
// store as it was.
func Restore(ctx context.Context, cfg *configs.Config, src string, stdin io.Reader, force bool) (BackupResult, error) {
	if cfg.Store != "" {
		return BackupResult{}, fmt.Errorf("restore writes the bbolt file at db, but the store is PostgreSQL (%s); load a bbolt backup into it with `chatctl store copy --from FILE --to URL`, or use pg_restore", configs.RedactURL(cfg.Store))
	}
	dst := absPath(cfg.DB)
	res := BackupResult{Store: dst, From: src}
	if src != "-" {
		res.From = absPath(src)
		if same(res.From, dst) {
			return res, fmt.Errorf("%s is the store itself; restore from a backup", res.From)
		}
		if _, err := store.VerifyFile(src, store.DefaultTimeout); err != nil {
			return res, fmt.Errorf("backup %s: %w", res.From, err)
		}
	}
	if err := serverHolds(cfg); err != nil {
		return res, err
	}
	replaced, err := checkTarget(dst, force)
	if errors.Is(err, ErrFileExists) {
		return res, fmt.Errorf("store %s exists (%w); pass --force to replace it, after keeping a copy with `chatctl backup FILE`", dst, ErrFileExists)
	}
	if err != nil {
		return res, err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return res, fmt.Errorf("store %s: create folder: %w", dst, err)
	}
	err = writeAtomic(dst, func(f *os.File) error {
		in := stdin
		if src != "-" {
			sf, err := os.Open(src)
			if err != nil {
				return err
			}
			defer sf.Close()
			in = sf
		}
		if _, err := io.Copy(ctxWriter{ctx, f}, in); err != nil {
			return fmt.Errorf("copy %s: %w", res.From, err)
		}
		// The copy is checked before it takes the store's place.
		if err := f.Sync(); err != nil {
			return err
		}
		if _, err := store.VerifyFile(f.Name(), store.DefaultTimeout); err != nil {
			return fmt.Errorf("backup %s: %w", res.From, err)
		}
		return ctx.Err()
	}, func() error {
		// Checked again just before the rename: a server started
		// meanwhile would be left on the replaced file.
		return serverHolds(cfg)
	})
	if err != nil {
		return res, err
	}
	res.Replaced = replaced
	res.FileSummary, err = store.VerifyFile(dst, store.DefaultTimeout)
	return res, err
}

// ctxWriter stops a copy once ctx is done (Ctrl-C): the local copy runs
// in a bbolt read transaction that knows no context.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(b []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(b)
}

// serverHolds returns ErrServerRunning when a chatctl server answers on
// the store's admin socket, and store.ErrLocked when another process
// holds the store file.
func serverHolds(cfg *configs.Config) error {
	sock := cfg.SocketPath()
	if _, err := os.Lstat(sock); err == nil {
		if r, err := Dial(sock, 500*time.Millisecond); err == nil {
			r.Close()
			return fmt.Errorf("%w (%s); stop it, then restore", ErrServerRunning, absPath(cfg.DB))
		}
	}
	if err := store.Probe(cfg.DB, store.DefaultTimeout); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("store %s: %w; stop it, then restore", absPath(cfg.DB), err)
	}
	return nil
}

// checkTarget says whether path exists (and may be replaced): a missing
// path is fine, an existing file needs force, a folder never does.
func checkTarget(path string, force bool) (exists bool, err error) {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, err
	case fi.IsDir():
		return false, fmt.Errorf("%s is a folder, not a file", path)
	case !force:
		return true, fmt.Errorf("%s: %w; pass --force to replace it", path, ErrFileExists)
	}
	return true, nil
}

// same reports whether a and b name the same existing file.
func same(a, b string) bool {
	fa, err1 := os.Stat(a)
	fb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(fa, fb)
}

// writeAtomic writes path through a temporary file in its folder: mode
// 0600, filled by fill, fsynced and closed, then (after every check in
// before passed) renamed over path, and the folder fsynced. On any error
// the temporary file is removed and path is left alone.
func writeAtomic(path string, fill func(*os.File) error, before ...func() error) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: folder %s does not exist", path, dir)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", path, unwrapPathErr(err))
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil && runtime.GOOS != "windows" {
		return err
	}
	if err := fill(f); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("%s: fsync: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for _, check := range before {
		if err := check(); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("%s: %w", path, unwrapPathErr(err))
	}
	return syncDir(dir)
}

// syncDir makes a rename in dir durable. Windows cannot open a folder for
// that; its renames are made durable by the file system.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("%s: fsync: %w", dir, err)
	}
	return nil
}

// unwrapPathErr drops an *os.PathError's own copy of the path, which the
// callers' messages name already.
func unwrapPathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}
