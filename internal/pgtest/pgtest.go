// Package pgtest gives tests a fresh, empty PostgreSQL database of their
// own.
//
// The server comes from the environment variable CHATCTL_TEST_POSTGRES, a
// postgres:// URL of a role that may CREATE DATABASE, for example
//
//	postgres://postgres@127.0.0.1:5433/postgres?sslmode=disable
//
// scripts/pg-test.sh starts a throwaway cluster, exports that variable and
// runs a command (go test -race ./... by default); .ci/run does the same
// for CI. Without the variable a test that asks for PostgreSQL is skipped
// with a message that says so, except under CI (CI=true), where it fails:
// CI must never pass by skipping the PostgreSQL half of the suite.
//
// Typical use:
//
//	url := pgtest.URL(t) // a new database, dropped when t ends
//	pool, err := pgxpool.New(ctx, url)
//	...
//	t.Cleanup(pool.Close)
//
// Each call of URL creates its own database (chatctl_test_<random hex>),
// so tests may run in parallel and in several packages at once against
// one server. The database is dropped WITH (FORCE) (PostgreSQL 13 or
// later) in t.Cleanup, which also ends sessions the test left open.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvVar names the variable that holds the server URL.
const EnvVar = "CHATCTL_TEST_POSTGRES"

// timeout bounds each statement pgtest runs (connect, create, drop).
const timeout = 30 * time.Second

// howTo is the message of a test skipped for want of a server.
const howTo = EnvVar + " is not set, so this PostgreSQL test is skipped. " +
	"Run it with scripts/pg-test.sh, which starts a throwaway PostgreSQL cluster and runs " +
	"`go test -race ./...` (or the command given, e.g. scripts/pg-test.sh go test ./store/...), " +
	"or set " + EnvVar + "=postgres://USER@HOST:PORT/postgres?sslmode=disable " +
	"(a role that may CREATE DATABASE)"

// Available reports whether a PostgreSQL server is configured for tests.
func Available() bool { return os.Getenv(EnvVar) != "" }

// ServerURL returns the server URL from CHATCTL_TEST_POSTGRES. When it is
// not set, ServerURL skips the test with a message that says how to run it,
// or fails it when the environment variable CI is true.
func ServerURL(t testing.TB) string {
	t.Helper()
	if u := os.Getenv(EnvVar); u != "" {
		return u
	}
	if inCI() {
		t.Fatal("pgtest: " + EnvVar + " is not set under CI=true: .ci/run starts a PostgreSQL " +
			"cluster and exports it; run the tests through .ci/run or scripts/pg-test.sh")
	}
	t.Skip("pgtest: " + howTo)
	return ""
}

// URL creates a new, empty database on the server of ServerURL (skipping
// or failing the test as ServerURL does when there is none) and returns
// the server URL with that database in its path, other parameters kept.
// The database is dropped WITH (FORCE) when t and its subtests end.
func URL(t testing.TB) string {
	t.Helper()
	server := ServerURL(t)
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		// Never print the value: it may hold a password.
		t.Fatalf("pgtest: %s must be a postgres:// URL", EnvVar)
	}
	where := u.Redacted() // the server, for messages
	name := "chatctl_test_" + randomHex()
	ident := pgx.Identifier{name}.Sanitize()

	if err := exec(server, "CREATE DATABASE "+ident); err != nil {
		t.Fatalf("pgtest: create database %s on %s: %v", name, where, err)
	}
	t.Cleanup(func() {
		if err := exec(server, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database %s on %s: %v", name, where, err)
		}
	})
	u.Path = "/" + name
	u.RawPath = ""
	return u.String()
}

// exec runs one statement on a connection of its own: CREATE and DROP
// DATABASE cannot run inside a transaction or a pool's shared session.
func exec(server, sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// inCI reports whether CI is set to a true value ("true", "1", ...).
func inCI() bool {
	ci, err := strconv.ParseBool(os.Getenv("CI"))
	return err == nil && ci
}

// randomHex returns 16 random lower-case hex digits: a database name that
// no other test, package or run picks.
func randomHex() string {
	var b [8]byte
	rand.Read(b[:]) // never fails: since Go 1.24 it crashes the program instead
	return hex.EncodeToString(b[:])
}
