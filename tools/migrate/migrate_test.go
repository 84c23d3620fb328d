package migrate_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"example.com/platform/shared/manifest"
	"example.com/platform/shared/testing/pgtest"
	"example.com/platform/tools/migrate"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// repo is the repository's manifests, with the README's worked example
// (which the local stack runs too).
func repo(t *testing.T) (string, []*manifest.Manifest) {
	t.Helper()
	root, err := migrate.FindRoot("")
	if err != nil {
		t.Fatal(err)
	}
	fns, err := migrate.Functions(root, "docs/examples/orderstats")
	if err != nil {
		t.Fatal(err)
	}
	return root, fns
}

// The convention finds the kernel and shared domain first, then every
// database function's folder, under the names the Go code migrates them
// under (app.Registered.Migrations).
func TestDiscoverFindsEveryComponentByConvention(t *testing.T) {
	root, fns := repo(t)
	comps, err := migrate.Discover(root, fns)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range comps {
		names = append(names, c.Name)
	}
	if got, want := strings.Join(names, ","), "orders,idempotency,outbox,parking,orderstats,payment,shipment"; got != want {
		t.Fatalf("components %s, want %s", got, want)
	}
}

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// grants is every table privilege granted to a function role, as
// "role:table:privilege" lines: the state Grant must converge to.
func grants(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `
SELECT grantee || ':' || table_name || ':' || privilege_type FROM information_schema.role_table_grants
 WHERE grantee LIKE 'fn\_%' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

// TestSetupGivesEachFunctionOnlyItsTables is least privilege, proven by
// connecting as each function's role: the shipment function writes its own
// table, the orders it advances and the kernel tables, and is refused
// (SQLSTATE 42501) on the payment function's table and on creating tables;
// no function role owns anything; running the step again changes nothing;
// a function no longer deployed loses every grant.
func TestSetupGivesEachFunctionOnlyItsTables(t *testing.T) {
	ctx := context.Background()
	root, fns := repo(t)
	ownerURL := pgtest.NewDatabase(t)
	owner := pgtest.Open(t, ownerURL)
	var out bytes.Buffer
	users, err := migrate.Setup(ctx, owner, root, fns, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if users["shipment"] != "fn_shipment" || users["payment"] != "fn_payment" || users["analytics"] != "" {
		t.Fatalf("roles %v: want fn_<name> for the database functions only", users)
	}
	shipURL, err := migrate.RoleURL(ownerURL, users["shipment"])
	if err != nil {
		t.Fatal(err)
	}
	ship := pgtest.Open(t, shipURL)
	var who string
	if err := ship.QueryRow(ctx, "SELECT current_user").Scan(&who); err != nil || who != "fn_shipment" {
		t.Fatalf("connected as %q (%v), want fn_shipment", who, err)
	}
	for _, q := range []string{
		`INSERT INTO orders (id, customer_id, currency, total, items) VALUES ('00000000-0000-0000-0000-000000000001', 'c', 'EUR', 1, '[]')`,
		`INSERT INTO order_status_history (order_id, status) VALUES ('00000000-0000-0000-0000-000000000001', 'pending')`,
		`INSERT INTO shipments (id, order_id, payment_id, carrier, tracking_number, event_source, event_id, dispatched_at)
		 VALUES (gen_random_uuid(), '00000000-0000-0000-0000-000000000001', gen_random_uuid(), 'dhl', 't1', 's', 'e', now())`,
		`INSERT INTO outbox (topic, data) VALUES ('shipment.dispatched', '\x00')`,
		`SELECT idempotency_claim_tx('shipment', 'k1', NULL)`,
		`DELETE FROM processed_events WHERE consumer = 'shipment'`,
		`SELECT count(*) FROM goose_shipment`,
	} {
		if _, err := ship.Exec(ctx, q); err != nil {
			t.Fatalf("fn_shipment was refused its own work %q: %v", q, err)
		}
	}
	for _, q := range []string{
		`INSERT INTO payments (id, idempotency_key, order_id, customer_id, amount, currency, status, event_id, order_moved)
		 VALUES (gen_random_uuid(), 'k', gen_random_uuid(), 'c', 1, 'EUR', 'approved', 'e', true)`,
		`SELECT count(*) FROM payments`,
		`SELECT count(*) FROM customer_stats`,
		`SELECT count(*) FROM ` + migrate.GrantsTable,
		`CREATE TABLE mine (id int)`,
		`DROP TABLE shipments`,
	} {
		if _, err := ship.Exec(ctx, q); pgCode(err) != "42501" {
			t.Errorf("fn_shipment %q: got %v, want permission denied (42501)", q, err)
		}
	}
	var owned int
	if err := owner.QueryRow(ctx, `SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner
		WHERE r.rolname LIKE 'fn\_%' AND c.relnamespace = 'public'::regnamespace`).Scan(&owned); err != nil || owned != 0 {
		t.Fatalf("function roles own %d relations (%v), want none", owned, err)
	}

	before := grants(t, owner)
	if !strings.Contains(before, "fn_payment:payments:INSERT") || strings.Contains(before, "fn_shipment:payments") || strings.Contains(before, "fn_orderstats:orders:") {
		t.Fatalf("grants:\n%s", before)
	}
	if _, err := migrate.Setup(ctx, owner, root, fns, &out); err != nil {
		t.Fatal(err)
	}
	if after := grants(t, owner); after != before {
		t.Fatalf("a second run changed the grants:\nbefore\n%s\nafter\n%s", before, after)
	}

	// shipment is no longer deployed: its role keeps nothing; the others
	// are untouched.
	users = migrate.LocalUsers(fns)
	delete(users, "shipment")
	plan, warnings := migrate.Plan(fns, users)
	if len(warnings) > 0 {
		t.Fatal(warnings)
	}
	out.Reset()
	if err := migrate.Grant(ctx, owner, plan, &out); err != nil {
		t.Fatal(err)
	}
	after := grants(t, owner)
	if strings.Contains(after, "fn_shipment:") || !strings.Contains(out.String(), "shipment no longer deployed as fn_shipment") {
		t.Fatalf("removed function keeps grants:\n%s\n%s", after, out.String())
	}
	if want := strings.Join(slicesWithout(strings.Split(before, "\n"), "fn_shipment:"), "\n"); after != want {
		t.Fatalf("revoking shipment changed other grants:\n%s\nwant\n%s", after, want)
	}
	if _, err := ship.Exec(ctx, `SELECT count(*) FROM shipments`); pgCode(err) != "42501" {
		t.Fatalf("removed function still reads its table: %v", err)
	}
}

func slicesWithout(lines []string, prefix string) []string {
	var out []string
	for _, l := range lines {
		if !strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}

// A function the job's environment still lists (from the previous apply)
// but whose manifest is gone, or no longer uses the database, must not fail
// the deploy: its role is stripped of every privilege, with a warning.
func TestRemovedFunctionsAreRevokedNotFatal(t *testing.T) {
	ctx := context.Background()
	root, fns := repo(t)
	owner := pgtest.NewPool(t)
	if _, err := migrate.Setup(ctx, owner, root, fns, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(grants(t, owner), "fn_orderstats:customer_stats:INSERT") {
		t.Fatal("orderstats not granted by Setup")
	}
	users, err := migrate.ParseUsers(`{"orderstats": "fn_orderstats", "analytics": "fn_analytics", "shipment": "fn_shipment"}`)
	if err != nil {
		t.Fatal(err)
	}
	var kept []*manifest.Manifest // orderstats deleted from the repository
	for _, m := range fns {
		if m.Name != "orderstats" {
			kept = append(kept, m)
		}
	}
	if err := migrate.EnsureRoles(ctx, owner, map[string]string{"analytics": "fn_analytics"}); err != nil {
		t.Fatal(err)
	}
	plan, warnings := migrate.Plan(kept, users)
	if w := strings.Join(warnings, "\n"); !strings.Contains(w, `"orderstats", which has no manifest`) || !strings.Contains(w, `"analytics", whose manifest says database: false`) {
		t.Fatalf("warnings %q", w)
	}
	var out bytes.Buffer
	if err := migrate.Grant(ctx, owner, plan, &out); err != nil {
		t.Fatal(err)
	}
	g := grants(t, owner)
	if strings.Contains(g, "fn_orderstats:") || strings.Contains(g, "fn_analytics:") || strings.Contains(g, "fn_payment:") || !strings.Contains(g, "fn_shipment:shipments:INSERT") {
		t.Fatalf("grants after the removals:\n%s\n%s", g, out.String())
	}
	if _, err := migrate.ParseUsers(`["payment"]`); err == nil {
		t.Error("a JSON list was accepted as MIGRATE_FUNCTION_USERS")
	}
}

// A manifest table that no migration created fails the grant step by
// name, instead of granting nothing.
func TestGrantRefusesUnknownTables(t *testing.T) {
	ctx := context.Background()
	root, fns := repo(t)
	owner := pgtest.NewPool(t)
	if _, err := migrate.Setup(ctx, owner, root, fns, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	plan := []migrate.Privileges{{Function: "shipment", Role: "fn_shipment", Write: []string{"shipmentz"}}}
	err := migrate.Grant(ctx, owner, plan, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "shipmentz (function shipment)") {
		t.Fatalf("got %v, want the unknown table named", err)
	}
}
