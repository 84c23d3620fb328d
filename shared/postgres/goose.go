package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"regexp"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"
	"github.com/pressly/goose/v3/lock"
)

// ErrNotMigrated is returned by CheckMigrated when the database lacks a
// migration the code expects: the schema is behind the code (run
// "migrate up"), which a deploy or an operator fixes, so callers treat it
// as transient.
var ErrNotMigrated = errors.New("schema not migrated: run migrate up")

// VersionTable is the goose version table of component.
func VersionTable(component string) string { return "goose_" + component }

// lockTimeoutSeconds bounds the wait for another migrator's lock: polled
// every second (goose's minimum period), for up to five minutes.
const lockTimeoutSeconds = 300

// Migrator runs the goose operations of one component: Up, Down, Status
// (tools/cmd/migrate). Close it after use.
type Migrator struct {
	Component string
	db        *sql.DB
	provider  *goose.Provider
	store     database.Store
	pool      *pgxpool.Pool
}

// NewMigrator prepares the migrations of component (the goose *.sql files
// of fsys) on pool. Nothing touches the database until a method runs.
func NewMigrator(pool *pgxpool.Pool, component string, fsys fs.FS) (*Migrator, error) {
	return open(pool, component, fsys)
}

func open(pool *pgxpool.Pool, component string, fsys fs.FS) (*Migrator, error) {
	if !componentName.MatchString(component) {
		return nil, fmt.Errorf("migrate: invalid component name %q", component)
	}
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(lockKey(component)), lock.WithLockTimeout(1, lockTimeoutSeconds))
	if err != nil {
		return nil, err
	}
	store, err := database.NewStore(database.DialectPostgres, VersionTable(component))
	if err != nil {
		return nil, err
	}
	db := stdlib.OpenDBFromPool(pool)
	p, err := goose.NewProvider(goose.DialectCustom, db, fsys,
		goose.WithStore(store),
		goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true),
		goose.WithLogger(goose.NopLogger()),
	)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate %s: %w", component, err)
	}
	return &Migrator{Component: component, db: db, provider: p, store: store, pool: pool}, nil
}

// Close releases the migrator's database handle (not the pool).
func (m *Migrator) Close() error { return m.close() }

func (m *Migrator) close() error { return m.db.Close() }

// Up applies every pending migration and returns what it applied.
func (m *Migrator) Up(ctx context.Context) ([]*goose.MigrationResult, error) { return m.up(ctx) }

func (m *Migrator) up(ctx context.Context) ([]*goose.MigrationResult, error) {
	if err := m.adoptLegacy(ctx); err != nil {
		return nil, fmt.Errorf("migrate %s: adopt schema_migrations: %w", m.Component, err)
	}
	res, err := m.provider.Up(ctx)
	if err != nil {
		return res, fmt.Errorf("migrate %s: %w", m.Component, err)
	}
	return res, nil
}

// Down rolls back the most recent applied migration (goose's Down).
func (m *Migrator) Down(ctx context.Context) (*goose.MigrationResult, error) {
	if err := m.adoptLegacy(ctx); err != nil {
		return nil, fmt.Errorf("migrate %s: adopt schema_migrations: %w", m.Component, err)
	}
	res, err := m.provider.Down(ctx)
	if err != nil {
		return res, fmt.Errorf("migrate %s: %w", m.Component, err)
	}
	return res, nil
}

// Status is every migration of the component and whether it is applied.
func (m *Migrator) Status(ctx context.Context) ([]*goose.MigrationStatus, error) {
	if err := m.adoptLegacy(ctx); err != nil {
		return nil, fmt.Errorf("migrate %s: adopt schema_migrations: %w", m.Component, err)
	}
	st, err := m.provider.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate %s: %w", m.Component, err)
	}
	return st, nil
}

// Pending lists the versions of the component's files that the database
// has not applied. It only reads (the version table; SELECT is enough), so
// a function's role may call it: it is CheckMigrated's test.
func (m *Migrator) Pending(ctx context.Context) ([]int64, error) {
	applied, err := appliedVersions(ctx, m.pool, m.Component)
	if err != nil {
		return nil, err
	}
	return m.pending(applied), nil
}

// pending is the versions of the component's files not in applied.
func (m *Migrator) pending(applied map[int64]bool) []int64 {
	var pending []int64
	for _, s := range m.provider.ListSources() {
		if !applied[s.Version] {
			pending = append(pending, s.Version)
		}
	}
	return pending
}

// appliedVersions reads the applied versions of component; none when its
// version table does not exist (never migrated).
func appliedVersions(ctx context.Context, pool *pgxpool.Pool, component string) (map[int64]bool, error) {
	rows, err := pool.Query(ctx, `SELECT version_id FROM `+pgIdent(VersionTable(component))+` WHERE is_applied`, pgx.QueryExecModeExec)
	if err != nil {
		if isUndefinedTable(err) {
			return map[int64]bool{}, nil
		}
		return nil, err
	}
	applied := map[int64]bool{}
	var v int64
	_, err = pgx.ForEachRow(rows, []any{&v}, func() error {
		applied[v] = true
		return nil
	})
	if isUndefinedTable(err) {
		return map[int64]bool{}, nil
	}
	return applied, err
}

func isUndefinedTable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "42P01"
}

// Schema is one component's migrations (the goose files of FS), for
// CheckAllMigrated.
type Schema struct {
	Component string
	FS        fs.FS
}

// CheckMigrated returns an error wrapping ErrNotMigrated, naming the
// component and the missing versions, when the database has not applied
// every file of fsys; nil when it has. It runs no DDL and takes no lock:
// functions call it at start instead of migrating (see app.Build).
func CheckMigrated(ctx context.Context, pool *pgxpool.Pool, component string, fsys fs.FS) error {
	return CheckAllMigrated(ctx, pool, Schema{Component: component, FS: fsys})
}

// CheckAllMigrated is CheckMigrated for several components in one query:
// a function checks the kernel's schemas and its own at its cold start,
// and each query is a round trip to the database (more than a millisecond
// to Cloud SQL). The error names the first component, in the order given,
// that lacks a version. A component whose version table does not exist yet
// fails the query; then each is checked on its own, to name it.
func CheckAllMigrated(ctx context.Context, pool *pgxpool.Pool, schemas ...Schema) error {
	ms := make([]*Migrator, len(schemas))
	for i, s := range schemas {
		m, err := open(pool, s.Component, s.FS)
		if err != nil {
			return err
		}
		defer m.close()
		ms[i] = m
	}
	applied, err := appliedAll(ctx, pool, ms)
	if isUndefinedTable(err) {
		applied = make([]map[int64]bool, len(ms))
		for i, m := range ms {
			if applied[i], err = appliedVersions(ctx, pool, m.Component); err != nil {
				break
			}
		}
	}
	if err != nil {
		return fmt.Errorf("check schema of %s: %w", components(ms), err)
	}
	for i, m := range ms {
		if pending := m.pending(applied[i]); len(pending) > 0 {
			return fmt.Errorf("%w: %s lacks versions %v", ErrNotMigrated, m.Component, pending)
		}
	}
	return nil
}

// appliedAll reads the applied versions of every component of ms, by
// index, in one query.
func appliedAll(ctx context.Context, pool *pgxpool.Pool, ms []*Migrator) ([]map[int64]bool, error) {
	applied := make([]map[int64]bool, len(ms))
	if len(ms) == 0 {
		return applied, nil
	}
	var q strings.Builder
	for i, m := range ms {
		applied[i] = map[int64]bool{}
		if i > 0 {
			q.WriteString(" UNION ALL ")
		}
		fmt.Fprintf(&q, "SELECT %d, version_id FROM %s WHERE is_applied", i, pgIdent(VersionTable(m.Component)))
	}
	// Run once per process: preparing it (pgx's default) would cost a
	// round trip of its own.
	rows, err := pool.Query(ctx, q.String(), pgx.QueryExecModeExec)
	if err != nil {
		return nil, err
	}
	var (
		i int
		v int64
	)
	_, err = pgx.ForEachRow(rows, []any{&i, &v}, func() error {
		applied[i][v] = true
		return nil
	})
	return applied, err
}

// components names the components of ms, for an error.
func components(ms []*Migrator) string {
	names := make([]string, len(ms))
	for i, m := range ms {
		names[i] = m.Component
	}
	return strings.Join(names, ", ")
}

// adoptLegacy seeds the component's goose version table, once, from the
// schema_migrations table of the runner goose replaced: every file that
// runner applied counts as applied. It does nothing when the goose table
// exists already or there is nothing to adopt. Concurrent callers race on
// creating the table in one transaction; the losers see it exists.
func (m *Migrator) adoptLegacy(ctx context.Context) error {
	var gooseExists, legacyExists bool
	err := m.pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL, to_regclass('schema_migrations') IS NOT NULL`,
		pgIdent(VersionTable(m.Component))).Scan(&gooseExists, &legacyExists)
	if err != nil || gooseExists || !legacyExists {
		return err
	}
	rows, err := m.pool.Query(ctx, `SELECT version FROM schema_migrations WHERE component = $1`, m.Component)
	if err != nil {
		return err
	}
	var versions []int64
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return err
		}
		v, err := legacyVersion(name)
		if err != nil {
			rows.Close()
			return err
		}
		versions = append(versions, v)
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(versions) == 0 {
		return err
	}
	tx, err := m.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck
	if err := m.store.CreateVersionTable(ctx, tx); err != nil {
		if isUniqueViolation(err) {
			return nil // another process adopted it
		}
		return err
	}
	for _, v := range append([]int64{0}, versions...) {
		if err := m.store.Insert(ctx, tx, database.InsertRequest{Version: v}); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil && !isUniqueViolation(err) {
		return err
	}
	return nil
}

// legacyVersion is the goose version of a schema_migrations version (the
// file name without .sql, such as 0001_init).
func legacyVersion(name string) (int64, error) {
	num, _, _ := strings.Cut(name, "_")
	v, err := strconv.ParseInt(num, 10, 64)
	if err != nil || v < 1 {
		return 0, fmt.Errorf("schema_migrations version %q has no numeric prefix", name)
	}
	return v, nil
}

// componentName is what a component may be called: its version table's
// name must be a plain PostgreSQL identifier.
var componentName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,50}$`)

func lockKey(component string) int64 {
	h := fnv.New64a()
	h.Write([]byte("migrate:" + component))
	return int64(h.Sum64())
}

// pgIdent quotes a PostgreSQL identifier.
func pgIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
