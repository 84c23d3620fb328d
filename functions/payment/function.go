package payment

import (
	"context"
	"embed"

	"example.com/platform/shared/app"
	"example.com/platform/shared/domain/orders"
)

var (
	//go:embed function.yaml
	manifestYAML []byte
	//go:embed migrations/*.sql
	migrations embed.FS
)

// function is the registered function: a lease consumer of the order.created
// topic (order.created and order.cancelled).
var function = app.Register(app.Function{
	Manifest:   manifestYAML,
	Vars:       gatewayVars,
	Migrations: []app.Migration{{Name: "orders", FS: orders.Migrations()}, {Name: "payment", FS: migrations, Dir: "migrations"}},
	Handler:    handlerConfig,
	Consumer:   app.Lease(newService, (*Service).Handle),
})

// newService builds the Service once per process, so every request shares
// the gateway client and its circuit breaker.
func newService(_ context.Context, d *app.Deps) (*Service, error) {
	gw, err := GatewayFromEnv(d.Env, d.Logger)
	return &Service{DB: d.DB, Gateway: gw, Logger: d.Logger}, err
}
