package outbox_test

import (
	"context"
	"log"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"example.com/platform/shared/messaging"
	"example.com/platform/shared/outbox"
)

// The write side of a handler: the business rows and the outbox row commit
// together; after the commit the message goes out at once, and whatever
// that fast path could not publish is left to the background relay.
func Example() {
	ctx := context.Background()
	var (
		pool      *pgxpool.Pool       // opened at start, outbox.Migrate applied
		publisher messaging.Publisher // messaging.NewPubSub(client)
	)
	relay, err := outbox.NewRelay(outbox.Config{Pool: pool, Publisher: publisher})
	if err != nil {
		log.Fatal(err)
	}
	go relay.Run(ctx, 5*time.Second) //nolint:errcheck // only fails on a bad interval

	var id int64
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO orders (id) VALUES ($1)`, "o-1"); err != nil {
			return err
		}
		id, err = outbox.Write(ctx, tx, "order.created", messaging.Message{
			Data:        []byte(`{"order_id":"o-1"}`),
			Attributes:  map[string]string{"ce-type": "com.example.orders.order.created.v1"},
			OrderingKey: "o-1",
		})
		return err
	})
	if err != nil {
		log.Fatal(err)
	}
	// Best effort: an error here is not the request's failure, the relay
	// publishes the row later.
	if _, err := relay.PublishAfterCommit(ctx, id); err != nil {
		log.Print(err)
	}
}
