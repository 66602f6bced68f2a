// Package pgtest gives tests a fresh PostgreSQL database (provisional
// version; the full one comes with the CI cluster).
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

// Env names the variable holding the server's URL.
const Env = "CHATCTL_TEST_POSTGRES"

// ServerURL returns the server URL, or skips (fails under CI=true).
func ServerURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(Env)
	if u == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set: CI must provide a PostgreSQL server", Env)
		}
		t.Skipf("PostgreSQL tests need %s (a server URL); run them with scripts/pg-test.sh", Env)
	}
	return u
}

// URL returns the URL of a fresh, empty database, dropped at cleanup.
func URL(t testing.TB) string {
	t.Helper()
	server := ServerURL(t)
	var b [6]byte
	rand.Read(b[:])
	name := "chatctl_test_" + hex.EncodeToString(b[:])
	ctx := context.Background()
	c, err := pgx.Connect(ctx, server)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(ctx, server)
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			t.Error(err)
		}
	})
	u, err := url.Parse(server)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}
