package postgres_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"example.com/platform/shared/postgres"
	"example.com/platform/shared/testing/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func gooseFile(up, down string) *fstest.MapFile {
	return &fstest.MapFile{Data: []byte("-- +goose Up\n" + up + ";\n\n-- +goose Down\n" + down + ";\n")}
}

func TestMigrateIsRepeatableAndConcurrent(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	fsys := fstest.MapFS{
		"0001_init.sql": gooseFile("CREATE TABLE a (id int PRIMARY KEY)", "DROP TABLE a"),
		"0002_more.sql": gooseFile("INSERT INTO a VALUES (1)", "DELETE FROM a WHERE id = 1"),
		"README.md":     {Data: []byte("not sql")},
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- postgres.Migrate(ctx, pool, "demo", fsys)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := postgres.Migrate(ctx, pool, "demo", fsys); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM a").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("second migration ran %d times, want once", n)
	}
	// The component's own goose version table records both.
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM goose_demo WHERE version_id > 0").Scan(&n); err != nil || n != 2 {
		t.Fatalf("goose_demo has %d versions (err %v), want 2", n, err)
	}
	// A new file is applied on the next call.
	fsys["0003_again.sql"] = gooseFile("INSERT INTO a VALUES (2)", "DELETE FROM a WHERE id = 2")
	if err := postgres.Migrate(ctx, pool, "demo", fsys); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM a").Scan(&n); err != nil || n != 2 {
		t.Fatalf("n=%d err=%v", n, err)
	}
}

func TestMigrateFailureRollsBack(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	bad := fstest.MapFS{"0001_bad.sql": gooseFile("CREATE TABLE b (id int); SELECT nonsense_fn()", "DROP TABLE b")}
	if err := postgres.Migrate(ctx, pool, "bad", bad); err == nil {
		t.Fatal("bad migration succeeded")
	}
	var exists bool
	pool.QueryRow(ctx, "SELECT to_regclass('b') IS NOT NULL").Scan(&exists)
	if exists {
		t.Fatal("failed migration left table b behind")
	}
	good := fstest.MapFS{"0001_bad.sql": gooseFile("CREATE TABLE b (id int)", "DROP TABLE b")}
	if err := postgres.Migrate(ctx, pool, "bad", good); err != nil {
		t.Fatalf("fixed migration not applied: %v", err)
	}
}

// A database migrated by the runner goose replaced keeps working: the files
// recorded in schema_migrations are not run again (0001 would fail: its
// table exists), and the new one is.
func TestMigrateAdoptsSchemaMigrations(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	// What the old runner left behind after applying 0001_init.
	for _, q := range []string{
		`CREATE TABLE schema_migrations (component text NOT NULL, version text NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (component, version))`,
		`INSERT INTO schema_migrations (component, version) VALUES ('legacy', '0001_init'), ('other', '0001_x'), ('other', '0002_y')`,
		`CREATE TABLE c (id int PRIMARY KEY)`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	fsys := fstest.MapFS{
		"0001_init.sql": gooseFile("CREATE TABLE c (id int PRIMARY KEY)", "DROP TABLE c"),
		"0002_row.sql":  gooseFile("INSERT INTO c VALUES (7)", "DELETE FROM c WHERE id = 7"),
	}
	for range 2 {
		if err := postgres.Migrate(ctx, pool, "legacy", fsys); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM c WHERE id = 7").Scan(&n); err != nil || n != 1 {
		t.Fatalf("0002 applied %d times (err %v), want once", n, err)
	}
	var versions string
	if err := pool.QueryRow(ctx, "SELECT string_agg(version_id::text, ',' ORDER BY version_id) FROM goose_legacy").Scan(&versions); err != nil {
		t.Fatal(err)
	}
	if versions != "0,1,2" {
		t.Fatalf("goose_legacy versions %q, want 0,1,2 (another component's rows must not leak in)", versions)
	}
}

func TestCheckMigratedAndDown(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	fsys := fstest.MapFS{
		"0001_init.sql": gooseFile("CREATE TABLE d (id int PRIMARY KEY)", "DROP TABLE d"),
		"0002_col.sql":  gooseFile("ALTER TABLE d ADD COLUMN note text", "ALTER TABLE d DROP COLUMN note"),
	}
	err := postgres.CheckMigrated(ctx, pool, "chk", fsys)
	if !errors.Is(err, postgres.ErrNotMigrated) || !strings.Contains(err.Error(), "chk lacks versions [1 2]") {
		t.Fatalf("unmigrated database: got %v, want ErrNotMigrated naming chk and versions 1 and 2", err)
	}
	if err := postgres.Migrate(ctx, pool, "chk", fsys); err != nil {
		t.Fatal(err)
	}
	if err := postgres.CheckMigrated(ctx, pool, "chk", fsys); err != nil {
		t.Fatalf("migrated database: %v", err)
	}
	m, err := postgres.NewMigrator(pool, "chk", fsys)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := m.Down(ctx); err != nil {
		t.Fatal(err)
	}
	var hasNote bool
	pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_name = 'd' AND column_name = 'note')").Scan(&hasNote)
	if hasNote {
		t.Fatal("down did not drop the column of 0002")
	}
	err = postgres.CheckMigrated(ctx, pool, "chk", fsys)
	if !errors.Is(err, postgres.ErrNotMigrated) || !strings.Contains(err.Error(), "[2]") {
		t.Fatalf("after down: got %v, want ErrNotMigrated for version 2", err)
	}
	st, err := m.Status(ctx)
	if err != nil || len(st) != 2 || st[0].State != "applied" || st[1].State != "pending" {
		t.Fatalf("status %v err %v, want 1 applied, 2 pending", st, err)
	}
}

// TestCheckAllMigratedNamesTheComponentBehind checks several components
// in one query: nil when every one is migrated, else ErrNotMigrated naming
// the first one behind and its versions, whether its version table lacks
// a row or does not exist at all.
func TestCheckAllMigratedNamesTheComponentBehind(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	one := fstest.MapFS{"0001_a.sql": gooseFile("CREATE TABLE a (id int)", "DROP TABLE a")}
	two := fstest.MapFS{
		"0001_b.sql": gooseFile("CREATE TABLE b (id int)", "DROP TABLE b"),
		"0002_b.sql": gooseFile("ALTER TABLE b ADD COLUMN note text", "ALTER TABLE b DROP COLUMN note"),
	}
	schemas := []postgres.Schema{{Component: "one", FS: one}, {Component: "two", FS: two}}
	if err := postgres.Migrate(ctx, pool, "one", one); err != nil {
		t.Fatal(err)
	}
	err := postgres.CheckAllMigrated(ctx, pool, schemas...)
	if !errors.Is(err, postgres.ErrNotMigrated) || !strings.Contains(err.Error(), "two lacks versions [1 2]") {
		t.Fatalf("version table of two missing: got %v, want ErrNotMigrated naming two", err)
	}
	if err := postgres.Migrate(ctx, pool, "two", two); err != nil {
		t.Fatal(err)
	}
	if err := postgres.CheckAllMigrated(ctx, pool, schemas...); err != nil {
		t.Fatalf("both migrated: %v", err)
	}
	if _, err := pool.Exec(ctx, `UPDATE goose_two SET is_applied = false WHERE version_id = 2`); err != nil {
		t.Fatal(err)
	}
	err = postgres.CheckAllMigrated(ctx, pool, schemas...)
	if !errors.Is(err, postgres.ErrNotMigrated) || !strings.Contains(err.Error(), "two lacks versions [2]") {
		t.Fatalf("version 2 of two not applied: got %v", err)
	}
	if err := postgres.CheckAllMigrated(ctx, pool, postgres.Schema{Component: `x"y`, FS: one}); err == nil {
		t.Fatal("invalid component name accepted")
	}
}

func TestInvalidComponent(t *testing.T) {
	pool := pgtest.NewPool(t)
	if err := postgres.Migrate(context.Background(), pool, `x"; DROP TABLE y; --`, fstest.MapFS{}); err == nil {
		t.Fatal("component name with quotes accepted")
	}
}
