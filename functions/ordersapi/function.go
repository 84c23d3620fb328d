package ordersapi

import (
	"context"
	_ "embed"
	"net/http"

	"example.com/platform/shared/app"
	"example.com/platform/shared/domain"
	"example.com/platform/shared/domain/orders"
	"example.com/platform/shared/events"
)

//go:embed function.yaml
var manifestYAML []byte

// function is the registered HTTP service.
var function = app.Register(app.Function{
	Manifest:   manifestYAML,
	Migrations: []app.Migration{{Name: "orders", FS: orders.Migrations()}},
	Serve:      serve,
})

// serve is the API on d, with its readiness checks.
func serve(_ context.Context, d *app.Deps) (http.Handler, error) {
	topic, err := events.TopicFor(domain.TypeOrderCreated)
	if err != nil {
		return nil, err
	}
	svc := &Service{DB: d.DB, Outbox: d.Relay, Logger: d.Logger}
	return NewHandler(svc, Options{Checks: []Check{DatabaseCheck(d.DB), TopicCheck(d.PubSub, d.Env.Project, topic)}}), nil
}
