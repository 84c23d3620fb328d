package e2e_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"example.com/platform/tools/localstack/stack"
)

// TestFunctionsRunAsTheirOwnRole: the local stack sets up the database as
// a deploy does (tools/migrate: owner migrates, one role per function,
// grants from the manifests' tables:). The shipment function starts as
// fn_shipment without DB_MIGRATE, so its start-up schema check passed as
// that role; the role writes its own table and is refused the payment
// function's (SQLSTATE 42501).
func TestFunctionsRunAsTheirOwnRole(t *testing.T) {
	s := start(t, stack.Options{Functions: []string{"shipment"}, SkipMissing: true, Programs: []stack.Program{}})
	ctx := context.Background()
	if got := s.DatabaseRoles["shipment"]; got != "fn_shipment" {
		t.Fatalf("shipment's role %q, want fn_shipment (roles %v)", got, s.DatabaseRoles)
	}
	conn, err := pgx.Connect(ctx, s.FunctionDatabaseURL("shipment"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var who string
	if err := conn.QueryRow(ctx, "SELECT current_user").Scan(&who); err != nil || who != "fn_shipment" {
		t.Fatalf("connected as %q (%v)", who, err)
	}
	// The running function's pool is connected as its role.
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE usename = 'fn_shipment' AND pid <> pg_backend_pid()").Scan(&n); err != nil || n == 0 {
		t.Fatalf("no connection of the shipment process as fn_shipment (%d, %v)", n, err)
	}
	if _, err := conn.Exec(ctx, "SELECT count(*) FROM shipments"); err != nil {
		t.Fatalf("fn_shipment cannot read its own table: %v", err)
	}
	_, err = conn.Exec(ctx, `INSERT INTO payments (id, idempotency_key, order_id, customer_id, amount, currency, status, event_id, order_moved)
		VALUES (gen_random_uuid(), 'k', gen_random_uuid(), 'c', 1, 'EUR', 'approved', 'e', true)`)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "42501" {
		t.Fatalf("fn_shipment INSERT INTO payments: got %v, want permission denied (42501)", err)
	}
}
