package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/chatctl/chatctl/store"
)

// cmdMessages: messages DB ROOM N appends N messages to ROOM in the bbolt
// store DB (created when missing), as a server would for its clients.
func cmdMessages(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: messages DB ROOM N")
	}
	n, err := strconv.Atoi(args[2])
	ts.Check(err)
	db, err := store.Open(ts.MkAbs(args[0]), store.Options{})
	ts.Check(err)
	defer db.Close()
	for i := range n {
		_, err := db.AppendMessage(context.Background(), args[1], "alice", "message "+strconv.Itoa(i+1), time.Now())
		ts.Check(err)
	}
}

// scriptCondition is the scripts' own conditions: [pg] holds when
// CHATCTL_TEST_POSTGRES names a PostgreSQL server; without one it is an
// error under CI=true, as for the Go PostgreSQL tests.
func scriptCondition(cond string) (bool, error) {
	if cond != "pg" {
		return false, fmt.Errorf("unknown condition %q", cond)
	}
	if os.Getenv("CHATCTL_TEST_POSTGRES") != "" {
		return true, nil
	}
	if os.Getenv("CI") == "true" {
		return false, errors.New("CHATCTL_TEST_POSTGRES is not set: CI must provide a PostgreSQL server")
	}
	return false, nil
}

// cmdPGDB: pgdb VAR creates a fresh, empty PostgreSQL database on the
// server CHATCTL_TEST_POSTGRES names (see [pg]), sets $VAR to its URL,
// and drops it when the script ends.
func cmdPGDB(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: pgdb VAR")
	}
	server := os.Getenv("CHATCTL_TEST_POSTGRES")
	if server == "" {
		ts.Fatalf("pgdb needs CHATCTL_TEST_POSTGRES: guard the script with [!pg] skip")
	}
	var b [6]byte
	rand.Read(b[:])
	name := "chatctl_script_" + hex.EncodeToString(b[:])
	ctx := context.Background()
	exec := func(sql string) {
		c, err := pgx.Connect(ctx, server)
		ts.Check(err)
		defer c.Close(ctx)
		_, err = c.Exec(ctx, sql)
		ts.Check(err)
	}
	exec("CREATE DATABASE " + name)
	ts.Defer(func() { exec("DROP DATABASE " + name + " WITH (FORCE)") })
	u, err := url.Parse(server)
	ts.Check(err)
	u.Path = "/" + name
	ts.Setenv(args[0], u.String())
}
