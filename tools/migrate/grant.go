package migrate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"example.com/platform/shared/manifest"
)

// GrantsTable records which role each function's grants went to, so that
// a later run revokes the grants of a function no longer deployed (or of
// its previous role). The migrator owns it; functions cannot read it.
const GrantsTable = "platform_function_grants"

// ParseUsers parses MIGRATE_FUNCTION_USERS: a JSON object of function name
// to its database user.
func ParseUsers(s string) (map[string]string, error) {
	users := map[string]string{}
	if err := json.Unmarshal([]byte(s), &users); err != nil {
		return nil, fmt.Errorf("MIGRATE_FUNCTION_USERS: want a JSON object of function name to database user: %w", err)
	}
	for f, u := range users {
		if f == "" || u == "" {
			return nil, fmt.Errorf("MIGRATE_FUNCTION_USERS: empty function or user in %q: %q", f, u)
		}
	}
	return users, nil
}

// Privileges is what one function's role gets.
type Privileges struct {
	Function string
	Role     string
	// Write tables: SELECT, INSERT, UPDATE, DELETE and USAGE on their
	// sequences (manifest.KernelTables and tables.write).
	Write []string
	// Read tables: SELECT (tables.read and every goose version table, which
	// the function reads at start to check the schema).
	Read []string
	// Revoke: the role loses every privilege and gets none (a function
	// no longer deployed with a database).
	Revoke bool
}

// Plan is the privileges of every function in users (function -> role),
// from its manifest. A function in users that has no manifest, or whose
// manifest says database: false, is planned with Revoke: it was removed (or
// left the database) in this release, while the job's environment still
// lists it from the previous apply, so it must not fail the deploy; its
// role keeps nothing. warnings says so, for the job's log.
func Plan(fns []*manifest.Manifest, users map[string]string) (plan []Privileges, warnings []string) {
	byName := map[string]*manifest.Manifest{}
	for _, m := range fns {
		byName[m.Name] = m
	}
	for f, role := range users {
		m := byName[f]
		switch {
		case m == nil:
			warnings = append(warnings, fmt.Sprintf("MIGRATE_FUNCTION_USERS names %q, which has no manifest: revoking every privilege of %s", f, role))
			plan = append(plan, Privileges{Function: f, Role: role, Revoke: true})
			continue
		case !m.Database:
			warnings = append(warnings, fmt.Sprintf("MIGRATE_FUNCTION_USERS names %q, whose manifest says database: false: revoking every privilege of %s", f, role))
			plan = append(plan, Privileges{Function: f, Role: role, Revoke: true})
			continue
		}
		plan = append(plan, Privileges{
			Function: f,
			Role:     role,
			Write:    append(append([]string(nil), manifest.KernelTables...), m.Tables.Write...),
			Read:     append([]string(nil), m.Tables.Read...),
		})
	}
	sort.Slice(plan, func(i, j int) bool { return plan[i].Function < plan[j].Function })
	sort.Strings(warnings)
	return plan, warnings
}

// Grant gives each role of plan exactly its privileges on the tables and
// sequences of schema public, and nothing else there: it first revokes
// everything the role held, then grants, in one transaction (a running
// function never sees a gap). Roles recorded by an earlier run whose
// function is no longer in plan (or that moved to another role) lose every
// privilege. Every role must exist (Terraform creates the IAM users; the
// local stack EnsureRoles). Running it twice changes nothing. Call it as
// the schema's owner, after Up.
func Grant(ctx context.Context, pool *pgxpool.Pool, plan []Privileges, out io.Writer) error {
	if _, err := pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+GrantsTable+` (
		function   text        PRIMARY KEY,
		role       text        NOT NULL,
		granted_at timestamptz NOT NULL DEFAULT now())`); err != nil && !isDuplicate(err) {
		return fmt.Errorf("grant: %w", err)
	}
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		// Serialises concurrent runs (the deploy may run the job twice).
		if _, err := tx.Exec(ctx, `LOCK TABLE `+GrantsTable+` IN EXCLUSIVE MODE`); err != nil {
			return fmt.Errorf("grant: lock: %w", err)
		}
		// Functions create nothing: PostgreSQL 15 and later already deny
		// CREATE on public to PUBLIC; older servers do not. Only the
		// schema's owner may revoke it; anyone else is told once.
		if _, err := tx.Exec(ctx, `SAVEPOINT revoke_create; REVOKE CREATE ON SCHEMA public FROM PUBLIC; RELEASE SAVEPOINT revoke_create`); err != nil {
			if _, rerr := tx.Exec(ctx, `ROLLBACK TO SAVEPOINT revoke_create`); rerr != nil {
				return rerr
			}
			fmt.Fprintf(out, "grant: WARNING: cannot revoke CREATE on schema public from PUBLIC (%v): make sure function roles cannot create tables\n", err)
		}
		current := map[string]bool{}
		var revoke []Privileges
		grants := plan[:0:0]
		for _, p := range plan {
			if p.Revoke {
				revoke = append(revoke, p)
				continue
			}
			grants = append(grants, p)
			current[p.Function+"\x00"+p.Role] = true
		}
		plan = grants
		rows, err := tx.Query(ctx, `SELECT function, role FROM `+GrantsTable+` ORDER BY function`)
		if err != nil {
			return err
		}
		type rec struct{ function, role string }
		var old []rec
		for rows.Next() {
			var r rec
			if err := rows.Scan(&r.function, &r.role); err != nil {
				return err
			}
			old = append(old, r)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		inPlan := map[string]bool{}
		for _, p := range plan {
			inPlan[p.Role] = true
		}
		for _, p := range revoke {
			old = append(old, rec{p.Function, p.Role})
		}
		done := map[rec]bool{}
		for _, r := range old {
			if current[r.function+"\x00"+r.role] || done[r] {
				continue
			}
			done[r] = true
			if !inPlan[r.role] {
				exists, err := roleExists(ctx, tx, r.role)
				if err != nil {
					return err
				}
				if exists {
					if err := revokeAll(ctx, tx, r.role); err != nil {
						return err
					}
				}
				fmt.Fprintf(out, "grant: %s no longer deployed as %s: revoked its privileges\n", r.function, r.role)
			}
			if _, err := tx.Exec(ctx, `DELETE FROM `+GrantsTable+` WHERE function = $1`, r.function); err != nil {
				return err
			}
		}
		var missing []string
		for _, p := range plan {
			for _, t := range append(append([]string(nil), p.Write...), p.Read...) {
				var ok bool
				if err := tx.QueryRow(ctx, `SELECT to_regclass('public.' || quote_ident($1)) IS NOT NULL`, t).Scan(&ok); err != nil {
					return err
				}
				if !ok {
					missing = append(missing, fmt.Sprintf("%s (function %s)", t, p.Function))
				}
			}
			exists, err := roleExists(ctx, tx, p.Role)
			if err != nil {
				return err
			}
			if !exists {
				return fmt.Errorf("grant: role %q of function %s does not exist (Terraform creates the IAM database users; locally the stack creates fn_<name>)", p.Role, p.Function)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("grant: manifest tables that no migration created: %s", strings.Join(missing, ", "))
		}
		versionTables, err := stringsOf(ctx, tx, `SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 'goose\_%' ORDER BY 1`)
		if err != nil {
			return err
		}
		for _, p := range plan {
			if err := revokeAll(ctx, tx, p.Role); err != nil {
				return err
			}
			role := pgx.Identifier{p.Role}.Sanitize()
			if err := grantTables(ctx, tx, "SELECT, INSERT, UPDATE, DELETE", p.Write, role); err != nil {
				return err
			}
			if err := grantTables(ctx, tx, "SELECT", append(append([]string(nil), p.Read...), versionTables...), role); err != nil {
				return err
			}
			seqs, err := stringsOf(ctx, tx, `
SELECT DISTINCT s.relname FROM pg_class s
  JOIN pg_depend d ON d.objid = s.oid AND d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
  JOIN pg_class t ON t.oid = d.refobjid
 WHERE s.relkind = 'S' AND t.relnamespace = 'public'::regnamespace AND t.relname = ANY($1)
 ORDER BY 1`, p.Write)
			if err != nil {
				return err
			}
			for _, s := range seqs {
				if _, err := tx.Exec(ctx, `GRANT USAGE, SELECT ON SEQUENCE `+pgx.Identifier{"public", s}.Sanitize()+` TO `+role); err != nil {
					return fmt.Errorf("grant %s on %s: %w", p.Role, s, err)
				}
			}
			owned, err := stringsOf(ctx, tx, `SELECT c.relname FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner
 WHERE c.relnamespace = 'public'::regnamespace AND r.rolname = $1 ORDER BY 1`, p.Role)
			if err != nil {
				return err
			}
			if len(owned) > 0 {
				fmt.Fprintf(out, "grant: WARNING: %s's role %s owns %s: a function role should own nothing; as the owner run ALTER TABLE ... OWNER TO the migrator\n", p.Function, p.Role, strings.Join(owned, ", "))
			}
			if _, err := tx.Exec(ctx, `INSERT INTO `+GrantsTable+` (function, role) VALUES ($1, $2)
ON CONFLICT (function) DO UPDATE SET role = EXCLUDED.role, granted_at = now()`, p.Function, p.Role); err != nil {
				return err
			}
			fmt.Fprintf(out, "grant: %s as %s: write %v, read %v\n", p.Function, p.Role, p.Write, p.Read)
		}
		return nil
	})
}

func grantTables(ctx context.Context, tx pgx.Tx, privs string, tables []string, role string) error {
	if len(tables) == 0 {
		return nil
	}
	names := make([]string, len(tables))
	for i, t := range tables {
		names[i] = pgx.Identifier{"public", t}.Sanitize()
	}
	if _, err := tx.Exec(ctx, `GRANT `+privs+` ON TABLE `+strings.Join(names, ", ")+` TO `+role); err != nil {
		return fmt.Errorf("grant %s on %v to %s: %w", privs, tables, role, err)
	}
	return nil
}

// revokeAll revokes every privilege of role on the tables, sequences and
// functions of schema public that the current user granted.
func revokeAll(ctx context.Context, tx pgx.Tx, role string) error {
	r := pgx.Identifier{role}.Sanitize()
	for _, q := range []string{
		`REVOKE ALL ON ALL TABLES IN SCHEMA public FROM ` + r,
		`REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM ` + r,
	} {
		if _, err := tx.Exec(ctx, q); err != nil {
			return fmt.Errorf("revoke from %s: %w", role, err)
		}
	}
	return nil
}

func roleExists(ctx context.Context, tx pgx.Tx, role string) (bool, error) {
	var ok bool
	err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`, role).Scan(&ok)
	return ok, err
}

func stringsOf(ctx context.Context, tx pgx.Tx, q string, args ...any) ([]string, error) {
	rows, err := tx.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

func isDuplicate(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "23505" || pe.Code == "42P07" || pe.Code == "42710")
}
