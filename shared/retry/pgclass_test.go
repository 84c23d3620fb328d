package retry_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"example.com/platform/shared/retry"
	"example.com/platform/shared/testing/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func suffix(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// TestPostgresErrorClasses provokes each row of the error-class table
// (docs/failure-model.md) with a real PostgreSQL server and checks the
// class (permanent or transient) and the error_class log field.
func TestPostgresErrorClasses(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dsn := pgtest.NewDatabase(t)
	base, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := pgx.ConnectConfig(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	mustExec := func(sql string) {
		t.Helper()
		if _, err := admin.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	mustExec(`CREATE TABLE orders (id int PRIMARY KEY, total int NOT NULL CHECK (total > 0))`)
	mustExec(`INSERT INTO orders VALUES (1, 10)`)

	// A role that had SELECT on orders and lost it (a revoked grant).
	role := "reader_" + suffix(t)
	mustExec(`CREATE ROLE ` + role + ` LOGIN`)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		a, err := pgx.ConnectConfig(ctx, base)
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		defer a.Close(context.Background())
		for _, sql := range []string{`REVOKE ALL ON orders FROM ` + role, `DROP ROLE IF EXISTS ` + role} {
			if _, err := a.Exec(ctx, sql); err != nil {
				t.Errorf("cleanup %s: %v", sql, err)
			}
		}
	})
	mustExec(`GRANT SELECT ON orders TO ` + role)
	mustExec(`REVOKE SELECT ON orders FROM ` + role)

	connectAs := func(user, database string) (*pgx.Conn, error) {
		cfg := base.Copy()
		if user != "" {
			cfg.User = user
		}
		if database != "" {
			cfg.Database = database
		}
		return pgx.ConnectConfig(ctx, cfg)
	}

	query := func(c *pgx.Conn, sql string) func() error {
		return func() error {
			_, err := c.Exec(ctx, sql)
			return err
		}
	}
	cases := []struct {
		name     string
		run      func() error
		sqlstate string
		class    retry.Class
		errClass string
	}{
		{"undefined table", query(admin, `SELECT * FROM shipments`), "42P01", retry.ClassTransient, retry.ErrorClassSchema},
		{"undefined column", query(admin, `SELECT customer_id FROM orders`), "42703", retry.ClassTransient, retry.ErrorClassSchema},
		{"revoked grant", func() error {
			c, err := connectAs(role, "")
			if err != nil {
				return err
			}
			defer c.Close(context.Background())
			_, err = c.Exec(ctx, `SELECT * FROM orders`)
			return err
		}, "42501", retry.ClassTransient, retry.ErrorClassPermission},
		{"unknown role (authentication)", func() error {
			c, err := connectAs("nobody_"+suffix(t), "")
			if err == nil {
				c.Close(context.Background())
			}
			return err
		}, "28000", retry.ClassTransient, retry.ErrorClassAuth},
		{"missing database", func() error {
			c, err := connectAs("", "missing_"+suffix(t))
			if err == nil {
				c.Close(context.Background())
			}
			return err
		}, "3D000", retry.ClassTransient, retry.ErrorClassDatabase},
		{"check violation", query(admin, `INSERT INTO orders VALUES (2, 0)`), "23514", retry.ClassPermanent, retry.ErrorClassData},
		{"unique violation", query(admin, `INSERT INTO orders VALUES (1, 5)`), "23505", retry.ClassPermanent, retry.ErrorClassData},
		{"not null violation", query(admin, `INSERT INTO orders (id) VALUES (3)`), "23502", retry.ClassPermanent, retry.ErrorClassData},
		{"invalid text representation", query(admin, `SELECT 'abc'::int`), "22P02", retry.ClassPermanent, retry.ErrorClassData},
		{"numeric out of range", query(admin, `SELECT 2147483647::int + 1`), "22003", retry.ClassPermanent, retry.ErrorClassData},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.run()
			var pg *pgconn.PgError
			if !errors.As(err, &pg) {
				t.Fatalf("err = %v (%T), want a PostgreSQL error %s", err, err, c.sqlstate)
			}
			if pg.Code != c.sqlstate {
				t.Fatalf("SQLSTATE %s (%v), want %s", pg.Code, err, c.sqlstate)
			}
			if got := retry.Classify(err); got != c.class {
				t.Errorf("Classify(%v) = %v, want %v", err, got, c.class)
			}
			if got := retry.ErrorClass(err); got != c.errClass {
				t.Errorf("ErrorClass = %q, want %q", got, c.errClass)
			}
			attrs := retry.LogAttrs(err)
			if len(attrs) != 1 {
				t.Fatalf("LogAttrs = %v", attrs)
			}
		})
	}
}
