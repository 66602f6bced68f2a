package pgtest

import (
	"context"
	"fmt"
	"net/url"
	"runtime"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// connect opens a connection to url that t closes.
func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// Ensure two calls give two distinct, empty databases, each isolated from
// the other, with the server URL's parameters kept, and that both are gone
// once the (sub)test that made them ends, even with a session still open.
func TestURL(t *testing.T) {
	server := connect(t, ServerURL(t))
	var names []string
	t.Run("create", func(t *testing.T) {
		// A session still open when the databases are dropped (this
		// cleanup, registered before URL's, runs after them) must not
		// stop the drop: WITH (FORCE).
		var open *pgx.Conn
		t.Cleanup(func() {
			if open != nil {
				open.Close(context.Background())
			}
		})
		a, b := URL(t), URL(t)
		if a == b {
			t.Fatalf("two calls gave one URL: %s", a)
		}
		for _, raw := range []string{a, b} {
			u, err := url.Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			name := strings.TrimPrefix(u.Path, "/")
			if !strings.HasPrefix(name, "chatctl_test_") {
				t.Errorf("database %q lacks the chatctl_test_ prefix", name)
			}
			if s, _ := url.Parse(ServerURL(t)); u.Host != s.Host || u.User.String() != s.User.String() || u.RawQuery != s.RawQuery {
				t.Errorf("%s does not keep the server URL's host, user and parameters", u.Redacted())
			}
			conn := connect(t, raw)
			var current string
			var relations int
			if err := conn.QueryRow(context.Background(), "SELECT current_database()").Scan(&current); err != nil {
				t.Fatal(err)
			}
			if current != name {
				t.Errorf("connected to %q, want %q", current, name)
			}
			err = conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_class c
				JOIN pg_namespace n ON n.oid = c.relnamespace
				WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'`).Scan(&relations)
			if err != nil {
				t.Fatal(err)
			}
			if relations != 0 {
				t.Errorf("database %s is not empty: %d relations", name, relations)
			}
			names = append(names, name)
		}
		// Isolated: a table made in one is not in the other.
		if _, err := connect(t, a).Exec(context.Background(), "CREATE TABLE t (x int)"); err != nil {
			t.Fatal(err)
		}
		var found bool
		if err := connect(t, b).QueryRow(context.Background(), "SELECT to_regclass('t') IS NOT NULL").Scan(&found); err != nil {
			t.Fatal(err)
		}
		if found {
			t.Error("a table made in the first database is visible in the second")
		}
		var err error
		if open, err = pgx.Connect(context.Background(), a); err != nil {
			t.Fatal(err)
		}
	})
	if len(names) != 2 {
		t.Fatalf("create made %d databases", len(names))
	}
	for _, name := range names {
		var n int
		err := server.QueryRow(context.Background(), "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("database %s still exists after its test ended", name)
		}
	}
}

// fakeTB records what ServerURL and URL do to a test without a server;
// Skip and Fatal end its goroutine, as testing.T's do.
type fakeTB struct {
	testing.TB
	skipped, failed string
}

func (f *fakeTB) Helper()           {}
func (f *fakeTB) Skip(args ...any)  { f.skipped = fmt.Sprint(args...); runtime.Goexit() }
func (f *fakeTB) Fatal(args ...any) { f.failed = fmt.Sprint(args...); runtime.Goexit() }
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// Ensure that without a server a test is skipped with a message that
// says how to run it, fails instead under CI, and that a value that is
// not a URL fails without being printed (it may hold a password).
func TestWithoutServer(t *testing.T) {
	for _, tc := range []struct {
		name, env, ci   string
		skipped, failed string // a substring of the message, "" for none
	}{
		{name: "skip", skipped: "run it with scripts/pg-test.sh"},
		{name: "CI=false skips", ci: "false", skipped: "scripts/pg-test.sh go test ./store/..."},
		{name: "CI=true fails", ci: "true", failed: EnvVar + " is not set under CI=true"},
		{name: "CI=1 fails", ci: "1", failed: EnvVar + " is not set"},
		{name: "not a URL", env: "host=db password=hunter2", failed: "must be a postgres:// URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(EnvVar, tc.env)
			t.Setenv("CI", tc.ci)
			if Available() != (tc.env != "") {
				t.Errorf("Available() = %v with %s=%q", Available(), EnvVar, tc.env)
			}
			for _, fn := range []func(testing.TB) string{ServerURL, URL} {
				f := &fakeTB{TB: t}
				done := make(chan string)
				go func() {
					defer close(done)
					done <- fn(f)
				}()
				got := <-done
				if tc.env != "" && got == tc.env {
					continue // ServerURL returns a set value as it is
				}
				if got != "" {
					t.Errorf("returned %q", got)
				}
				check := func(kind, msg, want string) {
					switch {
					case want == "" && msg != "":
						t.Errorf("%s unexpectedly: %s", kind, msg)
					case want != "" && !strings.Contains(msg, want):
						t.Errorf("%s message %q, want it to contain %q", kind, msg, want)
					}
				}
				check("skipped", strings.ToLower(f.skipped), strings.ToLower(tc.skipped))
				check("failed", f.failed, tc.failed)
				if strings.Contains(f.failed+f.skipped, "hunter2") {
					t.Errorf("the message shows the password: %s", f.failed)
				}
			}
		})
	}
}
