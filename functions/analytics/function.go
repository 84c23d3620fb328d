package analytics

import (
	"context"
	_ "embed"

	"example.com/platform/shared/app"
	_ "example.com/platform/shared/domain" // the event types this function records
	"example.com/platform/shared/handler"
	"example.com/platform/shared/retry"
)

//go:embed function.yaml
var manifestYAML []byte

// handlerConfig: room for two inserts in the manifest's handler_timeout;
// no idempotency layer (BigQuery's insertId deduplicates).
var handlerConfig = handler.Config{Retry: retry.Policy{MaxAttempts: 2}}

// function is the registered function: a stateless consumer of every
// domain topic.
var function = app.Register(app.Function{
	Manifest: manifestYAML,
	Vars:     sinkEnv.Vars(),
	Handler:  handlerConfig,
	Consumer: app.Stateless(newService, (*Service).Record),
})

// newService opens the configured sink, closed with the function's
// dependencies.
func newService(ctx context.Context, d *app.Deps) (*Service, error) {
	sink, closer, err := sinkEnv.Open(ctx, d.Env, Tables(), d.Logger)
	if err != nil {
		return nil, err
	}
	d.OnClose(func() { closer.Close() })
	return &Service{Sink: sink}, nil
}
