package shipment

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"example.com/platform/shared/app"
	"example.com/platform/shared/deadletter"
	"example.com/platform/shared/domain"
	"example.com/platform/shared/domain/orders"
	"example.com/platform/shared/events"
	"example.com/platform/shared/handler"
	"example.com/platform/shared/messaging"
	"example.com/platform/shared/observability"
	"example.com/platform/shared/outbox"
	"example.com/platform/shared/postgres"
	"example.com/platform/shared/retry"
	"example.com/platform/shared/testing/fftest"
	"example.com/platform/shared/testing/logbuf"
	"example.com/platform/shared/testing/pgtest"
	"example.com/platform/shared/testing/pubsubtest"
	"example.com/platform/shared/testing/pushtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

const (
	paymentSource = "//example.com/payment"
	subscription  = "projects/test-project/subscriptions/shipment--payment.processed"
	topicOut      = "shipment.dispatched"
	topicDLQ      = "shipment.dlq"
)

var (
	testCarriers = []string{"dhl", "ups", "fedex"}
	fixedNow     = time.Date(2026, 5, 1, 12, 0, 0, 123456789, time.UTC)
)

// env is one test's world: its own database, its own pstest server, the
// real app.Open wiring and the function's handler behind a real HTTP server.
type env struct {
	pool *pgxpool.Pool
	fake *pubsubtest.Fake
	url  string
}

// newEnv builds the handler with app.Open against a fresh database and a
// fresh pstest server; configure may replace the Service's dependencies.
func newEnv(t *testing.T, configure func(*Service)) *env {
	t.Helper()
	ctx := context.Background()
	fake := pubsubtest.New(t)
	fake.CreateTopic(t, topicOut)
	fake.CreateTopic(t, topicDLQ)
	t.Setenv("PUBSUB_EMULATOR_HOST", fake.Server.Addr)
	e := app.Env{
		Function:        "shipment",
		Project:         pubsubtest.Project,
		DeadLetterTopic: topicDLQ,
		Database:        app.Database{URL: pgtest.NewDatabase(t), Migrate: true},
	}
	deps, err := app.Open(ctx, e, function.Needs(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(deps.Close)
	if err := function.Migrate(ctx, deps.DB); err != nil {
		t.Fatal(err)
	}
	svc := &Service{Carriers: testCarriers, Now: func() time.Time { return fixedNow }}
	if configure != nil {
		configure(svc)
	}
	h, err := deps.Handler(handler.Transactional(svc.Handle), handler.Config{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &env{pool: deps.DB, fake: fake, url: srv.URL}
}

// seedOrder inserts an order and moves it to status along the machine.
func seedOrder(t *testing.T, q postgres.Querier, status orders.Status) string {
	t.Helper()
	ctx := context.Background()
	id := uuid.NewString()
	if _, err := q.Exec(ctx, `INSERT INTO orders (id, customer_id, currency, total, items)
VALUES ($1, 'cust-1', 'EUR', 1234, '[{"sku":"SKU-1","quantity":1,"unit_price":1234}]')`, id); err != nil {
		t.Fatal(err)
	}
	var path []orders.Status
	switch status {
	case orders.Paid:
		path = []orders.Status{orders.Paid}
	case orders.PaymentFailed:
		path = []orders.Status{orders.PaymentFailed}
	case orders.Shipped:
		path = []orders.Status{orders.Paid, orders.Shipped}
	case orders.Cancelled:
		path = []orders.Status{orders.Paid, orders.Cancelled}
	}
	for _, s := range path {
		if _, err := orders.Advance(ctx, q, id, s, "seed"); err != nil {
			t.Fatal(err)
		}
	}
	return id
}

// payment builds a payment.processed message for orderID whose trace is a
// child of the returned trace.
func payment(t *testing.T, orderID string) (messaging.Message, observability.TraceContext) {
	t.Helper()
	tc := observability.NewTrace(true)
	ctx := observability.WithTrace(context.Background(), tc)
	topic, m, err := events.NewMessage(ctx, paymentSource, domain.PaymentProcessed{
		OrderID:          orderID,
		PaymentID:        uuid.NewString(),
		Amount:           1234,
		Currency:         "EUR",
		GatewayReference: "gw_" + orderID[:8],
		ProcessedAt:      fixedNow.Add(-time.Minute),
	})
	if err != nil {
		t.Fatal(err)
	}
	if topic != "payment.processed" {
		t.Fatalf("topic %q", topic)
	}
	return m, tc
}

type shape string

const (
	binary   shape = "binary"
	eventarc shape = "eventarc"
)

var shapes = []shape{binary, eventarc}

// request builds the push of m in the given delivery shape.
func request(t testing.TB, url string, m messaging.Message, s shape) *http.Request {
	t.Helper()
	d := events.Delivery{Subscription: subscription, MessageID: "m-" + m.Attributes[events.AttrID], PublishTime: fixedNow, Attempt: 1}
	if s == binary {
		return pushtest.Binary(t, url, m, d)
	}
	return eventarcPush(t, url, m, d)
}

var eventarcPush = pushtest.Eventarc(pubsubtest.TopicName("payment.processed"))

// push delivers m and returns the status code and body.
func push(t testing.TB, url string, m messaging.Message, s shape) (int, string) {
	t.Helper()
	return pushtest.Send(t, request(t, url, m, s))
}

func mustAck(t testing.TB, url string, m messaging.Message, s shape) {
	t.Helper()
	if code, body := push(t, url, m, s); code < 200 || code > 299 {
		t.Fatalf("push (%s): status %d %s, want 2xx", s, code, body)
	}
}

// published returns the messages pstest holds for topic.
func published(f *pubsubtest.Fake, topic string) []*pstest.Message {
	var out []*pstest.Message
	for _, m := range f.Server.Messages() {
		if m.Topic == pubsubtest.TopicName(topic) {
			out = append(out, m)
		}
	}
	return out
}

func shipmentOf(t *testing.T, q postgres.Querier, orderID string) (Shipment, bool) {
	t.Helper()
	s, ok, err := Table{}.Get(context.Background(), q, orderID)
	if err != nil {
		t.Fatal(err)
	}
	return s, ok
}

func countShipments(t *testing.T, q postgres.Querier) int {
	t.Helper()
	var n int
	if err := q.QueryRow(context.Background(), `SELECT count(*) FROM shipments`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func status(t *testing.T, q postgres.Querier, orderID string) orders.Status {
	t.Helper()
	s, err := orders.Get(context.Background(), q, orderID)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func history(t *testing.T, q postgres.Querier, orderID string) string {
	t.Helper()
	h, err := orders.History(context.Background(), q, orderID)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(h)
}

func noPendingOutbox(t *testing.T, q postgres.Querier) {
	t.Helper()
	st, err := outbox.Status(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 0 {
		t.Fatalf("outbox rows left for the relay: %+v (want published after commit)", st)
	}
}

// checkDispatched checks the shipment row, the order and the one published
// shipment.dispatched message for the payment m of orderID.
func checkDispatched(t *testing.T, e *env, m messaging.Message, tc observability.TraceContext, orderID string, carriers []string) {
	t.Helper()
	evID := m.Attributes[events.AttrID]
	sh, ok := shipmentOf(t, e.pool, orderID)
	if !ok {
		t.Fatal("no shipment")
	}
	wantCarrier := ChooseCarrier(carriers, orderID)
	want := Shipment{
		ID:             ShipmentID(paymentSource, evID),
		OrderID:        orderID,
		PaymentID:      sh.PaymentID,
		Carrier:        wantCarrier,
		TrackingNumber: TrackingNumber(wantCarrier, paymentSource, evID),
		EventSource:    paymentSource,
		EventID:        evID,
		DispatchedAt:   sh.DispatchedAt,
	}
	if sh != want {
		t.Fatalf("shipment\n got %+v\nwant %+v", sh, want)
	}
	if !ValidTrackingNumber(sh.TrackingNumber) {
		t.Fatalf("tracking number %q does not validate", sh.TrackingNumber)
	}
	if got := status(t, e.pool, orderID); got != orders.Shipped {
		t.Fatalf("order status %s, want shipped", got)
	}
	if h := history(t, e.pool, orderID); h != "[paid shipped]" {
		t.Fatalf("history %s", h)
	}
	var msgs []*pstest.Message
	for _, pm := range published(e.fake, topicOut) {
		if pm.OrderingKey == orderID {
			msgs = append(msgs, pm)
		}
	}
	if len(msgs) != 1 {
		t.Fatalf("%d shipment.dispatched messages for the order, want 1", len(msgs))
	}
	pm := msgs[0]
	if pm.Attributes[events.AttrType] != domain.TypeShipmentDispatched || pm.Attributes[events.AttrID] != DispatchedEventID(sh.ID) ||
		pm.Attributes[events.AttrSource] != Source || pm.Attributes[events.AttrSubject] != orderID {
		t.Fatalf("attributes %v", pm.Attributes)
	}
	var got domain.ShipmentDispatched
	if err := json.Unmarshal(pm.Data, &got); err != nil {
		t.Fatal(err)
	}
	if got.OrderID != orderID || got.ShipmentID != sh.ID || got.Carrier != sh.Carrier || got.TrackingNumber != sh.TrackingNumber || !got.DispatchedAt.Equal(sh.DispatchedAt) {
		t.Fatalf("payload %+v, shipment %+v", got, sh)
	}
	out, err := observability.ParseTraceparent(pm.Attributes[events.AttrTraceparent])
	if err != nil {
		t.Fatalf("outgoing traceparent: %v (%v)", err, pm.Attributes)
	}
	in, _ := observability.ParseTraceparent(m.Attributes[events.AttrTraceparent])
	if out.TraceID != tc.TraceID || out.SpanID == in.SpanID || out.SpanID == tc.SpanID {
		t.Fatalf("trace not continued: in %s (root %s), out %s", in, tc, out)
	}
	if pm.Attributes["ce-traceparent"] != pm.Attributes[events.AttrTraceparent] {
		t.Fatalf("ce-traceparent %q, traceparent %q", pm.Attributes["ce-traceparent"], pm.Attributes[events.AttrTraceparent])
	}
	noPendingOutbox(t, e.pool)
}

func TestShipsPaidOrder(t *testing.T) {
	for _, s := range shapes {
		t.Run(string(s), func(t *testing.T) {
			e := newEnv(t, nil)
			orderID := seedOrder(t, e.pool, orders.Paid)
			m, tc := payment(t, orderID)
			mustAck(t, e.url, m, s)
			checkDispatched(t, e, m, tc, orderID, testCarriers)
			sh, _ := shipmentOf(t, e.pool, orderID)
			if !sh.DispatchedAt.Equal(fixedNow.Truncate(time.Microsecond)) {
				t.Fatalf("dispatched at %s", sh.DispatchedAt)
			}
		})
	}
}

func TestDuplicateDeliveryShipsOnce(t *testing.T) {
	e := newEnv(t, nil)
	orderID := seedOrder(t, e.pool, orders.Paid)
	m, tc := payment(t, orderID)
	mustAck(t, e.url, m, binary)
	mustAck(t, e.url, m, binary)
	mustAck(t, e.url, m, eventarc) // the same event through the other shape
	if n := countShipments(t, e.pool); n != 1 {
		t.Fatalf("%d shipments", n)
	}
	checkDispatched(t, e, m, tc, orderID, testCarriers)
}

func TestConcurrentDuplicatesShipOnce(t *testing.T) {
	e := newEnv(t, nil)
	orderID := seedOrder(t, e.pool, orders.Paid)
	m, tc := payment(t, orderID)
	const n = 20
	var wg sync.WaitGroup
	codes := make([]int, n)
	start := make(chan struct{})
	for i := range n {
		req := request(t, e.url, m, shapes[i%2])
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			codes[i], _, _ = pushtest.Do(req)
		}()
	}
	close(start)
	wg.Wait()
	for i, c := range codes {
		if c < 200 || c > 299 {
			t.Fatalf("delivery %d: status %d", i, c)
		}
	}
	if n := countShipments(t, e.pool); n != 1 {
		t.Fatalf("%d shipments", n)
	}
	if got := len(published(e.fake, topicOut)); got != 1 {
		t.Fatalf("%d messages published", got)
	}
	checkDispatched(t, e, m, tc, orderID, testCarriers)
}

// TestStatusGuard: a payment.processed for an order that is already shipped
// (a late event, or a replay under a new event id that the idempotency
// layer cannot recognise) changes nothing and is acknowledged.
func TestStatusGuard(t *testing.T) {
	t.Run("late second payment event", func(t *testing.T) {
		e := newEnv(t, nil)
		orderID := seedOrder(t, e.pool, orders.Paid)
		m, tc := payment(t, orderID)
		mustAck(t, e.url, m, binary)
		late, _ := payment(t, orderID) // another event id for the same order
		for _, s := range shapes {
			mustAck(t, e.url, late, s)
		}
		if n := countShipments(t, e.pool); n != 1 {
			t.Fatalf("%d shipments", n)
		}
		checkDispatched(t, e, m, tc, orderID, testCarriers)
		if dl := published(e.fake, topicDLQ); len(dl) != 0 {
			t.Fatalf("late event dead-lettered: %v", dl[0].Attributes)
		}
	})
	t.Run("order shipped elsewhere", func(t *testing.T) {
		e := newEnv(t, nil)
		orderID := seedOrder(t, e.pool, orders.Shipped)
		m, _ := payment(t, orderID)
		mustAck(t, e.url, m, eventarc)
		if _, ok := shipmentOf(t, e.pool, orderID); ok {
			t.Fatal("shipment created for a shipped order")
		}
		if h := history(t, e.pool, orderID); h != "[paid shipped]" {
			t.Fatalf("history %s", h)
		}
		if got := len(published(e.fake, topicOut)) + len(published(e.fake, topicDLQ)); got != 0 {
			t.Fatalf("%d messages published", got)
		}
	})
}

// TestCancelledOrderIsNotShipped: the orders API cancelled the paid order
// before its payment.processed arrived. The genuine event is acknowledged
// (not dead-lettered), nothing ships, nothing is emitted, an INFO line
// says why, and a redelivery is a duplicate.
func TestCancelledOrderIsNotShipped(t *testing.T) {
	logs := &logbuf.Buffer{}
	e := newEnv(t, func(s *Service) {
		s.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	orderID := seedOrder(t, e.pool, orders.Cancelled)
	m, _ := payment(t, orderID)
	for _, s := range shapes {
		mustAck(t, e.url, m, s)
	}
	if _, ok := shipmentOf(t, e.pool, orderID); ok {
		t.Fatal("shipment created for a cancelled order")
	}
	if st := status(t, e.pool, orderID); st != orders.Cancelled {
		t.Fatalf("status %s", st)
	}
	if h := history(t, e.pool, orderID); h != "[paid cancelled]" {
		t.Fatalf("history %s", h)
	}
	if got := len(published(e.fake, topicOut)) + len(published(e.fake, topicDLQ)); got != 0 {
		t.Fatalf("%d messages published", got)
	}
	noPendingOutbox(t, e.pool)
	out := logs.String()
	if strings.Count(out, "order cancelled before it shipped") != 1 || !strings.Contains(out, `"level":"INFO"`) ||
		strings.Contains(out, `"level":"WARN"`) || strings.Contains(out, `"level":"ERROR"`) || !strings.Contains(out, orderID) {
		t.Fatalf("logs, want one INFO line for the skip (the redelivery is a duplicate):\n%s", out)
	}
}

// TestTransientFailureThenSuccess: a transient error is retried in process;
// when every in-process attempt fails the push answers 5xx with nothing
// written, and Pub/Sub's redelivery then succeeds.
func TestTransientFailureThenSuccess(t *testing.T) {
	var failures atomic.Int32
	var calls atomic.Int32
	e := newEnv(t, func(s *Service) {
		s.Orders = AdvanceFunc(func(ctx context.Context, q postgres.Querier, id string, to orders.Status, ev string) (orders.Result, error) {
			calls.Add(1)
			if failures.Add(-1) >= 0 {
				return orders.Result{}, retry.Transientf("orders database briefly unavailable")
			}
			return orders.Advance(ctx, q, id, to, ev)
		})
	})
	t.Run("retried in process", func(t *testing.T) {
		orderID := seedOrder(t, e.pool, orders.Paid)
		m, tc := payment(t, orderID)
		failures.Store(1)
		calls.Store(0)
		mustAck(t, e.url, m, binary)
		if calls.Load() != 2 {
			t.Fatalf("%d calls, want 2", calls.Load())
		}
		checkDispatched(t, e, m, tc, orderID, testCarriers)
	})
	t.Run("redelivered by Pub/Sub", func(t *testing.T) {
		orderID := seedOrder(t, e.pool, orders.Paid)
		m, tc := payment(t, orderID)
		failures.Store(1000)
		if code, body := push(t, e.url, m, eventarc); code < 500 {
			t.Fatalf("status %d %s, want 5xx so Pub/Sub redelivers", code, body)
		}
		if _, ok := shipmentOf(t, e.pool, orderID); ok {
			t.Fatal("shipment left behind by a failed attempt")
		}
		if got := status(t, e.pool, orderID); got != orders.Paid {
			t.Fatalf("status %s after a failed attempt", got)
		}
		failures.Store(0)
		mustAck(t, e.url, m, eventarc)
		checkDispatched(t, e, m, tc, orderID, testCarriers)
	})
	if dl := published(e.fake, topicDLQ); len(dl) != 0 {
		t.Fatalf("transient failure dead-lettered: %v", dl[0].Attributes)
	}
}

// killOnce terminates the transaction's own backend on its first call: the
// connection dies mid-transaction, as on a database failover.
type killOnce struct {
	killed atomic.Bool
	err    error // what the killed statement returned
}

func (k *killOnce) Create(ctx context.Context, q postgres.Querier, s Shipment) (bool, error) {
	if k.killed.CompareAndSwap(false, true) {
		_, err := q.Exec(ctx, `SELECT pg_terminate_backend(pg_backend_pid())`)
		k.err = err
		if err == nil {
			return false, retry.Permanentf("backend survived pg_terminate_backend")
		}
		return false, fmt.Errorf("insert shipment: %w", err)
	}
	return Table{}.Create(ctx, q, s)
}

func TestKilledConnectionIsRetried(t *testing.T) {
	k := &killOnce{}
	e := newEnv(t, func(s *Service) { s.Shipments = k })
	orderID := seedOrder(t, e.pool, orders.Paid)
	m, tc := payment(t, orderID)
	mustAck(t, e.url, m, binary)
	if !k.killed.Load() || k.err == nil || !retry.IsTransient(k.err) {
		t.Fatalf("connection not killed, or the error is not transient: %v", k.err)
	}
	t.Logf("killed connection: %v", k.err)
	checkDispatched(t, e, m, tc, orderID, testCarriers)
}

// TestPermanentFailureIsDeadLettered: an order that cannot ship is
// dead-lettered to shipment.dlq with reason attributes and acknowledged.
func TestPermanentFailureIsDeadLettered(t *testing.T) {
	cases := []struct {
		name   string
		seed   func(t *testing.T, q postgres.Querier) string
		want   orders.Status // status afterwards; "" when the order does not exist
		reason string
	}{
		{"payment_failed", func(t *testing.T, q postgres.Querier) string { return seedOrder(t, q, orders.PaymentFailed) }, orders.PaymentFailed, "illegal status change"},
		{"pending", func(t *testing.T, q postgres.Querier) string { return seedOrder(t, q, orders.Pending) }, orders.Pending, "order is not paid"},
		{"missing order", func(*testing.T, postgres.Querier) string { return uuid.NewString() }, "", "order not found"},
	}
	for _, c := range cases {
		for _, s := range shapes {
			t.Run(c.name+"/"+string(s), func(t *testing.T) {
				e := newEnv(t, nil)
				orderID := c.seed(t, e.pool)
				m, _ := payment(t, orderID)
				code, body := push(t, e.url, m, s)
				if code < 200 || code > 299 {
					t.Fatalf("status %d %s, want 2xx (dead-lettered and acked)", code, body)
				}
				dl := published(e.fake, topicDLQ)
				if len(dl) != 1 {
					t.Fatalf("%d dead letters", len(dl))
				}
				a := dl[0].Attributes
				if !bytes.Equal(dl[0].Data, m.Data) || a[events.AttrID] != m.Attributes[events.AttrID] || a[events.AttrTraceparent] != m.Attributes[events.AttrTraceparent] {
					t.Fatalf("original not kept: %s %v", dl[0].Data, a)
				}
				if a[deadletter.AttrReasonClass] != "permanent" || !strings.Contains(a[deadletter.AttrReason], c.reason) ||
					a[deadletter.AttrConsumer] != "shipment" || a[deadletter.AttrSourceTopic] != "payment.processed" ||
					a[deadletter.AttrSubscription] != subscription || a[deadletter.AttrOrderingKey] != orderID {
					t.Fatalf("reason attributes: %v", a)
				}
				if countShipments(t, e.pool) != 0 || len(published(e.fake, topicOut)) != 0 {
					t.Fatal("something was shipped")
				}
				if c.want != "" {
					if got := status(t, e.pool, orderID); got != c.want {
						t.Fatalf("status %s, want %s", got, c.want)
					}
				}
				// Acknowledged for good: a redelivery is a duplicate of a
				// rolled-back attempt, so it is dead-lettered again, not shipped.
				mustAck(t, e.url, m, s)
				if countShipments(t, e.pool) != 0 {
					t.Fatal("shipped on redelivery")
				}
			})
		}
	}
}

// TestPanicAnswers5xxAndProcessKeepsServing: a panic in the domain code is a
// transient failure (5xx, redelivered), frees the idempotency claim, and the
// same server goes on serving.
func TestPanicAnswers5xxAndProcessKeepsServing(t *testing.T) {
	var poison atomic.Value
	poison.Store("")
	e := newEnv(t, func(s *Service) {
		s.Orders = AdvanceFunc(func(ctx context.Context, q postgres.Querier, id string, to orders.Status, ev string) (orders.Result, error) {
			if id == poison.Load().(string) {
				panic("boom: " + id)
			}
			return orders.Advance(ctx, q, id, to, ev)
		})
	})
	bad := seedOrder(t, e.pool, orders.Paid)
	poison.Store(bad)
	mb, tcb := payment(t, bad)
	for _, s := range shapes {
		if code, body := push(t, e.url, mb, s); code < 500 {
			t.Fatalf("panic (%s): status %d %s, want 5xx", s, code, body)
		}
	}
	if len(published(e.fake, topicDLQ)) != 0 {
		t.Fatal("panic dead-lettered at once")
	}
	good := seedOrder(t, e.pool, orders.Paid)
	mg, tcg := payment(t, good)
	mustAck(t, e.url, mg, binary)
	checkDispatched(t, e, mg, tcg, good, testCarriers)
	// Fixed: the redelivery of the event that panicked is processed.
	poison.Store("")
	mustAck(t, e.url, mb, eventarc)
	checkDispatched(t, e, mb, tcb, bad, testCarriers)
}

// TestBadPayloads: undecodable or foreign events are dead-lettered with
// their original body and acknowledged; nothing ships.
func TestBadPayloads(t *testing.T) {
	e := newEnv(t, nil)
	orderID := seedOrder(t, e.pool, orders.Paid)
	good, _ := payment(t, orderID)
	withData := func(data string) messaging.Message {
		m := good.Clone()
		m.Data = []byte(data)
		m.Attributes[events.AttrID] = uuid.NewString()
		return m
	}
	_, created, err := events.NewMessage(context.Background(), "//example.com/orders-api", domain.OrderCreated{
		OrderID: orderID, CustomerID: "cust-1", Currency: "EUR", Total: 1234, CreatedAt: fixedNow,
		Items: []domain.LineItem{{SKU: "SKU-1", Quantity: 1, UnitPrice: 1234}},
	})
	if err != nil {
		t.Fatal(err)
	}
	unknown := good.Clone()
	unknown.Attributes[events.AttrType] = "com.example.payments.payment.processed.v9"
	unknown.Attributes[events.AttrID] = uuid.NewString()
	cases := []struct {
		name   string
		m      messaging.Message
		reason string
	}{
		{"malformed JSON", withData(`{"order_id": `), "JSON"},
		{"invalid payload", withData(`{"order_id":"` + orderID + `","payment_id":"nope","amount":-1,"currency":"EUR","gateway_reference":"g","processed_at":"2026-05-01T12:00:00Z"}`), "payment_id"},
		{"unknown version", unknown, "v9"},
		{"wrong event type", created, "unexpected event type"},
	}
	for _, c := range cases {
		for _, s := range shapes {
			t.Run(c.name+"/"+string(s), func(t *testing.T) {
				e.fake.Server.ClearMessages()
				if code, body := push(t, e.url, c.m, s); code < 200 || code > 299 {
					t.Fatalf("status %d %s, want 2xx", code, body)
				}
				dl := published(e.fake, topicDLQ)
				if len(dl) != 1 {
					t.Fatalf("%d dead letters", len(dl))
				}
				if !bytes.Equal(dl[0].Data, c.m.Data) || dl[0].Attributes[deadletter.AttrReasonClass] != "permanent" ||
					!strings.Contains(dl[0].Attributes[deadletter.AttrReason], c.reason) {
					t.Fatalf("dead letter %q %v", dl[0].Data, dl[0].Attributes)
				}
			})
		}
	}
	if countShipments(t, e.pool) != 0 || len(published(e.fake, topicOut)) != 0 || status(t, e.pool, orderID) != orders.Paid {
		t.Fatal("a bad payload shipped the order")
	}
}

func TestConfigErrorListsEverythingMissing(t *testing.T) {
	vars := map[string]string{EnvCarriers: "dhl,DHL!"}
	getenv := func(k string) string { return vars[k] }
	_, err := function.Build(context.Background(), getenv)
	if !errors.Is(err, app.ErrConfig) {
		t.Fatalf("err %v, want a configuration error", err)
	}
	for _, want := range []string{"FUNCTION_NAME", "GOOGLE_CLOUD_PROJECT", "DATABASE_URL", "DB_INSTANCE_CONNECTION_NAME", "DB_NAME", "DB_USER", EnvCarriers, "invalid carrier code"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	// Served through app.Lazy, as in production: 500 with the same message.
	lazy := app.NewLazy(func(ctx context.Context) (http.Handler, error) { return function.Build(ctx, getenv) }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	rec := httptest.NewRecorder()
	lazy.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", strings.NewReader("{}")))
	if rec.Code != http.StatusInternalServerError || !strings.Contains(rec.Body.String(), "FUNCTION_NAME") || !strings.Contains(rec.Body.String(), EnvCarriers) {
		t.Fatalf("lazy: %d %s", rec.Code, rec.Body)
	}
}

// TestThroughFunctionsFramework runs the registered function the way Cloud
// Run functions does: functions-framework-go serving EntryPoint, the lazy
// handler built from environment variables on the first request.
func TestThroughFunctionsFramework(t *testing.T) {
	ctx := context.Background()
	fake := pubsubtest.New(t)
	fake.CreateTopic(t, topicOut)
	fake.CreateTopic(t, topicDLQ)
	dbURL := pgtest.NewDatabase(t)
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := orders.Migrate(ctx, pool); err != nil { // to seed orders before the first request
		t.Fatal(err)
	}
	t.Setenv("FUNCTION_NAME", "shipment")
	t.Setenv("GOOGLE_CLOUD_PROJECT", pubsubtest.Project)
	t.Setenv("DATABASE_URL", dbURL)
	t.Setenv("DB_MIGRATE", "true")
	t.Setenv("PUBSUB_EMULATOR_HOST", fake.Server.Addr)
	t.Setenv(EnvCarriers, "acme")
	t.Setenv("LOG_LEVEL", "error")
	// Rebuild from this environment (a previous run of this test, with
	// -count, built the handler on a database that is gone now).
	function.Reset()
	url := fftest.Start(t, EntryPoint)
	e := &env{pool: pool, fake: fake, url: url}

	for _, s := range shapes {
		t.Run("success and duplicate/"+string(s), func(t *testing.T) {
			orderID := seedOrder(t, pool, orders.Paid)
			m, tc := payment(t, orderID)
			mustAck(t, url, m, s)
			mustAck(t, url, m, s)
			checkDispatched(t, e, m, tc, orderID, []string{"acme"})
			if sh, _ := shipmentOf(t, pool, orderID); !strings.HasPrefix(sh.TrackingNumber, "ACME-") {
				t.Fatalf("tracking number %q", sh.TrackingNumber)
			}
		})
	}
	t.Run("concurrent duplicates", func(t *testing.T) {
		orderID := seedOrder(t, pool, orders.Paid)
		m, tc := payment(t, orderID)
		var wg sync.WaitGroup
		var bad atomic.Int32
		for i := range 20 {
			req := request(t, url, m, shapes[i%2])
			wg.Add(1)
			go func() {
				defer wg.Done()
				if code, _, _ := pushtest.Do(req); code < 200 || code > 299 {
					bad.Add(1)
				}
			}()
		}
		wg.Wait()
		if bad.Load() != 0 {
			t.Fatalf("%d deliveries not acknowledged", bad.Load())
		}
		checkDispatched(t, e, m, tc, orderID, []string{"acme"})
	})
	t.Run("permanent failure", func(t *testing.T) {
		orderID := seedOrder(t, pool, orders.PaymentFailed)
		m, _ := payment(t, orderID)
		mustAck(t, url, m, binary)
		var found bool
		for _, d := range published(fake, topicDLQ) {
			if d.Attributes[events.AttrID] == m.Attributes[events.AttrID] {
				found = d.Attributes[deadletter.AttrConsumer] == "shipment" && strings.Contains(d.Attributes[deadletter.AttrReason], "illegal status change")
			}
		}
		if !found {
			t.Fatal("not dead-lettered with its reason")
		}
		if status(t, pool, orderID) != orders.PaymentFailed {
			t.Fatal("status moved")
		}
	})
	t.Run("bad payload", func(t *testing.T) {
		m, _ := payment(t, uuid.NewString())
		m.Data = []byte("not json")
		mustAck(t, url, m, eventarc)
		var found bool
		for _, d := range published(fake, topicDLQ) {
			found = found || bytes.Equal(d.Data, m.Data)
		}
		if !found {
			t.Fatal("bad payload not dead-lettered")
		}
	})
}
