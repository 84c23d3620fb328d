package shipment

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"net/http"
	"strings"

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"
	"github.com/jackc/pgx/v5/pgxpool"

	"example.com/platform/shared/app"
	"example.com/platform/shared/handler"
	"example.com/platform/shared/manifest"
	"example.com/platform/shared/postgres"
)

// EntryPoint is the function's entry point (function.yaml entry_point).
const EntryPoint = "Shipment"

// EnvCarriers names the environment variable holding the comma-separated
// carrier codes (default DefaultCarriers); see ParseCarriers.
const EnvCarriers = "SHIPMENT_CARRIERS"

// needs is what the function requires from its environment: PostgreSQL,
// Pub/Sub (FUNCTION_NAME, GOOGLE_CLOUD_PROJECT, DATABASE_URL or the DB_*
// variables; DEAD_LETTER_TOPIC defaults to shipment.dlq) and the carriers.
var needs = app.Needs{
	Database: true,
	PubSub:   true,
	Vars: []app.Var{{
		Name:    EnvCarriers,
		Default: DefaultCarriers,
		Check:   func(v string) error { _, err := ParseCarriers(v); return err },
	}},
}

// lazy is what the framework calls: it builds the handler from the
// environment on the first request, so importing the package (tests, the
// framework's registration) dials nothing.
var lazy = app.NewLazy(func(ctx context.Context) (http.Handler, error) { return build(ctx, nil) }, nil)

func init() {
	functions.HTTP(EntryPoint, lazy.ServeHTTP)
}

// build reads the configuration from getenv (os.Getenv when nil), connects
// and migrates, and returns the push endpoint. Configuration errors wrap
// app.ErrConfig and list everything missing or invalid at once.
func build(ctx context.Context, getenv func(string) string) (http.Handler, error) {
	env, err := app.LoadEnv(getenv, needs)
	if err != nil {
		return nil, err
	}
	carriers, err := ParseCarriers(env.Var(EnvCarriers))
	if err != nil { // already checked by LoadEnv
		return nil, fmt.Errorf("%w: %s: %v", app.ErrConfig, EnvCarriers, err)
	}
	deps, err := app.Open(ctx, env, needs, nil)
	if err != nil {
		return nil, err
	}
	if err := Migrate(ctx, deps.DB); err != nil {
		deps.Close()
		return nil, fmt.Errorf("migrate shipment: %w", err)
	}
	deps.Logger.Info("shipment function ready", "carriers", strings.Join(carriers, ","))
	h, err := newHandler(deps, &Service{Carriers: carriers})
	if err != nil {
		deps.Close()
		return nil, err
	}
	return h, nil
}

// newHandler wraps svc in the standard push chain with transactional
// idempotency (consumer: the function name), dead-lettering to deps'
// dead-letter topic and publishing of the outbox rows after commit.
func newHandler(deps *app.Deps, svc *Service) (*handler.Handler, error) {
	return deps.Handler(svc.Handle, manifest.IdempotencyTransactional, handler.Config{Consumer: deps.Env.Function})
}

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate creates or updates the shipments table. It needs the orders schema
// (app.Open applies it first) and is safe to run from every instance at once.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	return postgres.Migrate(ctx, pool, "shipment", sub)
}
