// Package orderstats is the worked example of the README's "Adding a
// function": a transactional consumer of order.created that keeps, per
// customer, the number and total of the customer's orders. Each event
// counts once, however often Pub/Sub delivers it.
package orderstats

import (
	"context"
	"embed"

	"github.com/jackc/pgx/v5"

	"example.com/platform/shared/app"
	"example.com/platform/shared/domain"
	"example.com/platform/shared/handler"
)

// EntryPoint is the function's entry point (function.yaml entry_point).
const EntryPoint = "OrderStats"

var (
	//go:embed function.yaml
	manifestYAML []byte
	//go:embed migrations/*.sql
	migrations embed.FS
)

var _ = app.Register(app.Function{
	Manifest:   manifestYAML,
	Migrations: []app.Migration{{Name: "orderstats", FS: migrations, Dir: "migrations"}},
	Consumer:   app.Transactional(newService, (*Service).Handle),
})

// Service counts orders inside each delivery's transaction.
type Service struct{}

func newService(context.Context, *app.Deps) (*Service, error) { return &Service{}, nil }

// Handle adds the order to its customer's stats; it emits nothing.
func (*Service) Handle(ctx context.Context, tx pgx.Tx, ev handler.Event[domain.OrderCreated]) ([]handler.Out, error) {
	_, err := tx.Exec(ctx, `
INSERT INTO customer_stats (customer_id, currency, orders, total) VALUES ($1, $2, 1, $3)
ON CONFLICT (customer_id, currency)
DO UPDATE SET orders = customer_stats.orders + 1, total = customer_stats.total + EXCLUDED.total`,
		ev.Data.CustomerID, ev.Data.Currency, ev.Data.Total)
	return nil, err
}
