// Package postgres holds what every PostgreSQL-backed package shares: the
// query interface that a pool, a connection and a transaction all satisfy,
// and embedded, versioned migrations run by goose (see Migrate).
package postgres

import (
	"context"
	"errors"
	"io/fs"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Querier is implemented by *pgxpool.Pool, *pgx.Conn and pgx.Tx, so code
// that takes a Querier runs inside the caller's transaction when given one.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

var (
	_ Querier = (*pgxpool.Pool)(nil)
	_ Querier = (*pgx.Conn)(nil)
	_ Querier = (pgx.Tx)(nil)
)

// Migrate applies the pending migrations of component: the goose-format
// *.sql files of fsys (NNNN_name.sql, each with "-- +goose Up" and
// "-- +goose Down" sections; see docs/decisions.md), in version order, each
// in its own transaction, recorded in the component's own version table
// goose_<component> (VersionTable). goose's PostgreSQL session locker (an
// advisory lock per component) serialises concurrent callers, so several
// processes may call Migrate at once. Applying the same set again is a
// no-op. A database migrated by the runner this replaced (table
// schema_migrations) is adopted: its applied files count as applied.
//
// Migrate runs DDL: call it as the schema's owner (tools/cmd/migrate, the
// local stack, tests), never as a function's role.
func Migrate(ctx context.Context, pool *pgxpool.Pool, component string, fsys fs.FS) error {
	m, err := open(pool, component, fsys)
	if err != nil {
		return err
	}
	defer m.close()
	_, err = m.up(ctx)
	return err
}

func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "23505" || pe.Code == "42P07")
}
