package shipment

import (
	"context"
	"embed"

	"example.com/platform/shared/app"
	"example.com/platform/shared/domain/orders"
)

// EntryPoint is the function's entry point (function.yaml entry_point).
const EntryPoint = "Shipment"

// EnvCarriers names the environment variable holding the comma-separated
// carrier codes (default DefaultCarriers); see ParseCarriers.
const EnvCarriers = "SHIPMENT_CARRIERS"

var (
	//go:embed function.yaml
	manifestYAML []byte
	//go:embed migrations/*.sql
	migrations embed.FS
)

// function is the registered function: transactional consumer of
// payment.processed (the mode follows from Service.Handle's type).
var function = app.Register(app.Function{
	Manifest:   manifestYAML,
	Vars:       []app.Var{{Name: EnvCarriers, Default: DefaultCarriers, Check: func(v string) error { _, err := ParseCarriers(v); return err }}},
	Migrations: []app.Migration{{Name: "orders", FS: orders.Migrations()}, {Name: "shipment", FS: migrations, Dir: "migrations"}},
	Consumer:   app.Transactional(newService, (*Service).Handle),
})

func newService(_ context.Context, d *app.Deps) (*Service, error) {
	carriers, err := ParseCarriers(d.Env.Var(EnvCarriers)) // checked by app
	return &Service{Carriers: carriers, Logger: d.Logger}, err
}
