// Package postgres holds what every PostgreSQL-backed package shares: the
// query interface that a pool, a connection and a transaction all satisfy,
// and embedded, versioned migrations that are safe to apply again and from
// several processes at once.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"path"
	"sort"
	"strings"

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

// Migrate applies the *.sql files of fsys (sorted by name, e.g.
// 0001_init.sql) that component has not applied yet, each in its own
// transaction, recording them in schema_migrations. A session-level
// advisory lock per component serialises concurrent callers, so every
// process may call Migrate at start. Applying the same set again is a
// no-op; a file whose name was applied is never run twice.
func Migrate(ctx context.Context, pool *pgxpool.Pool, component string, fsys fs.FS) error {
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrate %s: acquire: %w", component, err)
	}
	defer conn.Release()
	lock := lockKey(component)
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", lock); err != nil {
		return fmt.Errorf("migrate %s: lock: %w", component, err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", lock) //nolint:errcheck
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		component  text        NOT NULL,
		version    text        NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now(),
		PRIMARY KEY (component, version))`); err != nil {
		// Two components creating the table at once race on the catalog.
		if !isUniqueViolation(err) {
			return fmt.Errorf("migrate %s: create schema_migrations: %w", component, err)
		}
	}
	for _, name := range names {
		version := strings.TrimSuffix(path.Base(name), ".sql")
		sql, err := fs.ReadFile(fsys, name)
		if err != nil {
			return err
		}
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			tag, err := tx.Exec(ctx, `INSERT INTO schema_migrations (component, version) VALUES ($1, $2) ON CONFLICT DO NOTHING`, component, version)
			if err != nil || tag.RowsAffected() == 0 {
				return err
			}
			_, err = tx.Exec(ctx, string(sql))
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate %s %s: %w", component, version, err)
		}
	}
	return nil
}

func lockKey(component string) int64 {
	h := fnv.New64a()
	h.Write([]byte("migrate:" + component))
	return int64(h.Sum64())
}

func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "23505" || pe.Code == "42P07")
}
