package relay

import (
	"context"
	_ "embed"
	"net/http"
	"time"

	"example.com/platform/shared/app"
	"example.com/platform/shared/parking"
)

//go:embed function.yaml
var manifestYAML []byte

// Environment variables of the relay (Go durations).
const (
	EnvBudget               = "RELAY_BUDGET"          // one run; default 50s
	EnvOutboxRetention      = "OUTBOX_RETENTION"      // published rows; default 168h
	EnvIdempotencyRetention = "IDEMPOTENCY_RETENTION" // processed events; default 168h
)

var function = app.Register(app.Function{
	Manifest: manifestYAML,
	Vars: []app.Var{
		{Name: EnvBudget, Default: "50s", Check: app.PositiveDuration},
		{Name: EnvOutboxRetention, Default: "168h", Check: app.PositiveDuration},
		{Name: EnvIdempotencyRetention, Default: "168h", Check: app.PositiveDuration},
	},
	Serve: func(_ context.Context, d *app.Deps) (http.Handler, error) {
		duration := func(name string) time.Duration { v, _ := time.ParseDuration(d.Env.Var(name)); return v } // checked by app
		return &Service{Relay: d.Relay, Idempotency: d.Idempotency, Parking: parking.New(d.DB), Logger: d.Logger, Budget: duration(EnvBudget),
			OutboxRetention: duration(EnvOutboxRetention), IdempotencyRetention: duration(EnvIdempotencyRetention)}, nil
	},
})
