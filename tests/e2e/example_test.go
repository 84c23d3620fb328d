package e2e_test

import (
	"context"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"example.com/platform/shared/domain"
	"example.com/platform/shared/events"
	"example.com/platform/tools/localstack/stack"
)

// TestWorkedExample builds the README's worked example
// (docs/examples/orderstats) and runs it in the local stack, alone, with
// every push delivered twice: each customer's stats count each order once.
func TestWorkedExample(t *testing.T) {
	s := start(t, stack.Options{
		ExtraFunctions: []string{"docs/examples/orderstats"},
		Functions:      []string{"orderstats"},
		Programs:       []stack.Program{}, // no payment gateway
		BackoffScale:   backoffScale,
		Duplicate:      true,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pub := s.Client.Publisher(domain.TopicOrderCreated)
	pub.EnableMessageOrdering = true
	defer pub.Stop()
	type stats struct{ orders, total int64 }
	want := map[string]stats{}
	customers := []string{"ada", "grace", "edsger"}
	for i := range 12 {
		o := domain.OrderCreated{
			OrderID: uuid.NewString(), CustomerID: customers[i%len(customers)], Currency: "EUR",
			Items: []domain.LineItem{{SKU: "SKU-1", Quantity: 1, UnitPrice: int64(100 + i)}}, Total: int64(100 + i),
			CreatedAt: time.Now().UTC(),
		}
		_, m, err := events.NewMessage(ctx, "//example.com/tests", o)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pub.Publish(ctx, &pubsub.Message{Data: m.Data, Attributes: m.Attributes, OrderingKey: m.OrderingKey}).Get(ctx); err != nil {
			t.Fatal(err)
		}
		w := want[o.CustomerID]
		want[o.CustomerID] = stats{w.orders + 1, w.total + o.Total}
	}
	if err := s.WaitQuiet(ctx); err != nil {
		t.Fatal(err)
	}
	db, err := pgx.Connect(ctx, s.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	got := map[string]stats{}
	rows, _ := db.Query(ctx, "SELECT customer_id, orders, total FROM customer_stats WHERE currency = 'EUR'")
	for rows.Next() {
		var c string
		var st stats
		if err := rows.Scan(&c, &st.orders, &st.total); err != nil {
			t.Fatal(err)
		}
		got[c] = st
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("stats %v, want %v", got, want)
	}
	for c, w := range want {
		if got[c] != w {
			t.Errorf("%s: %+v, want %+v (each order counted once)", c, got[c], w)
		}
	}
}
