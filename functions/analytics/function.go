package analytics

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"

	"example.com/platform/shared/app"
	"example.com/platform/shared/deadletter"
	"example.com/platform/shared/handler"
	"example.com/platform/shared/manifest"
	"example.com/platform/shared/retry"
	"example.com/platform/shared/warehouse"
)

// EntryPoint is the function's entry point (function.yaml entry_point).
const EntryPoint = "Analytics"

// Environment variables read besides app's common ones.
const (
	// EnvProject and EnvDataset name the analytics dataset (set by
	// Terraform). Required with the bigquery sink.
	EnvProject = "BIGQUERY_PROJECT"
	EnvDataset = "BIGQUERY_DATASET"
	// EnvSink selects the sink: bigquery (default), jsonl or memory. The
	// last two are for local runs and log a WARNING at start.
	EnvSink = "ANALYTICS_SINK"
	// EnvJSONLPath is the jsonl sink's file (default analytics-events.jsonl).
	EnvJSONLPath = "ANALYTICS_JSONL_PATH"
	// EnvInsertTimeout bounds one insert including the client's own
	// retries (Go duration, default 10s).
	EnvInsertTimeout = "BIGQUERY_INSERT_TIMEOUT"
)

// Handler time budget: below the function's 30s timeout, with room for two
// inserts of DefaultInsertTimeout.
const (
	handlerTimeout = 25 * time.Second
	retryAttempts  = 2
)

var lazy = app.NewLazy(buildFrom(os.Getenv), nil)

func init() {
	functions.HTTP(EntryPoint, lazy.ServeHTTP)
}

// needs is the function's environment: Pub/Sub for dead-lettering, the
// dataset when the sink is BigQuery.
func needs(getenv func(string) string) app.Needs {
	bq := getenv(EnvSink) == "" || getenv(EnvSink) == warehouse.KindBigQuery
	return app.Needs{PubSub: true, Vars: []app.Var{
		{Name: EnvSink, Default: warehouse.KindBigQuery, Check: warehouse.ValidKind},
		{Name: EnvProject, Required: bq},
		{Name: EnvDataset, Required: bq},
		{Name: EnvJSONLPath, Default: "analytics-events.jsonl"},
		{Name: EnvInsertTimeout, Default: warehouse.DefaultInsertTimeout.String(), Check: positiveDuration},
	}}
}

func positiveDuration(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return fmt.Errorf("want a positive duration such as 10s")
	}
	return nil
}

// sinkConfig is the warehouse configuration env describes.
func sinkConfig(env app.Env, logger *slog.Logger) warehouse.OpenConfig {
	timeout, _ := time.ParseDuration(env.Var(EnvInsertTimeout))
	return warehouse.OpenConfig{
		Kind:      env.Var(EnvSink),
		BigQuery:  warehouse.BigQueryConfig{Project: env.Var(EnvProject), Dataset: env.Var(EnvDataset), InsertTimeout: timeout},
		JSONLPath: env.Var(EnvJSONLPath),
		Tables:    Tables(),
		Logger:    logger,
	}
}

// buildFrom returns the build function of the production handler, reading
// the environment through getenv.
func buildFrom(getenv func(string) string) func(context.Context) (http.Handler, error) {
	return func(ctx context.Context) (http.Handler, error) { return build(ctx, getenv) }
}

func build(ctx context.Context, getenv func(string) string) (http.Handler, error) {
	n := needs(getenv)
	env, err := app.LoadEnv(getenv, n)
	if err != nil {
		return nil, err
	}
	deps, err := app.Open(ctx, env, n, nil)
	if err != nil {
		return nil, err
	}
	sink, closer, err := warehouse.Open(ctx, sinkConfig(env, deps.Logger))
	if err != nil {
		deps.Close()
		return nil, err
	}
	h, err := newHandler(&Service{Sink: sink}, deps.DeadLetter, deps.Logger, env.Function)
	if err != nil {
		closer.Close()
		deps.Close()
		return nil, err
	}
	return h, nil
}

// newHandler is the push endpoint around svc: the shared handler chain
// with no idempotency layer (BigQuery's insertId deduplicates), and a retry
// policy that leaves the time budget to the BigQuery client's own retries.
func newHandler(svc *Service, dl *deadletter.Publisher, logger *slog.Logger, consumer string) (*handler.Handler, error) {
	if consumer == "" {
		consumer = "analytics"
	}
	deps := &app.Deps{Env: app.Env{Function: consumer}, Logger: logger, DeadLetter: dl}
	return deps.Handler(svc.Record, manifest.IdempotencyNone, handler.Config{
		Consumer: consumer,
		Timeout:  handlerTimeout,
		Retry:    retry.Policy{MaxAttempts: retryAttempts},
	})
}
