package app_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"

	"example.com/platform/shared/app"
	"example.com/platform/shared/deadletter"
	"example.com/platform/shared/events"
	"example.com/platform/shared/handler"
	"example.com/platform/shared/testing/pgtest"
	"example.com/platform/shared/testing/pubsubtest"
)

func TestOpenWiresDatabasePubSubAndHandler(t *testing.T) {
	ctx := context.Background()
	fake := pubsubtest.New(t)
	fake.CreateTopic(t, "shipment.dlq")
	t.Setenv("PUBSUB_EMULATOR_HOST", fake.Server.Addr)
	env, err := app.LoadEnv(getenv(map[string]string{
		"FUNCTION_NAME": "shipment", "GOOGLE_CLOUD_PROJECT": pubsubtest.Project, "DATABASE_URL": pgtest.NewDatabase(t), "DB_MIGRATE": "true",
	}), app.Needs{Database: true, PubSub: true})
	if err != nil {
		t.Fatal(err)
	}
	d, err := app.Open(ctx, env, app.Needs{Database: true, PubSub: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, table := range []string{"processed_events", "outbox"} {
		var ok bool
		if err := d.DB.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", table).Scan(&ok); err != nil || !ok {
			t.Fatalf("table %s missing (err %v)", table, err)
		}
	}
	if d.Relay == nil || d.Idempotency == nil || d.DeadLetter.Topic != "shipment.dlq" {
		t.Fatalf("deps %+v", d)
	}
	// The dead-letter publisher reaches the emulator through PUBSUB_EMULATOR_HOST.
	if _, err := d.DeadLetter.Publish(ctx, events.Incoming{}.Message, deadletterReason()); err != nil {
		t.Fatal(err)
	}
	if n := len(fake.Server.Messages()); n != 1 {
		t.Fatalf("messages on the emulator: %d", n)
	}
	consumers := []handler.Consumer{
		handler.Stateless(func(context.Context, handler.Event[events.Payload]) error { return nil }),
		handler.Lease(func(context.Context, *handler.Claim, handler.Event[events.Payload]) ([]byte, error) { return nil, nil }),
		handler.Transactional(func(context.Context, pgx.Tx, handler.Event[events.Payload]) ([]handler.Out, error) { return nil, nil }),
		handler.Raw(func(context.Context, *events.Incoming, error) error { return nil }),
	}
	for _, c := range consumers {
		if _, err := d.Handler(c, handlerConfig()); err != nil {
			t.Fatalf("mode %s: %v", c.Mode(), err)
		}
	}
	if _, err := d.Handler(handler.Consumer{}, handlerConfig()); !errors.Is(err, handler.ErrNoFunction) {
		t.Fatalf("a consumer without a function: %v", err)
	}
	// Without a database there is no store: a transactional consumer is
	// refused with an error that says what is missing.
	noDB := &app.Deps{Env: app.Env{Function: "f"}}
	if _, err := noDB.Handler(consumers[2], handlerConfig()); !errors.Is(err, handler.ErrNoTxStore) {
		t.Fatalf("transactional without a store: %v", err)
	}
}

func deadletterReason() deadletter.Reason { return deadletter.Reason{Consumer: "shipment"} }

func handlerConfig() handler.Config { return handler.Config{} }
