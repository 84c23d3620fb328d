package pgtest_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"example.com/platform/shared/testing/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func TestEachTestGetsItsOwnDatabase(t *testing.T) {
	ctx := context.Background()
	a := pgtest.NewPool(t)
	b := pgtest.NewPool(t)
	if _, err := a.Exec(ctx, "CREATE TABLE x (id int)"); err != nil {
		t.Fatal(err)
	}
	var exists bool
	if err := b.QueryRow(ctx, "SELECT to_regclass('x') IS NOT NULL").Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Fatal("table created in one test database is visible in another")
	}
	var fsync string
	if err := a.QueryRow(ctx, "SHOW fsync").Scan(&fsync); err != nil {
		t.Fatal(err)
	}
	if fsync != "on" {
		t.Fatalf("fsync = %q, want on", fsync)
	}
}

func TestLogPathHoldsTheServerLog(t *testing.T) {
	c, err := pgtest.Start()
	if err != nil {
		t.Fatal(err)
	}
	if c.LogPath() == "" {
		t.Skip("DATABASE_URL is set: the server's log is not ours")
	}
	pool := pgtest.NewPool(t)
	marker := "pgtest-log-marker-" + t.Name()
	if _, err := pool.Exec(context.Background(), "DO $$ BEGIN RAISE LOG '"+marker+"'; END $$"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(c.LogPath())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), marker) {
		t.Fatalf("server log %s lacks %q", c.LogPath(), marker)
	}
}

func TestRestartClosesConnectionsAndComesBack(t *testing.T) {
	c, err := pgtest.Start()
	if err != nil {
		t.Fatal(err)
	}
	if c.LogPath() == "" {
		if err := c.Restart(); err == nil {
			t.Fatal("Restart of DATABASE_URL's server succeeded, want an error")
		}
		t.Skip("DATABASE_URL is set: the server is not ours to restart")
	}
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	var before int
	if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&before); err != nil {
		t.Fatal(err)
	}
	if err := c.Restart(); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "SELECT 1"); err == nil {
		t.Error("a connection from before the restart still works")
	}
	var after int
	if err := pool.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&after); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	if after == before {
		t.Errorf("same backend pid %d after restart", after)
	}
}
