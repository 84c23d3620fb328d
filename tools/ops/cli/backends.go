package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/api/iterator"

	"example.com/platform/shared/app"
	"example.com/platform/tools/ops/dlq"
)

// database resolves the database configuration: --database-url, else
// DATABASE_URL, else the Cloud SQL DB_* variables.
func (f *flags) database() (app.Database, string, error) {
	g := f.c.Getenv
	db := app.Database{
		URL:      f.c.env(f.dbURL, app.EnvDatabaseURL),
		Instance: g(app.EnvDBInstance),
		Name:     g(app.EnvDBName),
		User:     g(app.EnvDBUser),
		IAMAuth:  !strings.EqualFold(g(app.EnvDBIAMAuth), "false"),
		IPType:   strings.ToLower(g(app.EnvDBIPType)),
	}
	if db.URL != "" {
		return db, describeURL(db.URL), nil
	}
	if db.Instance == "" || db.Name == "" || db.User == "" {
		return db, "", f.usagef("no database configured: set --database-url or DATABASE_URL (or %s, %s and %s for Cloud SQL)",
			app.EnvDBInstance, app.EnvDBName, app.EnvDBUser)
	}
	return db, fmt.Sprintf("Cloud SQL instance %s (database %s, user %s)", db.Instance, db.Name, db.User), nil
}

// describeURL names a PostgreSQL URL without its password.
func describeURL(url string) string {
	cfg, err := pgconn.ParseConfig(url)
	if err != nil {
		return "(unparsable DATABASE_URL)"
	}
	host := cfg.Host
	if strings.HasPrefix(host, "/") {
		host = "unix socket " + host
	}
	return fmt.Sprintf("postgres at %s:%d (database %s, user %s)", host, cfg.Port, cfg.Database, cfg.User)
}

// openDB connects and pings the database within --timeout.
func (f *flags) openDB(ctx context.Context) (*pgxpool.Pool, func(), error) {
	db, where, err := f.database()
	if err != nil {
		return nil, nil, err
	}
	if db.URL != "" {
		if _, err := pgconn.ParseConfig(db.URL); err != nil {
			return nil, nil, f.usagef("invalid database URL: %v", err)
		}
	}
	cctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	pool, closeDB, err := app.OpenDB(cctx, db)
	if err != nil {
		return nil, nil, fmt.Errorf("database %s: %w", where, err)
	}
	if err := pool.Ping(cctx); err != nil {
		closeDB()
		if cctx.Err() != nil {
			return nil, nil, fmt.Errorf("database %s unreachable within %s: %w", where, f.timeout, err)
		}
		return nil, nil, fmt.Errorf("database %s unreachable: %w", where, err)
	}
	return pool, closeDB, nil
}

// projectID returns the Pub/Sub project, or a usage error.
func (f *flags) projectID() (string, error) {
	p := f.c.env(f.project, app.EnvProject)
	if p == "" {
		return "", f.usagef("no project configured: set --project or GOOGLE_CLOUD_PROJECT")
	}
	return p, nil
}

func (f *flags) describePubSub(project string) string {
	if h := f.c.Getenv("PUBSUB_EMULATOR_HOST"); h != "" {
		return fmt.Sprintf("pubsub emulator at %s (project %s)", h, project)
	}
	return fmt.Sprintf("pubsub (project %s)", project)
}

// openPubSub returns a client for the project, checked reachable (one
// topics.list page) within --timeout when probe is set.
func (f *flags) openPubSub(ctx context.Context, probe bool) (*pubsub.Client, string, error) {
	project, err := f.projectID()
	if err != nil {
		return nil, "", err
	}
	where := f.describePubSub(project)
	client, err := app.NewPubSubAt(ctx, project, f.c.Getenv("PUBSUB_EMULATOR_HOST"))
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", where, err)
	}
	if probe {
		cctx, cancel := context.WithTimeout(ctx, f.timeout)
		defer cancel()
		it := client.TopicAdminClient.ListTopics(cctx, &pubsubpb.ListTopicsRequest{Project: "projects/" + project, PageSize: 1})
		if _, err := it.Next(); err != nil && !errors.Is(err, iterator.Done) {
			client.Close()
			return nil, "", fmt.Errorf("%s unreachable within %s: %w", where, f.timeout, err)
		}
	}
	return client, project, nil
}

// openArchive returns the configured dead-letter archive; each call on it
// is bounded by --timeout.
func (f *flags) openArchive(ctx context.Context) (dlq.Archive, func(), error) {
	spec := f.c.env(f.archive, "EVENTCTL_ARCHIVE")
	if spec == "" && f.c.Getenv("BIGQUERY_DATASET") != "" {
		spec = "bigquery"
	}
	kind, arg, _ := strings.Cut(spec, ":")
	switch kind {
	case "":
		return nil, nil, f.usagef("no dead-letter archive configured: set --archive (jsonl:PATH or bigquery) or BIGQUERY_DATASET")
	case "jsonl":
		if arg == "" {
			return nil, nil, f.usagef("--archive jsonl: needs a path (jsonl:/path/dead_letters.jsonl)")
		}
		return timeoutArchive{&dlq.JSONL{Path: arg}, f}, func() {}, nil
	case "bigquery", "bq":
		cfg := dlq.BigQueryConfig{
			Project:  f.c.Getenv("BIGQUERY_PROJECT"),
			Dataset:  f.c.Getenv("BIGQUERY_DATASET"),
			Table:    f.c.Getenv("BIGQUERY_DEAD_LETTER_TABLE"),
			Endpoint: f.c.Getenv("BIGQUERY_EMULATOR_HOST"),
		}
		if cfg.Project == "" {
			cfg.Project = f.c.env(f.project, app.EnvProject)
		}
		if arg != "" {
			parts := strings.Split(arg, ".")
			if len(parts) < 2 || len(parts) > 3 || slicesContainsEmpty(parts) {
				return nil, nil, f.usagef("invalid --archive %q: want bigquery:PROJECT.DATASET[.TABLE]", spec)
			}
			cfg.Project, cfg.Dataset = parts[0], parts[1]
			if len(parts) == 3 {
				cfg.Table = parts[2]
			}
		}
		if err := cfg.Validate(); err != nil {
			return nil, nil, f.usagef("%v", err)
		}
		bq, err := dlq.NewBigQuery(ctx, cfg)
		if err != nil {
			return nil, nil, fmt.Errorf("archive: %w", err)
		}
		return timeoutArchive{bq, f}, func() { bq.Close() }, nil
	default:
		return nil, nil, f.usagef("invalid --archive %q: want jsonl:PATH, bigquery or bigquery:PROJECT.DATASET[.TABLE]", spec)
	}
}

func slicesContainsEmpty(s []string) bool {
	for _, p := range s {
		if p == "" {
			return true
		}
	}
	return false
}

// timeoutArchive bounds every call by --timeout and says so when it runs out.
type timeoutArchive struct {
	dlq.Archive
	f *flags
}

func (t timeoutArchive) List(ctx context.Context, filter dlq.Filter) ([]dlq.Entry, error) {
	cctx, cancel := context.WithTimeout(ctx, t.f.timeout)
	defer cancel()
	out, err := t.Archive.List(cctx, filter)
	return out, t.wrap(cctx, err)
}

func (t timeoutArchive) Get(ctx context.Context, id string) (dlq.Entry, error) {
	cctx, cancel := context.WithTimeout(ctx, t.f.timeout)
	defer cancel()
	out, err := t.Archive.Get(cctx, id)
	return out, t.wrap(cctx, err)
}

func (t timeoutArchive) wrap(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil && !errors.Is(err, dlq.ErrNotFound) {
		return fmt.Errorf("%w (archive %s not reachable within %s)", err, t.Archive, t.f.timeout)
	}
	return err
}
