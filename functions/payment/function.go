// Package payment is the payment function: it consumes order.created,
// charges the customer through the payment gateway and emits
// payment.processed or payment.failed. See README.md for the gateway
// contract and the configuration.
package payment

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"

	"example.com/platform/shared/app"
	"example.com/platform/shared/breaker"
	"example.com/platform/shared/handler"
	"example.com/platform/shared/manifest"
	"example.com/platform/shared/retry"
)

// EntryPoint is the name the function is registered under (function.yaml
// entry_point).
const EntryPoint = "Payment"

// Environment variables of the function (besides app's common ones).
const (
	// EnvGatewayURL is the gateway's base URL. Required; function.yaml
	// sets the production value, the local stack the fake gateway's.
	EnvGatewayURL = "PAYMENT_GATEWAY_URL"
	// EnvGatewayTimeout bounds one HTTP call to the gateway (Go duration,
	// default 10s).
	EnvGatewayTimeout = "PAYMENT_GATEWAY_TIMEOUT"
	// EnvGatewayAPIKey is the gateway's API key (a Secret Manager secret
	// in production); optional, for a local gateway that needs none.
	EnvGatewayAPIKey = "PAYMENT_GATEWAY_API_KEY"
)

// HandlerTimeout bounds the handling of one delivery: long enough for the
// gateway client's retries, below the function's 60s timeout.
const HandlerTimeout = 50 * time.Second

// needs is the environment the function requires.
var needs = app.Needs{
	Database: true,
	PubSub:   true,
	Vars: []app.Var{
		{Name: EnvGatewayURL, Required: true, Check: CheckGatewayURL},
		{Name: EnvGatewayTimeout, Default: DefaultGatewayTimeout.String(), Check: checkTimeout},
		{Name: EnvGatewayAPIKey},
	},
}

func checkTimeout(v string) error {
	d, err := time.ParseDuration(v)
	if err != nil {
		return err
	}
	if d <= 0 {
		return fmt.Errorf("must be positive")
	}
	return nil
}

var lazy = app.NewLazy(func(ctx context.Context) (http.Handler, error) { return build(ctx, nil) }, nil)

func init() {
	functions.HTTP(EntryPoint, lazy.ServeHTTP)
}

// build reads the configuration from getenv (os.Getenv when nil), connects
// everything and returns the push endpoint. It runs once per process, so
// the gateway client and its circuit breaker are shared by every request.
func build(ctx context.Context, getenv func(string) string) (http.Handler, error) {
	env, err := app.LoadEnv(getenv, needs)
	if err != nil {
		return nil, err
	}
	timeout, _ := time.ParseDuration(env.Var(EnvGatewayTimeout)) // checked by LoadEnv
	deps, err := app.Open(ctx, env, needs, nil)
	if err != nil {
		return nil, err
	}
	gw, err := NewHTTPGateway(GatewayConfig{
		BaseURL: env.Var(EnvGatewayURL),
		APIKey:  env.Var(EnvGatewayAPIKey),
		Timeout: timeout,
		Breaker: breaker.Config{OnStateChange: breaker.LogStateChanges(deps.Logger)},
	})
	if err != nil {
		deps.Close()
		return nil, fmt.Errorf("%w: %w", app.ErrConfig, err)
	}
	h, err := newHandler(ctx, deps, gw, handler.Config{})
	if err != nil {
		deps.Close()
		return nil, err
	}
	return h, nil
}

// newHandler migrates the payments table and returns the push endpoint of
// a Service on deps and gw, in lease mode. Zero fields of cfg get the
// function's defaults: consumer and dead-letter publisher from deps,
// HandlerTimeout, and no in-process retry of the whole delivery (the gateway
// client retries its own calls; a delivery that still fails, or that finds
// its event in progress elsewhere, answers 503 so Pub/Sub redelivers with
// backoff instead of holding a request slot).
func newHandler(ctx context.Context, deps *app.Deps, gw Gateway, cfg handler.Config) (*handler.Handler, error) {
	if err := Migrate(ctx, deps.DB); err != nil {
		return nil, fmt.Errorf("migrate payments: %w", err)
	}
	svc := &Service{DB: deps.DB, Gateway: gw, Logger: deps.Logger, Publish: deps.PublishAfterCommit}
	if cfg.Timeout == 0 {
		cfg.Timeout = HandlerTimeout
	}
	if cfg.Retry == (retry.Policy{}) {
		cfg.Retry = retry.Policy{MaxAttempts: 1}
	}
	return deps.Handler(svc.Handle, manifest.IdempotencyLease, cfg)
}
