package migrate

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"example.com/platform/shared/manifest"
)

// LocalRole is the login role the local stack and tests give function
// name: fn_<name> (dashes become underscores). Production uses the
// function's IAM database user instead.
func LocalRole(name string) string { return "fn_" + strings.ReplaceAll(name, "-", "_") }

// LocalUsers is MIGRATE_FUNCTION_USERS of the local stack: every database
// function of fns and its LocalRole.
func LocalUsers(fns []*manifest.Manifest) map[string]string {
	users := map[string]string{}
	for _, m := range fns {
		if m.Database {
			users[m.Name] = LocalRole(m.Name)
		}
	}
	return users
}

// EnsureRoles creates each role of users as a plain login role (no
// superuser, no CREATEDB, no CREATEROLE, owning nothing) with its own
// name as password, unless it exists: what Terraform's IAM users are in
// production. Roles are shared by the whole server, so concurrent callers
// may race; the loser finds the role created.
func EnsureRoles(ctx context.Context, pool *pgxpool.Pool, users map[string]string) error {
	for _, role := range users {
		ident := pgx.Identifier{role}.Sanitize()
		lit := "'" + strings.ReplaceAll(role, "'", "''") + "'"
		_, err := pool.Exec(ctx, `DO $$ BEGIN
  CREATE ROLE `+ident+` LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD `+lit+`;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$`)
		if err != nil {
			return fmt.Errorf("create role %s: %w", role, err)
		}
	}
	return nil
}

// RoleURL is the connection URL ownerURL with role (and its local
// password, see EnsureRoles) as the user.
func RoleURL(ownerURL, role string) (string, error) {
	u, err := url.Parse(ownerURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", fmt.Errorf("database URL must be a postgres:// URL to derive the functions' URLs from it")
	}
	u.User = url.UserPassword(role, role)
	return u.String(), nil
}

// Setup is the local stack's and the tests' schema step, run as the
// owner at ownerURL: it creates the LocalRole of every database function
// of fns, applies every component under root and grants each role its
// manifest's tables. It returns each function's role.
func Setup(ctx context.Context, pool *pgxpool.Pool, root string, fns []*manifest.Manifest, out interface{ Write([]byte) (int, error) }) (map[string]string, error) {
	users := LocalUsers(fns)
	if err := EnsureRoles(ctx, pool, users); err != nil {
		return nil, err
	}
	comps, err := Discover(root, fns)
	if err != nil {
		return nil, err
	}
	if err := Up(ctx, pool, comps, out); err != nil {
		return nil, err
	}
	plan, _ := Plan(fns, users) // every user is a database function of fns
	if err := Grant(ctx, pool, plan, out); err != nil {
		return nil, err
	}
	return users, nil
}
