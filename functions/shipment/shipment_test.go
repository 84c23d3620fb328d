package shipment

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"example.com/platform/shared/domain"
	"example.com/platform/shared/domain/orders"
	"example.com/platform/shared/outbox"
	"example.com/platform/shared/retry"
	"example.com/platform/shared/testing/pgtest"
)

func paymentPayload(orderID string) domain.PaymentProcessed {
	return domain.PaymentProcessed{
		OrderID: orderID, PaymentID: uuid.NewString(), Amount: 1234, Currency: "EUR",
		GatewayReference: "gw", ProcessedAt: fixedNow,
	}
}

// TestShipRefusesAnInconsistentOrder: a paid order that already has a
// shipment (restored or hand-edited data) is a permanent error and the
// transaction writes nothing.
func TestShipRefusesAnInconsistentOrder(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	if err := orders.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if err := outbox.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if err := function.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if err := function.Migrate(ctx, pool); err != nil { // idempotent
		t.Fatal(err)
	}
	orderID := seedOrder(t, pool, orders.Paid)
	svc := &Service{}
	if _, err := (Table{}).Create(ctx, pool, Shipment{
		ID: uuid.NewString(), OrderID: orderID, PaymentID: uuid.NewString(), Carrier: "dhl",
		TrackingNumber: "DHL-OLD", EventSource: "s", EventID: "old", DispatchedAt: time.Now(),
	}); err != nil {
		t.Fatal(err)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	_, err = svc.Ship(ctx, tx, paymentSource, uuid.NewString(), paymentPayload(orderID))
	if !errors.Is(err, ErrShipmentExists) || !retry.IsPermanent(err) {
		t.Fatalf("err %v, want permanent ErrShipmentExists", err)
	}
}

// TestShipDefaults: the zero Service uses the default carriers, the real
// orders machine, the shipments table and the outbox.
func TestShipDefaults(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	for _, m := range []func(context.Context, *pgxpool.Pool) error{orders.Migrate, outbox.Migrate, function.Migrate} {
		if err := m(ctx, pool); err != nil {
			t.Fatal(err)
		}
	}
	orderID := seedOrder(t, pool, orders.Paid)
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	id := uuid.NewString()
	res, err := (&Service{}).Ship(ctx, tx, paymentSource, id, paymentPayload(orderID))
	if err != nil {
		t.Fatal(err)
	}
	defaults, _ := ParseCarriers(DefaultCarriers)
	if res.Outcome != Dispatched || res.Event.Topic != "shipment.dispatched" || res.Shipment.Carrier != ChooseCarrier(defaults, orderID) ||
		res.Shipment.ID != ShipmentID(paymentSource, id) {
		t.Fatalf("result %+v", res)
	}
	again, err := (&Service{}).Ship(ctx, tx, paymentSource, uuid.NewString(), paymentPayload(orderID))
	if err != nil || again.Outcome != AlreadyShipped || again.Event.Topic != "" {
		t.Fatalf("second event: %+v %v", again, err)
	}
	if Dispatched.String() != "dispatched" || AlreadyShipped.String() != "already_shipped" {
		t.Fatal("Outcome.String")
	}
}

// TestShipSkipsACancelledOrder: Ship reports OrderCancelled without an
// error for a cancelled order, and writes nothing.
func TestShipSkipsACancelledOrder(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	for _, m := range []func(context.Context, *pgxpool.Pool) error{orders.Migrate, outbox.Migrate, function.Migrate} {
		if err := m(ctx, pool); err != nil {
			t.Fatal(err)
		}
	}
	for _, before := range []orders.Status{orders.Paid, orders.Pending} {
		orderID := seedOrder(t, pool, before)
		if _, err := orders.Advance(ctx, pool, orderID, orders.Cancelled, "cancel"); err != nil {
			t.Fatal(err)
		}
		res, err := (&Service{}).Ship(ctx, pool, paymentSource, uuid.NewString(), paymentPayload(orderID))
		if err != nil || res.Outcome != OrderCancelled || res.Outcome.String() != "order_cancelled" || res.Event.Topic != "" {
			t.Fatalf("cancelled after %s: %+v, %v", before, res, err)
		}
		if _, ok := shipmentOf(t, pool, orderID); ok {
			t.Fatal("shipment written")
		}
	}
}
