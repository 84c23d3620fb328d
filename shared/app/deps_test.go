package app_test

import (
	"context"
	"testing"

	"example.com/platform/shared/app"
	"example.com/platform/shared/deadletter"
	"example.com/platform/shared/events"
	"example.com/platform/shared/handler"
	"example.com/platform/shared/manifest"
	"example.com/platform/shared/testing/pgtest"
	"example.com/platform/shared/testing/pubsubtest"
)

func TestOpenWiresDatabasePubSubAndHandler(t *testing.T) {
	ctx := context.Background()
	fake := pubsubtest.New(t)
	fake.CreateTopic(t, "shipment.dlq")
	t.Setenv("PUBSUB_EMULATOR_HOST", fake.Server.Addr)
	env, err := app.LoadEnv(getenv(map[string]string{
		"FUNCTION_NAME": "shipment", "GOOGLE_CLOUD_PROJECT": pubsubtest.Project, "DATABASE_URL": pgtest.NewDatabase(t),
	}), app.Needs{Database: true, PubSub: true})
	if err != nil {
		t.Fatal(err)
	}
	d, err := app.Open(ctx, env, app.Needs{Database: true, PubSub: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, table := range []string{"processed_events", "outbox", "orders"} {
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
	for _, mode := range []string{manifest.IdempotencyNone, manifest.IdempotencyLease, manifest.IdempotencyTransactional} {
		if _, err := d.Handler(func(context.Context, *events.Incoming) error { return nil }, mode, handlerConfig()); err != nil {
			t.Fatalf("mode %s: %v", mode, err)
		}
	}
	if _, err := d.Handler(nil, "sometimes", handlerConfig()); err == nil {
		t.Fatal("unknown mode accepted")
	}
}

func deadletterReason() deadletter.Reason { return deadletter.Reason{Consumer: "shipment"} }

func handlerConfig() handler.Config { return handler.Config{} }
