package payment

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"example.com/platform/shared/breaker"
	"example.com/platform/shared/deadletter"
	"example.com/platform/shared/domain"
	"example.com/platform/shared/domain/fakegateway"
	"example.com/platform/shared/domain/orders"
	"example.com/platform/shared/events"
	"example.com/platform/shared/idempotency"
	"example.com/platform/shared/retry"
)

func TestApprovedOrderIsPaidAndAnnounced(t *testing.T) {
	for _, shape := range []struct {
		name string
		push func(*testing.T, string, messagingMessage) int
	}{{"binary", push}, {"eventarc", pushEnvelope}} {
		t.Run(shape.name, func(t *testing.T) {
			e := newEnv(t, options{})
			o, m := e.order("cust-1", 4200)
			want(t, "status code", shape.push(t, e.url, m), http.StatusNoContent)
			want(t, "order status", e.status(o.OrderID), orders.Paid)

			charges := e.gw.Charges()
			if len(charges) != 1 {
				t.Fatalf("charges %+v", charges)
			}
			c := charges[0]
			want(t, "idempotency key", c.Key, key(m))
			want(t, "charged amount", c.Amount, int64(4200))
			want(t, "charged customer", c.CustomerID, "cust-1")
			want(t, "charged order", c.OrderID, o.OrderID)

			pays := e.payments(o.OrderID)
			if len(pays) != 1 || pays[0].Status != "approved" || pays[0].Reference != c.Reference || !pays[0].Moved || pays[0].Key != key(m) {
				t.Fatalf("payments %+v", pays)
			}
			msgs := published(e.pubsub, "payment.processed", o.OrderID)
			if len(msgs) != 1 {
				t.Fatalf("payment.processed messages: %d", len(msgs))
			}
			p := decode[domain.PaymentProcessed](t, msgs[0])
			want(t, "event payment id", p.PaymentID, pays[0].ID)
			want(t, "event reference", p.GatewayReference, c.Reference)
			want(t, "event amount", p.Amount, int64(4200))
			want(t, "event type", msgs[0].Attributes[events.AttrType], domain.TypePaymentProcessed)
			want(t, "event source", msgs[0].Attributes[events.AttrSource], Source)
			want(t, "ordering key", msgs[0].OrderingKey, o.OrderID)
			if n := len(published(e.pubsub, "payment.failed", "")) + len(published(e.pubsub, "payment.dlq", "")); n != 0 {
				t.Fatalf("unexpected failed/dead-lettered messages: %d", n)
			}
			hist, _ := orders.History(context.Background(), e.deps.DB, o.OrderID)
			if len(hist) != 1 || hist[0] != orders.Paid {
				t.Fatalf("history %v", hist)
			}
			rec, err := e.deps.Idempotency.Inspect(context.Background(), idempotency.Key{Consumer: "payment", ID: key(m)})
			if err != nil || rec.Status != idempotency.StatusDone || !strings.Contains(string(rec.Result), pays[0].ID) {
				t.Fatalf("claim record %+v %v", rec, err)
			}
		})
	}
}

func TestDeclineIsABusinessOutcome(t *testing.T) {
	for _, status := range []int{http.StatusPaymentRequired, http.StatusOK} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			e := newEnv(t, options{})
			must(t, e.gw.SetCustomer("broke", fakegateway.Behavior{Mode: fakegateway.Decline, DeclineCode: "insufficient_funds", DeclineStatus: status}))
			o, m := e.order("broke", 999)
			want(t, "status code", push(t, e.url, m), http.StatusNoContent)
			want(t, "order status", e.status(o.OrderID), orders.PaymentFailed)
			pays := e.payments(o.OrderID)
			if len(pays) != 1 || pays[0].Status != "declined" || pays[0].DeclineCode != "insufficient_funds" || pays[0].Reference != "" {
				t.Fatalf("payments %+v", pays)
			}
			msgs := published(e.pubsub, "payment.failed", o.OrderID)
			if len(msgs) != 1 {
				t.Fatalf("payment.failed messages: %d", len(msgs))
			}
			f := decode[domain.PaymentFailed](t, msgs[0])
			want(t, "reason", f.Reason, ReasonDeclined)
			want(t, "decline code", f.DeclineCode, "insufficient_funds")
			want(t, "amount", f.Amount, int64(999))
			if len(published(e.pubsub, "payment.processed", "")) != 0 || len(published(e.pubsub, "payment.dlq", "")) != 0 {
				t.Fatal("a decline was announced as processed or dead-lettered")
			}
		})
	}
}

func TestGateway5xxIsRetriedWithTheSameKey(t *testing.T) {
	e := newEnv(t, options{})
	o, m := e.order("cust", 100)
	must(t, e.gw.SetOrder(o.OrderID, fakegateway.Behavior{Mode: fakegateway.Fail, Status: 503, Times: 2}))
	want(t, "status code", push(t, e.url, m), http.StatusNoContent)
	want(t, "order status", e.status(o.OrderID), orders.Paid)
	want(t, "gateway requests", e.gw.RequestsFor(key(m)), 3)
	want(t, "gateway charges", e.gw.ChargesFor(key(m)), 1)
	want(t, "processed events", len(published(e.pubsub, "payment.processed", o.OrderID)), 1)
}

func TestTransientFailureThenRedelivery(t *testing.T) {
	e := newEnv(t, options{})
	o, m := e.order("cust", 100)
	// 429 outlasts the client's three attempts: the delivery fails
	// transiently, nothing is recorded and the claim is freed.
	must(t, e.gw.SetOrder(o.OrderID, fakegateway.Behavior{Mode: fakegateway.Fail, Status: 429, Times: 3}))
	want(t, "first delivery", push(t, e.url, m), http.StatusServiceUnavailable)
	want(t, "order status after failure", e.status(o.OrderID), orders.Pending)
	if len(e.payments(o.OrderID)) != 0 {
		t.Fatal("a failed charge was recorded")
	}
	if _, err := e.deps.Idempotency.Inspect(context.Background(), idempotency.Key{Consumer: "payment", ID: key(m)}); !errors.Is(err, idempotency.ErrNotFound) {
		t.Fatalf("claim not released: %v", err)
	}
	if len(published(e.pubsub, "payment.dlq", "")) != 0 {
		t.Fatal("a transient failure was dead-lettered")
	}
	// Pub/Sub redelivers; the gateway is back.
	want(t, "redelivery", push(t, e.url, m), http.StatusNoContent)
	want(t, "order status", e.status(o.OrderID), orders.Paid)
	want(t, "gateway charges", e.gw.ChargesFor(key(m)), 1)
}

func TestGatewayTimeouts(t *testing.T) {
	t.Run("hang then redelivery", func(t *testing.T) {
		e := newEnv(t, options{timeout: 50 * time.Millisecond})
		o, m := e.order("slowpoke", 100)
		must(t, e.gw.SetCustomer("slowpoke", fakegateway.Behavior{Mode: fakegateway.Hang}))
		want(t, "delivery during the outage", push(t, e.url, m), http.StatusServiceUnavailable)
		want(t, "attempts", e.gw.RequestsFor(key(m)), 3)
		want(t, "order status", e.status(o.OrderID), orders.Pending)
		if len(e.payments(o.OrderID)) != 0 {
			t.Fatal("timed-out charge recorded")
		}
		must(t, e.gw.Clear("customer", "slowpoke"))
		want(t, "redelivery", push(t, e.url, m), http.StatusNoContent)
		want(t, "order status", e.status(o.OrderID), orders.Paid)
		want(t, "charges", e.gw.ChargesFor(key(m)), 1)
	})
	t.Run("answer lost after the charge", func(t *testing.T) {
		// The gateway charges but its answer never arrives: the retry with
		// the same Idempotency-Key learns the outcome without a second
		// charge.
		e := newEnv(t, options{timeout: 50 * time.Millisecond})
		o, m := e.order("cust", 100)
		must(t, e.gw.SetOrder(o.OrderID, fakegateway.Behavior{Mode: fakegateway.ApproveThenHang, Times: 1}))
		want(t, "status code", push(t, e.url, m), http.StatusNoContent)
		want(t, "order status", e.status(o.OrderID), orders.Paid)
		want(t, "charges", e.gw.ChargesFor(key(m)), 1)
		want(t, "requests", e.gw.RequestsFor(key(m)), 2)
		pays := e.payments(o.OrderID)
		if len(pays) != 1 || pays[0].Reference != e.gw.Charges()[0].Reference {
			t.Fatalf("payments %+v charges %+v", pays, e.gw.Charges())
		}
	})
	t.Run("slow but within the timeout", func(t *testing.T) {
		e := newEnv(t, options{timeout: 5 * time.Second})
		o, m := e.order("cust", 100)
		must(t, e.gw.SetDefault(fakegateway.Behavior{Mode: fakegateway.Approve, Delay: 20 * time.Millisecond}))
		want(t, "status code", push(t, e.url, m), http.StatusNoContent)
		want(t, "order status", e.status(o.OrderID), orders.Paid)
		want(t, "requests", e.gw.RequestsFor(key(m)), 1)
	})
}

func TestBreakerOpensAfterRepeatedFailures(t *testing.T) {
	e := newEnv(t, options{
		retry:   retry.Policy{MaxAttempts: 2, Initial: time.Millisecond, Max: time.Millisecond},
		breaker: breaker.Config{ConsecutiveFailures: 3},
	})
	must(t, e.gw.SetDefault(fakegateway.Behavior{Mode: fakegateway.Fail, Status: 503}))
	o, m := e.order("cust", 100)
	// Delivery 1: two failed attempts. Delivery 2: the third failure opens
	// the breaker and its second attempt is rejected without a call.
	want(t, "delivery 1", push(t, e.url, m), http.StatusServiceUnavailable)
	want(t, "delivery 2", push(t, e.url, m), http.StatusServiceUnavailable)
	want(t, "gateway requests", e.gw.Stats().Requests, 3)
	want(t, "breaker", e.client.Breaker().State(), breaker.StateOpen)
	// Delivery 3 of another order: rejected at once, the gateway is not
	// called at all.
	o2, m2 := e.order("cust", 100)
	want(t, "delivery 3", push(t, e.url, m2), http.StatusServiceUnavailable)
	want(t, "gateway requests", e.gw.Stats().Requests, 3)

	for _, id := range []string{o.OrderID, o2.OrderID} {
		want(t, "order status", e.status(id), orders.Pending)
		if len(e.payments(id)) != 0 {
			t.Fatal("payment recorded while the gateway was down")
		}
	}
	for _, msg := range []string{key(m), key(m2)} {
		if _, err := e.deps.Idempotency.Inspect(context.Background(), idempotency.Key{Consumer: "payment", ID: msg}); !errors.Is(err, idempotency.ErrNotFound) {
			t.Fatalf("claim not released: %v", err)
		}
	}
	if len(published(e.pubsub, "payment.dlq", "")) != 0 {
		t.Fatal("an open breaker dead-lettered")
	}
	if !strings.Contains(e.logs.String(), "circuit breaker open") {
		t.Fatalf("open breaker not in the logs:\n%s", e.logs)
	}
}

func TestDuplicateDeliveryChargesOnce(t *testing.T) {
	e := newEnv(t, options{})
	o, m := e.order("cust", 100)
	for i := range 3 {
		if code := push(t, e.url, m); code != http.StatusNoContent {
			t.Fatalf("delivery %d: %d", i, code)
		}
	}
	// The Eventarc shape of the same event is the same event.
	want(t, "envelope duplicate", pushEnvelope(t, e.url, m), http.StatusNoContent)
	want(t, "gateway requests", e.gw.RequestsFor(key(m)), 1)
	want(t, "charges", e.gw.ChargesFor(key(m)), 1)
	want(t, "payments", len(e.payments(o.OrderID)), 1)
	want(t, "processed events", len(published(e.pubsub, "payment.processed", o.OrderID)), 1)
}

func TestConcurrentDuplicatesChargeOnce(t *testing.T) {
	e := newEnv(t, options{})
	o, m := e.order("cust", 100)
	release := e.gw.Hold()
	defer release()
	const n = 20
	codes := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() { defer wg.Done(); codes <- push(t, e.url, m) }()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	must(t, e.gw.WaitRequests(ctx, 1))
	// The one delivery that holds the lease is stuck at the gateway; every
	// other one finds the event in progress and asks for redelivery.
	for i := 0; i < n-1; i++ {
		select {
		case c := <-codes:
			want(t, "concurrent duplicate", c, http.StatusServiceUnavailable)
		case <-ctx.Done():
			t.Fatalf("only %d duplicates answered", i)
		}
	}
	release()
	want(t, "lease holder", <-codes, http.StatusNoContent)
	wg.Wait()
	// Pub/Sub redelivers the 19: all acknowledged as duplicates.
	var redelivered sync.WaitGroup
	var bad atomic.Int32
	for range n - 1 {
		redelivered.Add(1)
		go func() {
			defer redelivered.Done()
			if push(t, e.url, m) != http.StatusNoContent {
				bad.Add(1)
			}
		}()
	}
	redelivered.Wait()
	want(t, "failed redeliveries", bad.Load(), int32(0))
	want(t, "gateway requests", e.gw.RequestsFor(key(m)), 1)
	want(t, "charges", e.gw.ChargesFor(key(m)), 1)
	want(t, "payments", len(e.payments(o.OrderID)), 1)
	want(t, "processed events", len(published(e.pubsub, "payment.processed", o.OrderID)), 1)
}

func TestTamperedPayloadIsDeadLettered(t *testing.T) {
	e := newEnv(t, options{})
	o, m := e.order("cust", 100)
	want(t, "original", push(t, e.url, m), http.StatusNoContent)
	forged := o
	forged.Items = []domain.LineItem{{SKU: "SKU-1", Quantity: 1, UnitPrice: 1}}
	forged.Total = 1
	fm := e.message(forged, events.WithID(m.Attributes[events.AttrID]))
	want(t, "forged", push(t, e.url, fm), http.StatusNoContent)
	dl := published(e.pubsub, "payment.dlq", o.OrderID)
	if len(dl) != 1 {
		t.Fatalf("dead letters: %d", len(dl))
	}
	if string(dl[0].Data) != string(fm.Data) || !strings.Contains(dl[0].Attributes[deadletter.AttrReason], "payload does not match") {
		t.Fatalf("dead letter %q %v", dl[0].Data, dl[0].Attributes)
	}
	want(t, "dlq consumer", dl[0].Attributes[deadletter.AttrConsumer], "payment")
	want(t, "gateway charges", e.gw.Stats().Charges, 1)
	want(t, "order status", e.status(o.OrderID), orders.Paid)
}

func TestBadPayloadsAreDeadLettered(t *testing.T) {
	e := newEnv(t, options{})
	_, good := e.order("cust", 100)
	cases := map[string]func(m messagingMessage) messagingMessage{
		"malformed JSON": func(m messagingMessage) messagingMessage { m.Data = []byte(`{"order_id":`); return m },
		"invalid payload": func(m messagingMessage) messagingMessage {
			m.Data = []byte(strings.Replace(string(m.Data), `"currency":"EUR"`, `"currency":"eur"`, 1))
			return m
		},
		"unknown type": func(m messagingMessage) messagingMessage {
			m.Attributes = clone(m.Attributes)
			m.Attributes[events.AttrType] = "com.example.orders.order.created.v9"
			return m
		},
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			m := mutate(good)
			m.Attributes = clone(m.Attributes)
			m.Attributes[events.AttrID] = name // a distinct event per case
			before := len(published(e.pubsub, "payment.dlq", ""))
			want(t, "status code", push(t, e.url, m), http.StatusNoContent)
			want(t, "dead letters", len(published(e.pubsub, "payment.dlq", "")), before+1)
		})
	}
	want(t, "gateway requests", e.gw.Stats().Requests, 0)
}

func TestUnknownOrderIsDeadLettered(t *testing.T) {
	e := newEnv(t, options{})
	o := domain.OrderCreated{
		OrderID: "0b7a3c55-8c1e-4f0e-9a57-6f2b1e2f9d10", CustomerID: "cust",
		Items: []domain.LineItem{{SKU: "A", Quantity: 1, UnitPrice: 5}}, Currency: "EUR", Total: 5, CreatedAt: time.Now().UTC(),
	}
	m := e.message(o) // never inserted
	want(t, "status code", push(t, e.url, m), http.StatusNoContent)
	dl := published(e.pubsub, "payment.dlq", o.OrderID)
	if len(dl) != 1 || !strings.Contains(dl[0].Attributes[deadletter.AttrReason], "order not found") {
		t.Fatalf("dead letters %+v", dl)
	}
	want(t, "gateway requests", e.gw.Stats().Requests, 0)
}

func TestGatewayRefusalIsPermanent(t *testing.T) {
	e := newEnv(t, options{})
	// A charge the gateway refuses as invalid (400) cannot succeed later.
	client, err := NewHTTPGateway(GatewayConfig{BaseURL: e.gw.URL, APIKey: "wrong-key", Retry: fastRetry})
	must(t, err)
	h, err := newHandler(context.Background(), e.deps, client)
	must(t, err)
	url := serve(t, h)
	o, m := e.order("cust", 100)
	want(t, "status code", push(t, url, m), http.StatusNoContent)
	dl := published(e.pubsub, "payment.dlq", o.OrderID)
	if len(dl) != 1 || !strings.Contains(dl[0].Attributes[deadletter.AttrReason], "401") {
		t.Fatalf("dead letters %+v", dl)
	}
	want(t, "attempts (a 4xx is not retried)", e.gw.Stats().Requests, 1)
	want(t, "breaker (a 4xx proves the gateway is up)", client.Breaker().State(), breaker.StateClosed)
	want(t, "order status", e.status(o.OrderID), orders.Pending)
}

func TestOrderStatusGuard(t *testing.T) {
	t.Run("late duplicate after the idempotency record was purged", func(t *testing.T) {
		e := newEnv(t, options{})
		o, m := e.order("cust", 100)
		want(t, "first", push(t, e.url, m), http.StatusNoContent)
		if _, err := e.deps.DB.Exec(context.Background(), `DELETE FROM processed_events`); err != nil {
			t.Fatal(err)
		}
		want(t, "late duplicate", push(t, e.url, m), http.StatusNoContent)
		want(t, "gateway requests", e.gw.Stats().Requests, 1)
		want(t, "order status", e.status(o.OrderID), orders.Paid)
		want(t, "payments", len(e.payments(o.OrderID)), 1)
		want(t, "processed events", len(published(e.pubsub, "payment.processed", o.OrderID)), 1)
	})
	t.Run("order already shipped", func(t *testing.T) {
		e := newEnv(t, options{})
		o, m := e.order("cust", 100)
		if _, err := e.deps.DB.Exec(context.Background(), `UPDATE orders SET status = 'shipped' WHERE id = $1`, o.OrderID); err != nil {
			t.Fatal(err)
		}
		want(t, "status code", push(t, e.url, m), http.StatusNoContent)
		want(t, "order status", e.status(o.OrderID), orders.Shipped)
		want(t, "gateway requests", e.gw.Stats().Requests, 0)
		if len(published(e.pubsub, "payment.processed", "")) != 0 {
			t.Fatal("announced a payment for a shipped order")
		}
	})
	for _, moved := range []orders.Status{orders.Paid, orders.PaymentFailed} {
		t.Run("order became "+string(moved)+" during the charge", func(t *testing.T) {
			// Another event finalises the order while the gateway answers:
			// the charge is recorded for reconciliation, the status is not
			// changed and no payment event is emitted.
			var e *env
			var orderID string
			e = newEnv(t, options{wrap: func(g Gateway) Gateway {
				return gatewayFunc(func(ctx context.Context, r ChargeRequest) (ChargeResult, error) {
					res, err := g.Charge(ctx, r)
					if _, xerr := e.deps.DB.Exec(ctx, `UPDATE orders SET status = $2 WHERE id = $1`, orderID, string(moved)); xerr != nil {
						t.Error(xerr)
					}
					return res, err
				})
			}})
			o, m := e.order("cust", 100)
			orderID = o.OrderID
			want(t, "status code", push(t, e.url, m), http.StatusNoContent)
			want(t, "order status", e.status(o.OrderID), moved)
			pays := e.payments(o.OrderID)
			if len(pays) != 1 || pays[0].Moved || pays[0].Status != "approved" {
				t.Fatalf("payments %+v", pays)
			}
			if len(published(e.pubsub, "payment.processed", "")) != 0 || len(published(e.pubsub, "payment.dlq", "")) != 0 {
				t.Fatal("announced or dead-lettered a payment for an order that moved on")
			}
			if !strings.Contains(e.logs.String(), "not announced") {
				t.Fatal("reconciliation warning not logged")
			}
		})
	}
}

func TestPanicIsTransientAndFreesTheClaim(t *testing.T) {
	var explode atomic.Bool
	explode.Store(true)
	e := newEnv(t, options{wrap: func(g Gateway) Gateway {
		return gatewayFunc(func(ctx context.Context, r ChargeRequest) (ChargeResult, error) {
			if explode.Load() {
				panic("gateway client bug")
			}
			return g.Charge(ctx, r)
		})
	}})
	o, m := e.order("cust", 100)
	if code := push(t, e.url, m); code < 500 {
		t.Fatalf("panic answered %d, want 5xx", code)
	}
	if !strings.Contains(e.logs.String(), "gateway client bug") {
		t.Fatal("panic not logged")
	}
	explode.Store(false)
	// The process survived and the claim was freed: the redelivery charges.
	want(t, "redelivery", push(t, e.url, m), http.StatusNoContent)
	want(t, "order status", e.status(o.OrderID), orders.Paid)
	want(t, "charges", e.gw.ChargesFor(key(m)), 1)
	if len(published(e.pubsub, "payment.dlq", "")) != 0 {
		t.Fatal("a panic was dead-lettered")
	}
}

func TestZeroTotalIsNotCharged(t *testing.T) {
	e := newEnv(t, options{})
	o, m := e.order("cust", 0)
	want(t, "status code", push(t, e.url, m), http.StatusNoContent)
	want(t, "order status", e.status(o.OrderID), orders.Paid)
	want(t, "gateway requests", e.gw.Stats().Requests, 0)
	want(t, "processed events", len(published(e.pubsub, "payment.processed", o.OrderID)), 1)
}

type gatewayFunc func(ctx context.Context, r ChargeRequest) (ChargeResult, error)

func (f gatewayFunc) Charge(ctx context.Context, r ChargeRequest) (ChargeResult, error) {
	return f(ctx, r)
}

func (f gatewayFunc) Refund(context.Context, RefundRequest) (RefundResult, error) {
	return RefundResult{}, retry.Permanentf("gatewayFunc makes no refunds")
}

func clone(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
