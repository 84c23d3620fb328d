package payment

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"example.com/platform/shared/deadletter"
	"example.com/platform/shared/domain"
	"example.com/platform/shared/domain/fakegateway"
	"example.com/platform/shared/domain/orders"
	"example.com/platform/shared/events"
	"example.com/platform/shared/idempotency"
)

// claimResult is the result stored with the claim of m.
func (e *env) claimResult(m messagingMessage) refundOutcome {
	e.t.Helper()
	rec, err := e.deps.Idempotency.Inspect(context.Background(), idempotency.Key{Consumer: "payment", ID: key(m)})
	if err != nil || rec.Status != idempotency.StatusDone {
		e.t.Fatalf("claim record %+v %v", rec, err)
	}
	var out refundOutcome
	if err := json.Unmarshal(rec.Result, &out); err != nil {
		e.t.Fatalf("claim result %s: %v", rec.Result, err)
	}
	return out
}

func refundKey(m messagingMessage, paymentID string) string {
	return RefundKey(idempotency.Key{Consumer: "payment", ID: key(m)}, paymentID)
}

func TestCancelAfterApprovedChargeRefundsOnce(t *testing.T) {
	e := newEnv(t, options{})
	o, created := e.order("cust", 4200)
	want(t, "charge", push(t, e.url, created), http.StatusNoContent)
	pays := e.payments(o.OrderID)
	if len(pays) != 1 || pays[0].Status != "approved" {
		t.Fatalf("payments %+v", pays)
	}
	_, m := e.cancel(o)
	want(t, "cancel", push(t, e.url, m), http.StatusNoContent)
	// Duplicates in both shapes are answered from the claim.
	want(t, "duplicate", push(t, e.url, m), http.StatusNoContent)
	want(t, "envelope duplicate", pushEnvelope(t, e.url, m), http.StatusNoContent)

	rk := refundKey(m, pays[0].ID)
	want(t, "gateway refund requests", e.gw.Stats().RefundRequests, 1)
	want(t, "gateway refunds", e.gw.RefundsFor(rk), 1)
	rf := e.gw.Refunds()
	if len(rf) != 1 || rf[0].ChargeReference != pays[0].Reference || rf[0].Amount != 4200 || rf[0].Currency != "EUR" || rf[0].OrderID != o.OrderID {
		t.Fatalf("gateway refunds %+v", rf)
	}
	want(t, "refunded at the gateway", e.gw.RefundedFor(pays[0].Reference), int64(4200))

	rows := e.refunds(o.OrderID)
	if len(rows) != 1 || rows[0].PaymentID != pays[0].ID || rows[0].Reference != rf[0].Reference || rows[0].Key != rk ||
		rows[0].Amount != 4200 || rows[0].EventID != m.Attributes[events.AttrID] || rows[0].ID != RefundID("payment", rk) {
		t.Fatalf("refund rows %+v", rows)
	}
	msgs := published(e.pubsub, "payment.refunded", o.OrderID)
	if len(msgs) != 1 {
		t.Fatalf("payment.refunded messages: %d", len(msgs))
	}
	p := decode[domain.PaymentRefunded](t, msgs[0])
	want(t, "event payment id", p.PaymentID, pays[0].ID)
	want(t, "event refund reference", p.RefundReference, rf[0].Reference)
	want(t, "event amount", p.Amount, int64(4200))
	want(t, "event currency", p.Currency, "EUR")
	want(t, "event type", msgs[0].Attributes[events.AttrType], domain.TypePaymentRefunded)
	want(t, "event id", msgs[0].Attributes[events.AttrID], rows[0].ID)
	want(t, "event source", msgs[0].Attributes[events.AttrSource], Source)
	want(t, "ordering key", msgs[0].OrderingKey, o.OrderID)
	res := e.claimResult(m)
	if res.Status != RefundStatusRefunded || len(res.Refunds) != 1 || res.Refunds[0].Reference != rf[0].Reference {
		t.Fatalf("claim result %+v", res)
	}
	want(t, "order status", e.status(o.OrderID), orders.Cancelled)
	if len(published(e.pubsub, "payment.dlq", "")) != 0 {
		t.Fatal("dead-lettered")
	}

	// A late duplicate whose idempotency record was purged finds the
	// payment refunded: no gateway call, no second event.
	if _, err := e.deps.DB.Exec(context.Background(), `DELETE FROM processed_events`); err != nil {
		t.Fatal(err)
	}
	want(t, "late duplicate", push(t, e.url, m), http.StatusNoContent)
	want(t, "gateway refund requests after the late duplicate", e.gw.Stats().RefundRequests, 1)
	want(t, "refund rows", len(e.refunds(o.OrderID)), 1)
	want(t, "refunded events", len(published(e.pubsub, "payment.refunded", o.OrderID)), 1)
	want(t, "late duplicate's result", e.claimResult(m).Status, RefundStatusNothing)
}

func TestCancelWithoutApprovedPaymentRefundsNothing(t *testing.T) {
	cases := []struct {
		name  string
		setup func(e *env, o domain.OrderCreated, created messagingMessage)
	}{
		{"never charged", func(*env, domain.OrderCreated, messagingMessage) {}},
		{"declined", func(e *env, o domain.OrderCreated, created messagingMessage) {
			must(e.t, e.gw.SetOrder(o.OrderID, fakegateway.Behavior{Mode: fakegateway.Decline}))
			want(e.t, "charge", push(e.t, e.url, created), http.StatusNoContent)
			want(e.t, "order status", e.status(o.OrderID), orders.PaymentFailed)
		}},
		{"free order", func(e *env, o domain.OrderCreated, created messagingMessage) {
			want(e.t, "charge", push(e.t, e.url, created), http.StatusNoContent)
			want(e.t, "order status", e.status(o.OrderID), orders.Paid)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, options{})
			total := int64(500)
			if c.name == "free order" {
				total = 0
			}
			o, created := e.order("cust", total)
			c.setup(e, o, created)
			_, m := e.cancel(o)
			want(t, "cancel", push(t, e.url, m), http.StatusNoContent)
			want(t, "gateway refund requests", e.gw.Stats().RefundRequests, 0)
			want(t, "refund rows", len(e.refunds(o.OrderID)), 0)
			want(t, "refunded events", len(published(e.pubsub, "payment.refunded", "")), 0)
			want(t, "dead letters", len(published(e.pubsub, "payment.dlq", "")), 0)
			want(t, "claim result", e.claimResult(m).Status, RefundStatusNothing)
			if !strings.Contains(e.logs.String(), "nothing to refund") {
				t.Fatal("nothing to refund not logged")
			}
		})
	}
}

// TestCreatedAfterTheAPICancelledChargesNothing: the API cancelled the
// order before payment saw its order.created; the charge is skipped and
// the cancellation has nothing to refund.
func TestCreatedAfterTheAPICancelledChargesNothing(t *testing.T) {
	e := newEnv(t, options{})
	o, created := e.order("cust", 700)
	_, m := e.cancel(o)
	want(t, "created", push(t, e.url, created), http.StatusNoContent)
	want(t, "cancelled", push(t, e.url, m), http.StatusNoContent)
	st := e.gw.Stats()
	want(t, "gateway charge requests", st.Requests, 0)
	want(t, "gateway refund requests", st.RefundRequests, 0)
	want(t, "payments", len(e.payments(o.OrderID)), 0)
	want(t, "order status", e.status(o.OrderID), orders.Cancelled)
	for _, topic := range []string{"payment.processed", "payment.failed", "payment.refunded", "payment.dlq"} {
		if n := len(published(e.pubsub, topic, "")); n != 0 {
			t.Fatalf("%d messages on %s", n, topic)
		}
	}
}

// TestCancelDuringTheChargeIsRefunded: the API cancels the order while the
// gateway charges it. The charge is recorded (not announced) and the
// order.cancelled event that follows refunds it.
func TestCancelDuringTheChargeIsRefunded(t *testing.T) {
	var e *env
	var order domain.OrderCreated
	var cancelled messagingMessage
	e = newEnv(t, options{wrap: func(g Gateway) Gateway {
		return chargeHook{Gateway: g, after: func() { _, cancelled = e.cancel(order) }}
	}})
	o, created := e.order("cust", 900)
	order = o
	want(t, "created", push(t, e.url, created), http.StatusNoContent)
	pays := e.payments(o.OrderID)
	if len(pays) != 1 || pays[0].Status != "approved" || pays[0].Moved {
		t.Fatalf("payments %+v", pays)
	}
	want(t, "order status", e.status(o.OrderID), orders.Cancelled)
	if len(published(e.pubsub, "payment.processed", "")) != 0 {
		t.Fatal("announced the charge of a cancelled order")
	}
	if logs := e.logs.String(); !strings.Contains(logs, "order cancelled during the charge") || strings.Contains(logs, `"level":"WARN"`) {
		t.Fatalf("logs:\n%s", logs)
	}
	want(t, "cancelled", push(t, e.url, cancelled), http.StatusNoContent)
	want(t, "refunds", e.gw.RefundsFor(refundKey(cancelled, pays[0].ID)), 1)
	want(t, "refunded", e.gw.RefundedFor(pays[0].Reference), int64(900))
	want(t, "refunded events", len(published(e.pubsub, "payment.refunded", o.OrderID)), 1)
}

func TestRefundTransientFailureThenRedelivery(t *testing.T) {
	e := newEnv(t, options{})
	o, created := e.order("cust", 300)
	want(t, "charge", push(t, e.url, created), http.StatusNoContent)
	_, m := e.cancel(o)
	// 503 outlasts the client's three attempts.
	must(t, e.gw.SetOrder(o.OrderID, fakegateway.Behavior{Mode: fakegateway.Fail, Status: 503, Times: 3}))
	want(t, "during the outage", push(t, e.url, m), http.StatusServiceUnavailable)
	want(t, "refund rows", len(e.refunds(o.OrderID)), 0)
	if _, err := e.deps.Idempotency.Inspect(context.Background(), idempotency.Key{Consumer: "payment", ID: key(m)}); err == nil {
		t.Fatal("claim kept after a transient failure")
	}
	want(t, "redelivery", push(t, e.url, m), http.StatusNoContent)
	pays := e.payments(o.OrderID)
	want(t, "gateway refund requests", e.gw.Stats().RefundRequests, 4)
	want(t, "refunds", e.gw.RefundsFor(refundKey(m, pays[0].ID)), 1)
	want(t, "refund rows", len(e.refunds(o.OrderID)), 1)
	want(t, "refunded events", len(published(e.pubsub, "payment.refunded", o.OrderID)), 1)
	want(t, "dead letters", len(published(e.pubsub, "payment.dlq", "")), 0)
}

func TestRefundAnswerLostIsLearnedWithTheSameKey(t *testing.T) {
	e := newEnv(t, options{timeout: 50 * time.Millisecond})
	o, created := e.order("cust", 300)
	want(t, "charge", push(t, e.url, created), http.StatusNoContent)
	_, m := e.cancel(o)
	must(t, e.gw.SetOrder(o.OrderID, fakegateway.Behavior{Mode: fakegateway.ApproveThenHang, Times: 1}))
	want(t, "cancel", push(t, e.url, m), http.StatusNoContent)
	pays := e.payments(o.OrderID)
	rk := refundKey(m, pays[0].ID)
	want(t, "refunds", e.gw.RefundsFor(rk), 1)
	want(t, "refund requests", e.gw.RequestsFor(rk), 2)
	if rows := e.refunds(o.OrderID); len(rows) != 1 || rows[0].Reference != e.gw.Refunds()[0].Reference {
		t.Fatalf("refund rows %+v, gateway %+v", rows, e.gw.Refunds())
	}
}

func TestRefundRefusalIsPermanent(t *testing.T) {
	e := newEnv(t, options{})
	o, _ := e.order("cust", 300)
	// An approved payment whose charge the gateway does not know (a
	// restored database, a charge made elsewhere): 404, dead-lettered.
	if _, err := e.deps.DB.Exec(context.Background(), `
INSERT INTO payments (id, idempotency_key, order_id, customer_id, amount, currency, status, gateway_reference, event_id, order_moved)
VALUES ($1, 'k', $2, 'cust', 300, 'EUR', 'approved', 'gw_unknown', 'ev', true)`, uuid.NewString(), o.OrderID); err != nil {
		t.Fatal(err)
	}
	_, m := e.cancel(o)
	want(t, "cancel", push(t, e.url, m), http.StatusNoContent)
	dl := published(e.pubsub, "payment.dlq", o.OrderID)
	if len(dl) != 1 || !strings.Contains(dl[0].Attributes[deadletter.AttrReason], "404") {
		t.Fatalf("dead letters %+v", dl)
	}
	want(t, "gateway refund requests (a 4xx is not retried)", e.gw.Stats().RefundRequests, 1)
	want(t, "refund rows", len(e.refunds(o.OrderID)), 0)
	want(t, "refunded events", len(published(e.pubsub, "payment.refunded", "")), 0)
}

// TestCancelOfAnOrderThatIsNotCancelledIsDeadLettered: an order.cancelled
// for a live order (forged, or replayed from another environment) must not
// refund it.
func TestCancelOfAnOrderThatIsNotCancelledIsDeadLettered(t *testing.T) {
	e := newEnv(t, options{})
	o, created := e.order("cust", 300)
	want(t, "charge", push(t, e.url, created), http.StatusNoContent)
	m := e.message(domain.OrderCancelled{OrderID: o.OrderID, PreviousStatus: "paid", CancelledAt: time.Now().UTC()})
	want(t, "forged cancel", push(t, e.url, m), http.StatusNoContent)
	dl := published(e.pubsub, "payment.dlq", o.OrderID)
	if len(dl) != 1 || !strings.Contains(dl[0].Attributes[deadletter.AttrReason], "order is not cancelled") {
		t.Fatalf("dead letters %+v", dl)
	}
	want(t, "gateway refund requests", e.gw.Stats().RefundRequests, 0)
	want(t, "order status", e.status(o.OrderID), orders.Paid)

	unknown := e.message(domain.OrderCancelled{OrderID: uuid.NewString(), PreviousStatus: "pending", CancelledAt: time.Now().UTC()})
	want(t, "unknown order", push(t, e.url, unknown), http.StatusNoContent)
	if dl := published(e.pubsub, "payment.dlq", unknown.Attributes[events.AttrSubject]); len(dl) != 1 ||
		!strings.Contains(dl[0].Attributes[deadletter.AttrReason], "order not found") {
		t.Fatalf("dead letters %+v", dl)
	}
}

func TestOtherEventTypesAreDeadLettered(t *testing.T) {
	e := newEnv(t, options{})
	o, _ := e.order("cust", 300)
	m := e.message(domain.PaymentProcessed{OrderID: o.OrderID, PaymentID: uuid.NewString(), Amount: 300, Currency: "EUR",
		GatewayReference: "gw", ProcessedAt: time.Now().UTC()})
	want(t, "status code", push(t, e.url, m), http.StatusNoContent)
	dl := published(e.pubsub, "payment.dlq", o.OrderID)
	if len(dl) != 1 || !strings.Contains(dl[0].Attributes[deadletter.AttrReason], "unexpected event type") {
		t.Fatalf("dead letters %+v", dl)
	}
	want(t, "gateway requests", e.gw.Stats().Requests+e.gw.Stats().RefundRequests, 0)
}

// chargeHook calls after once the wrapped gateway answered a charge.
type chargeHook struct {
	Gateway
	after func()
}

func (h chargeHook) Charge(ctx context.Context, r ChargeRequest) (ChargeResult, error) {
	res, err := h.Gateway.Charge(ctx, r)
	h.after()
	return res, err
}
