// Command migrate is the schema step of a deploy: it applies the goose
// migrations of every component (the kernel's, the shared domain's and
// each database function's, found by convention under the repository
// root; see package example.com/platform/tools/migrate) as the schema's
// owner, then grants each function's database role what its manifest's
// tables: declares and revokes the rest.
//
//	migrate up [component]      apply pending migrations (all: then grant)
//	migrate status [component]  list migrations and whether applied; exit 3 if any is pending
//	migrate down component      roll back the component's latest migration
//
// Environment (as app.LoadEnv reads it): DATABASE_URL locally, otherwise
// DB_INSTANCE_CONNECTION_NAME, DB_NAME, DB_USER, DB_IAM_AUTH, DB_IP_TYPE
// (Cloud SQL connector, IAM authentication). MIGRATE_FUNCTION_USERS, a JSON
// object of function name to database user, selects the grants of "up";
// without it "up" grants nothing. MIGRATE_ROOT is the repository root
// (default: the nearest directory above holding topics.yaml; the image
// sets /repo). The deploy's Cloud Run job runs "migrate up"
// (docs/infrastructure.md).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"example.com/platform/shared/app"
	"example.com/platform/tools/migrate"
)

// Environment variables of the tool (the database ones are app's).
const (
	EnvUsers = "MIGRATE_FUNCTION_USERS"
	EnvRoot  = "MIGRATE_ROOT"
)

// exitPending is status's exit code when a migration is pending.
const exitPending = 3

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(Main(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

const usage = `usage: migrate up|status|down [component]
  up [component]      apply pending migrations; without a component, then grant MIGRATE_FUNCTION_USERS
  status [component]  list every migration and whether it is applied (exit 3 if any is pending)
  down component      roll back the component's most recent migration
`

// Main runs the command with args, reading the environment through getenv,
// and returns the exit code.
func Main(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) < 1 || len(args) > 2 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, component := args[0], ""
	if len(args) == 2 {
		component = args[1]
	}
	switch cmd {
	case "up", "status":
	case "down":
		if component == "" {
			fmt.Fprint(stderr, "migrate down: name the component to roll back\n"+usage)
			return 2
		}
	default:
		fmt.Fprint(stderr, usage)
		return 2
	}
	if err := run(ctx, cmd, component, getenv, stdout); err != nil {
		if errors.Is(err, errPending) {
			fmt.Fprintln(stderr, "migrate:", err)
			return exitPending
		}
		fmt.Fprintln(stderr, "migrate:", err)
		return 1
	}
	return 0
}

var errPending = errors.New("migrations pending")

func run(ctx context.Context, cmd, component string, getenv func(string) string, out io.Writer) error {
	env, err := app.LoadEnv(func(k string) string {
		if k == app.EnvFunction && getenv(k) == "" {
			return "migrate"
		}
		return getenv(k)
	}, app.Needs{Database: true})
	if err != nil {
		return err
	}
	var users map[string]string
	if v := getenv(EnvUsers); v != "" && cmd == "up" && component == "" {
		if users, err = migrate.ParseUsers(v); err != nil {
			return err
		}
	}
	root, err := migrate.FindRoot(getenv(EnvRoot))
	if err != nil {
		return err
	}
	fns, err := migrate.Functions(root)
	if err != nil {
		return err
	}
	comps, err := migrate.Discover(root, fns)
	if err != nil {
		return err
	}
	if comps, err = migrate.Select(comps, component); err != nil {
		return err
	}
	var plan []migrate.Privileges
	if users != nil {
		var warnings []string
		plan, warnings = migrate.Plan(fns, users)
		for _, w := range warnings {
			fmt.Fprintln(out, "grant: WARNING: "+w)
		}
	}
	env.Database.MaxConns = 4
	pool, closeDB, err := app.OpenDB(ctx, env.Database)
	if err != nil {
		return err
	}
	defer closeDB()
	switch cmd {
	case "up":
		if err := migrate.Up(ctx, pool, comps, out); err != nil {
			return err
		}
		switch {
		case component != "":
			fmt.Fprintln(out, "grants unchanged (run migrate up without a component to grant)")
		case users == nil:
			fmt.Fprintln(out, "grants unchanged: "+EnvUsers+" is not set")
		default:
			return migrate.Grant(ctx, pool, plan, out)
		}
		return nil
	case "status":
		n, err := migrate.Status(ctx, pool, comps, out)
		if err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%w: %d", errPending, n)
		}
		return nil
	default:
		return migrate.Down(ctx, pool, comps[0], out)
	}
}
