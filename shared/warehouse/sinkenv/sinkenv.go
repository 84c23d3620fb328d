// Package sinkenv reads a function's warehouse sink from its environment:
// which sink (BigQuery, JSON lines or memory), the BigQuery dataset, the
// JSON-lines file and the insert timeout, as app.Var declarations that
// app.LoadEnv validates together with the rest of the configuration.
//
// It is a package of its own so that package warehouse, the sink port,
// does not depend on the function wiring of package app.
package sinkenv

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"time"

	"example.com/platform/shared/app"
	"example.com/platform/shared/warehouse"
)

// Variables shared by every function with a sink (set by Terraform).
const (
	// EnvProject and EnvDataset name the analytics dataset. Required with
	// the bigquery sink.
	EnvProject = "BIGQUERY_PROJECT"
	EnvDataset = "BIGQUERY_DATASET"
	// EnvInsertTimeout bounds one insert including the client's own
	// retries (Go duration, default warehouse.DefaultInsertTimeout).
	EnvInsertTimeout = "BIGQUERY_INSERT_TIMEOUT"
)

// Config names a function's own sink variables. The zero value is not
// usable: Sink and JSONLPath are required.
type Config struct {
	// Sink is the variable selecting the sink: bigquery (the default),
	// jsonl or memory. The last two are for local runs and log a WARNING
	// at start.
	Sink string
	// JSONLPath is the variable holding the jsonl sink's file.
	JSONLPath string
	// DefaultJSONLPath is the jsonl sink's file when JSONLPath is unset.
	DefaultJSONLPath string
}

// Vars declares the sink's variables for app.Needs.Vars: EnvProject and
// EnvDataset are required when the sink is BigQuery.
func (c Config) Vars() []app.Var {
	bq := func(getenv func(string) string) bool {
		v := strings.TrimSpace(getenv(c.Sink))
		return v == "" || v == warehouse.KindBigQuery
	}
	return []app.Var{
		{Name: c.Sink, Default: warehouse.KindBigQuery, Check: warehouse.ValidKind},
		{Name: EnvProject, RequiredIf: bq},
		{Name: EnvDataset, RequiredIf: bq},
		{Name: c.JSONLPath, Default: c.DefaultJSONLPath},
		{Name: EnvInsertTimeout, Default: warehouse.DefaultInsertTimeout.String(), Check: positiveDuration},
	}
}

var errDuration = errors.New("want a positive duration such as 10s")

func positiveDuration(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return errDuration
	}
	return nil
}

// OpenConfig is the warehouse configuration env describes (env loaded by
// app.LoadEnv with c.Vars), for the given table schemas and logger.
func (c Config) OpenConfig(env app.Env, tables map[string]warehouse.Schema, logger *slog.Logger) warehouse.OpenConfig {
	timeout, _ := time.ParseDuration(env.Var(EnvInsertTimeout))
	return warehouse.OpenConfig{
		Kind:      env.Var(c.Sink),
		BigQuery:  warehouse.BigQueryConfig{Project: env.Var(EnvProject), Dataset: env.Var(EnvDataset), InsertTimeout: timeout},
		JSONLPath: env.Var(c.JSONLPath),
		Tables:    tables,
		Logger:    logger,
	}
}

// Open opens the sink env describes with warehouse.Open and returns it with
// its closer.
func (c Config) Open(ctx context.Context, env app.Env, tables map[string]warehouse.Schema, logger *slog.Logger) (warehouse.Sink, io.Closer, error) {
	return warehouse.Open(ctx, c.OpenConfig(env, tables, logger))
}
