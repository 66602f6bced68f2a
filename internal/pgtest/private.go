package pgtest

import (
	"bytes"
	"os"
	osexec "os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// Private is a PostgreSQL cluster of one test's own, started by
// scripts/pg-cluster.sh, so that the test may crash and restart it without
// touching the shared server of CHATCTL_TEST_POSTGRES.
type Private struct {
	t   testing.TB
	dir string // the cluster's folder (data, logs, socket)
	URL string // postgres://postgres@127.0.0.1:PORT/postgres?sslmode=disable
}

// NewPrivate starts a private cluster, stopped and removed when t ends. It
// needs what the shared server needs (Debian's postgresql package, as
// .ci/run installs it), so it skips or fails as ServerURL does when
// CHATCTL_TEST_POSTGRES is not set.
func NewPrivate(t testing.TB) *Private {
	t.Helper()
	ServerURL(t)
	// A short folder: the server's Unix socket path is at most 107 bytes.
	dir, err := os.MkdirTemp("", "pgp")
	if err != nil {
		t.Fatal(err)
	}
	// The cluster's owner (postgres, when the tests run as root) must
	// reach it.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := &Private{t: t, dir: dir}
	t.Cleanup(func() {
		if _, err := p.script("stop"); err != nil {
			t.Errorf("pgtest: stop the private cluster: %v", err)
		}
		os.RemoveAll(dir)
	})
	out, err := p.script("start")
	if err != nil {
		t.Fatalf("pgtest: start a private cluster: %v", err)
	}
	p.URL = strings.TrimSpace(out)
	return p
}

// Crash stops the cluster the way a crash does: no checkpoint, every
// connection cut; the next Start recovers from the WAL.
func (p *Private) Crash() {
	p.t.Helper()
	if _, err := p.script("crash"); err != nil {
		p.t.Fatalf("pgtest: crash the private cluster: %v", err)
	}
}

// Start starts the stopped cluster again, on the same port.
func (p *Private) Start() {
	p.t.Helper()
	if _, err := p.script("start"); err != nil {
		p.t.Fatalf("pgtest: start the private cluster again: %v", err)
	}
}

// script runs scripts/pg-cluster.sh CMD on the cluster's folder and
// returns its standard output; an error carries its standard error.
func (p *Private) script(cmd string) (string, error) {
	var stdout, stderr bytes.Buffer
	c := osexec.Command("bash", scriptPath(), cmd, p.dir)
	c.Stdout, c.Stderr = &stdout, &stderr
	if err := c.Run(); err != nil {
		return "", &scriptError{err: err, stderr: strings.TrimSpace(stderr.String())}
	}
	return stdout.String(), nil
}

type scriptError struct {
	err    error
	stderr string
}

func (e *scriptError) Error() string { return e.err.Error() + ": " + e.stderr }

// scriptPath is scripts/pg-cluster.sh in the repository this file is in.
func scriptPath() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "scripts", "pg-cluster.sh")
}
