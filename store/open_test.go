package store

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Ensure an existing zero-length file is an error naming the file, not a
// new empty store, and that the file is left untouched.
func TestOpenEmptyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(path, Options{Timeout: 100 * time.Millisecond})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "empty (0 bytes)") {
		t.Fatalf("Open(empty) = %v, want ErrCorrupt naming %s and saying it is empty", err, path)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() != 0 {
		t.Fatalf("the empty file was changed: %v %v", fi, err)
	}
}

// Ensure two processes creating the same new store at once both succeed:
// the one that loses the race finds an empty file being written under
// the other's lock and waits for it, rather than calling it empty.
func TestOpenConcurrentCreate(t *testing.T) {
	for range 5 {
		path := filepath.Join(t.TempDir(), "c.db")
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				db, err := Open(path, Options{Timeout: 5 * time.Second})
				if err == nil {
					err = db.Close()
				}
				errs[i] = err
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatalf("concurrent create: %v", err)
			}
		}
	}
}

// Ensure a new store is created 0600 whatever the umask says, in a new
// folder of 0700.
func TestOpenCreatesPrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new", "c.db")
	old := setUmask(0)
	db, err := Open(path, Options{})
	setUmask(old)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for p, want := range map[string]os.FileMode{path: 0o600, filepath.Dir(path): 0o700} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %04o, want %04o", p, got, want)
		}
	}
}
