package migrate

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"

	"example.com/platform/shared/postgres"
)

func migrator(pool *pgxpool.Pool, c Component) (*postgres.Migrator, error) {
	return postgres.NewMigrator(pool, c.Name, os.DirFS(c.Dir))
}

// Up applies the pending migrations of every component, in order, and
// writes one line per applied file to out. It stops at the first failure
// (that file's transaction is rolled back).
func Up(ctx context.Context, pool *pgxpool.Pool, comps []Component, out io.Writer) error {
	for _, c := range comps {
		m, err := migrator(pool, c)
		if err != nil {
			return err
		}
		res, err := m.Up(ctx)
		m.Close()
		for _, r := range res {
			if r.Error == nil {
				fmt.Fprintf(out, "%s: applied %s (%s)\n", c.Name, r.Source.Path, r.Duration.Round(1e6))
			}
		}
		if err != nil {
			return err
		}
		if len(res) == 0 {
			fmt.Fprintf(out, "%s: up to date\n", c.Name)
		}
	}
	return nil
}

// Down rolls back the most recent migration of c.
func Down(ctx context.Context, pool *pgxpool.Pool, c Component, out io.Writer) error {
	m, err := migrator(pool, c)
	if err != nil {
		return err
	}
	defer m.Close()
	res, err := m.Down(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s: rolled back %s\n", c.Name, res.Source.Path)
	return nil
}

// Status writes every migration of every component and its state
// (applied with its time, or pending) to out, and returns the number of
// pending migrations.
func Status(ctx context.Context, pool *pgxpool.Pool, comps []Component, out io.Writer) (pending int, err error) {
	for _, c := range comps {
		m, err := migrator(pool, c)
		if err != nil {
			return pending, err
		}
		st, err := m.Status(ctx)
		m.Close()
		if err != nil {
			return pending, err
		}
		for _, s := range st {
			when := "pending"
			if s.State == "applied" {
				when = "applied " + s.AppliedAt.UTC().Format("2006-01-02 15:04:05Z")
			} else {
				pending++
			}
			fmt.Fprintf(out, "%-12s %-40s %s\n", c.Name, s.Source.Path, when)
		}
	}
	return pending, nil
}

// Select returns the component named name, or all of comps when name is
// empty.
func Select(comps []Component, name string) ([]Component, error) {
	if name == "" {
		return comps, nil
	}
	for _, c := range comps {
		if c.Name == name {
			return []Component{c}, nil
		}
	}
	names := make([]string, len(comps))
	for i, c := range comps {
		names[i] = c.Name
	}
	return nil, fmt.Errorf("migrate: unknown component %q (have %v)", name, names)
}
