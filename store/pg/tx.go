package pg

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// refused marks an error a transaction's body returns on purpose (a name
// taken, a record missing): inTx rolls back and returns it unwrapped, and
// it says nothing about the database's health.
type refused struct{ err error }

func (r refused) Error() string { return r.err.Error() }
func (r refused) Unwrap() error { return r.err }

// refuse wraps err as a refusal (see refused).
func refuse(err error) error { return refused{err} }

// txRetries bounds how often inTx runs a body again after a deadlock or a
// serialisation failure (rare: every path takes its locks in one order).
const txRetries = 3

// inTx runs fn in a read-committed transaction bounded by opTimeout and
// commits it. A refusal from fn comes back as is; a driver error goes
// through db.fail (op names the operation) and is recorded for
// LastWriteErr, as is a successful commit.
func (db *DB) inTx(op string, fn func(ctx context.Context, tx pgx.Tx) error) error {
	var err error
	for try := 0; ; try++ {
		err = db.tryTx(fn)
		var r refused
		if errors.As(err, &r) {
			return r.err
		}
		if try+1 < txRetries && retryable(err) {
			continue
		}
		break
	}
	db.wrote(err)
	return db.fail(op, err)
}

func (db *DB) tryTx(fn func(ctx context.Context, tx pgx.Tx) error) error {
	ctx, cancel := db.ctx()
	defer cancel()
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.Background())
	if err := fn(ctx, tx); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// retryable reports a deadlock or a serialisation failure: the
// transaction was rolled back and may simply run again.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001")
}

// query runs a read bounded by opTimeout; driver errors go through
// db.fail.
func (db *DB) query(op string, fn func(ctx context.Context) error) error {
	ctx, cancel := db.ctx()
	defer cancel()
	err := fn(ctx)
	var r refused
	if errors.As(err, &r) {
		return r.err
	}
	return db.fail(op, err)
}

// stamp is t as PostgreSQL keeps it: UTC, whole microseconds. Values are
// stamped before they are stored, so what a write returns equals what a
// later read gives.
func stamp(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// utc is a time read from the database, in UTC (pgx gives local time).
func utc(t time.Time) time.Time { return t.UTC() }

// ceil is t rounded up to whole microseconds. pgx sends times truncated
// to microseconds, which keeps `col > t` and `col <= t` exact for stamped
// columns; `col < t` and `col >= t` need t rounded up instead.
func ceil(t time.Time) time.Time {
	if c := t.Truncate(time.Microsecond); c.Before(t) {
		return c.Add(time.Microsecond)
	}
	return t
}
