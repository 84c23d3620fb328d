package analytics

import (
	"context"
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
	"example.com/platform/shared/warehouse/sinkenv"
)

// EntryPoint is the function's entry point (function.yaml entry_point).
const EntryPoint = "Analytics"

// Environment variables read besides app's common ones (see package
// sinkenv).
const (
	// EnvProject and EnvDataset name the analytics dataset (set by
	// Terraform). Required with the bigquery sink.
	EnvProject = sinkenv.EnvProject
	EnvDataset = sinkenv.EnvDataset
	// EnvSink selects the sink: bigquery (default), jsonl or memory. The
	// last two are for local runs and log a WARNING at start.
	EnvSink = "ANALYTICS_SINK"
	// EnvJSONLPath is the jsonl sink's file (default analytics-events.jsonl).
	EnvJSONLPath = "ANALYTICS_JSONL_PATH"
	// EnvInsertTimeout bounds one insert including the client's own
	// retries (Go duration, default 10s).
	EnvInsertTimeout = sinkenv.EnvInsertTimeout
)

// sinkEnv is the function's warehouse sink configuration.
var sinkEnv = sinkenv.Config{Sink: EnvSink, JSONLPath: EnvJSONLPath, DefaultJSONLPath: "analytics-events.jsonl"}

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
	return app.Needs{PubSub: true, Vars: sinkEnv.Vars(getenv)}
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
	sink, closer, err := sinkEnv.Open(ctx, env, Tables(), deps.Logger)
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
