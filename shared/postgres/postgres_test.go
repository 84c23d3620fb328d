package postgres_test

import (
	"context"
	"os"
	"sync"
	"testing"
	"testing/fstest"

	"example.com/platform/shared/postgres"
	"example.com/platform/shared/testing/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func TestMigrateIsRepeatableAndConcurrent(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	fsys := fstest.MapFS{
		"0001_init.sql": {Data: []byte("CREATE TABLE a (id int PRIMARY KEY)")},
		"0002_more.sql": {Data: []byte("INSERT INTO a VALUES (1)")},
		"README.md":     {Data: []byte("not sql")},
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
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
	// A new file is applied on the next call.
	fsys["0003_again.sql"] = &fstest.MapFile{Data: []byte("INSERT INTO a VALUES (2)")}
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
	bad := fstest.MapFS{"0001_bad.sql": {Data: []byte("CREATE TABLE b (id int); SELECT nonsense_fn()")}}
	if err := postgres.Migrate(ctx, pool, "bad", bad); err == nil {
		t.Fatal("bad migration succeeded")
	}
	var exists bool
	pool.QueryRow(ctx, "SELECT to_regclass('b') IS NOT NULL").Scan(&exists)
	if exists {
		t.Fatal("failed migration left table b behind")
	}
	good := fstest.MapFS{"0001_bad.sql": {Data: []byte("CREATE TABLE b (id int)")}}
	if err := postgres.Migrate(ctx, pool, "bad", good); err != nil {
		t.Fatalf("fixed migration not applied: %v", err)
	}
}
