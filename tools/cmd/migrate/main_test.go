package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"example.com/platform/shared/testing/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// The command the deploy's job runs, against a real database: up applies
// everything and grants the listed users, status reports it, down rolls one
// component back (status then exits 3), up again restores it; a function
// no longer in the repository loses its grants without failing the job.
func TestUpStatusDown(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	pool := pgtest.Open(t, dsn)
	if _, err := pool.Exec(ctx, `DO $$ BEGIN CREATE ROLE "fn-payment@p.iam"; EXCEPTION WHEN duplicate_object THEN NULL; END $$`); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"DATABASE_URL": dsn, EnvUsers: `{"payment": "fn-payment@p.iam"}`}
	run := func(args ...string) (int, string) {
		var out, errOut bytes.Buffer
		code := Main(ctx, args, func(k string) string { return env[k] }, &out, &errOut)
		return code, out.String() + errOut.String()
	}
	if code, out := run("up"); code != 0 || !strings.Contains(out, "payment: applied 0001_payments.sql") || !strings.Contains(out, "grant: payment as fn-payment@p.iam") {
		t.Fatalf("up: %d\n%s", code, out)
	}
	var canInsert bool
	if err := pool.QueryRow(ctx, `SELECT has_table_privilege('fn-payment@p.iam', 'payments', 'INSERT') AND has_table_privilege('fn-payment@p.iam', 'refunds', 'INSERT') AND NOT has_table_privilege('fn-payment@p.iam', 'shipments', 'SELECT')`).Scan(&canInsert); err != nil || !canInsert {
		t.Fatalf("payment's grants wrong (%v)", err)
	}
	if code, out := run("up"); code != 0 || !strings.Contains(out, "payment: up to date") {
		t.Fatalf("second up: %d\n%s", code, out)
	}
	if code, out := run("status"); code != 0 || !strings.Contains(out, "0001_payments.sql") || strings.Contains(out, "pending") {
		t.Fatalf("status: %d\n%s", code, out)
	}
	// down rolls back the component's latest migration only.
	if code, out := run("down", "payment"); code != 0 || !strings.Contains(out, "payment: rolled back 0002_refunds.sql") {
		t.Fatalf("down: %d\n%s", code, out)
	}
	var exists bool
	pool.QueryRow(ctx, `SELECT to_regclass('refunds') IS NOT NULL`).Scan(&exists)
	if exists {
		t.Fatal("down left table refunds")
	}
	if code, out := run("status", "payment"); code != exitPending || !strings.Contains(out, "pending") {
		t.Fatalf("status after down: %d, want %d\n%s", code, exitPending, out)
	}
	if code, out := run("up", "payment"); code != 0 || !strings.Contains(out, "grants unchanged") {
		t.Fatalf("up payment: %d\n%s", code, out)
	}
	// A function gone from the repository but still listed by the job's
	// environment: a warning, and its user keeps nothing.
	env[EnvUsers] = `{"gone": "fn-payment@p.iam"}`
	if code, out := run("up"); code != 0 || !strings.Contains(out, `WARNING: MIGRATE_FUNCTION_USERS names "gone", which has no manifest`) {
		t.Fatalf("removed function: %d\n%s", code, out)
	}
	var any bool
	if err := pool.QueryRow(ctx, `SELECT has_table_privilege('fn-payment@p.iam', 'payments', 'SELECT')`).Scan(&any); err != nil || any {
		t.Fatalf("removed function's user still reads payments (%v)", err)
	}
	for _, args := range [][]string{nil, {"down"}, {"sideways"}, {"up", "a", "b"}} {
		if code, _ := run(args...); code != 2 {
			t.Errorf("%v: exit %d, want 2 (usage)", args, code)
		}
	}
	if code, out := run("up", "nosuch"); code != 1 || !strings.Contains(out, `unknown component "nosuch"`) {
		t.Errorf("unknown component: %d\n%s", code, out)
	}
}
