package configs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// ErrLoosePermissions is returned by CheckPermissions for a store, store
// folder or secret file that others could read or change.
var ErrLoosePermissions = errors.New("unsafe permissions")

// CheckPermissions refuses files that would let other local users read
// the store (and so mint admin tokens with its key) or the signing
// secret, as ssh refuses a private key and PostgreSQL a data directory
// that others can read. It checks, on Unix:
//   - the store file at db, if it exists: no access at all for group or
//     others (fix: chmod 600);
//   - the store's folder, if it exists: not writable by group or others
//     (a readable 0755 folder is fine), since whoever can write there can
//     replace the store or plant its admin socket (fix: chmod go-w);
//   - token.secret_file, if set: no access for group or others;
//   - tls.key, if set: likewise (the certificate may be public).
//
// A sticky folder that everyone may write to (/tmp, mode 1777) is
// accepted: the sticky bit stops other users from removing or renaming
// our files, so what is left is squatting, a file planted under the
// store's name before we create it. That is refused by requiring, in
// such a folder only, that the store file be owned by us. (The admin
// socket beside it is checked the same way by the CLI before use.)
//
// Every problem is one line naming the absolute path, the mode found and
// the command that fixes it. Elsewhere (Windows) mode bits mean little and
// nothing is checked.
func (c *Config) CheckPermissions() error {
	var errs []error
	if c.DB != "" && c.Store == "" {
		errs = append(errs, checkStore(c.DB))
	}
	if c.Token.SecretFile != "" {
		errs = append(errs, checkPrivateFile("token.secret_file", c.Token.SecretFile))
	}
	if c.TLS.Key != "" {
		errs = append(errs, checkPrivateFile("tls.key", c.TLS.Key))
	}
	return errors.Join(errs...)
}

// checkStore checks the store file and its folder.
func checkStore(db string) error {
	dir := filepath.Dir(db)
	st, err := statOwner(dir)
	if err != nil {
		// Missing: Open creates it 0700. Unusable (a file, no access):
		// Open says so in its own words.
		return nil
	}
	if st.mode&0o022 != 0 && st.mode&fs.ModeSticky == 0 {
		return fmt.Errorf("%w: store folder %s is writable by group or others (mode %04o); fix: chmod go-w %s",
			ErrLoosePermissions, abs(dir), st.mode.Perm(), abs(dir))
	}
	if err := checkPrivateFile("store", db); err != nil {
		return err
	}
	if st.mode&0o002 != 0 { // sticky and world-writable: the file must be ours
		f, err := statOwner(db)
		if err == nil && f.owned && f.uid != euid() {
			return fmt.Errorf("%w: store %s is owned by uid %d, not by you (uid %d), in the shared folder %s; move the store into a folder of your own",
				ErrLoosePermissions, abs(db), f.uid, euid(), abs(dir))
		}
	}
	return nil
}

// checkPrivateFile refuses a file that group or others may access. A
// missing or unreadable file is not this check's business.
func checkPrivateFile(what, path string) error {
	st, err := statOwner(path)
	if err != nil || st.mode.IsDir() {
		// Missing or unusable: whoever reads it says why.
		return nil
	}
	if checkModes && st.mode.Perm()&0o077 != 0 {
		return fmt.Errorf("%w: %s %s is readable or writable by group or others (mode %04o); fix: chmod 600 %s",
			ErrLoosePermissions, what, abs(path), st.mode.Perm(), abs(path))
	}
	return nil
}

// fileStat is what the checks need of a file: its mode (with the sticky
// bit) and, where the system has them, its owner.
type fileStat struct {
	mode  fs.FileMode
	uid   uint32
	owned bool // uid is known
}

// statOwner stats path, following symlinks (a store may be linked).
func statOwner(path string) (fileStat, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStat{}, err
	}
	st := fileStat{mode: fi.Mode()}
	st.uid, st.owned = owner(fi)
	if !checkModes {
		st.mode &^= 0o077 | fs.ModeSticky
	}
	return st, nil
}

func abs(path string) string {
	if a, err := filepath.Abs(path); err == nil {
		return a
	}
	return path
}
