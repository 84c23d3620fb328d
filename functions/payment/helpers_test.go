package payment

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"example.com/platform/shared/app"
	"example.com/platform/shared/breaker"
	"example.com/platform/shared/domain"
	"example.com/platform/shared/domain/fakegateway"
	"example.com/platform/shared/domain/orders"
	"example.com/platform/shared/events"
	"example.com/platform/shared/handler"
	"example.com/platform/shared/messaging"
	"example.com/platform/shared/retry"
	"example.com/platform/shared/testing/logbuf"
	"example.com/platform/shared/testing/pgtest"
	"example.com/platform/shared/testing/pubsubtest"
	"example.com/platform/shared/testing/pushtest"
)

type messagingMessage = messaging.Message

// newHandler is the function's push endpoint on deps and gw, configured
// as registered.
func newHandler(ctx context.Context, deps *app.Deps, gw Gateway) (*handler.Handler, error) {
	if err := function.Migrate(ctx, deps.DB); err != nil {
		return nil, err
	}
	svc := &Service{DB: deps.DB, Gateway: gw, Logger: deps.Logger}
	return deps.Handler(handler.Lease(svc.Handle), handlerConfig)
}

// serve serves h on a local port for the test.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// Topics the function publishes to, and its dead-letter topic.
var topics = []string{"payment.processed", "payment.failed", "payment.refunded", "payment.dlq"}

const testAPIKey = "test-api-key"

// fastRetry keeps the gateway client's retries quick in tests.
var fastRetry = retry.Policy{MaxAttempts: 3, Initial: time.Millisecond, Max: 5 * time.Millisecond, Budget: 10 * time.Second}

// env is one function under test: a fresh database, a pstest server, the
// fake gateway over HTTP and the push endpoint served on a local port.
type env struct {
	t      *testing.T
	deps   *app.Deps
	pubsub *pubsubtest.Fake
	gw     *fakegateway.Server
	client *HTTPGateway
	url    string
	logs   *logbuf.Buffer
}

type options struct {
	timeout time.Duration  // per gateway attempt
	retry   retry.Policy   // gateway client retry
	breaker breaker.Config // gateway breaker
	wrap    func(Gateway) Gateway
}

// newEnv wires the function the way build does, with injected settings.
func newEnv(t *testing.T, o options) *env {
	t.Helper()
	e := &env{t: t, logs: &logbuf.Buffer{}}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("function logs:\n%s", e.logs)
		}
	})
	e.pubsub = pubsubtest.New(t)
	t.Setenv("PUBSUB_EMULATOR_HOST", e.pubsub.Server.Addr)
	for _, tp := range topics {
		e.pubsub.CreateTopic(t, tp)
	}
	logger := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx := context.Background()
	deps, err := app.Open(ctx, app.Env{
		Function: "payment", Project: pubsubtest.Project, DeadLetterTopic: "payment.dlq",
		Database: app.Database{URL: pgtest.NewDatabase(t), Migrate: true},
	}, app.Needs{Database: true, PubSub: true}, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(deps.Close)
	e.deps = deps

	e.gw = fakegateway.NewServer(t, fakegateway.Config{APIKey: testAPIKey})
	if o.timeout == 0 {
		o.timeout = 5 * time.Second
	}
	if o.retry == (retry.Policy{}) {
		o.retry = fastRetry
	}
	if o.breaker.OpenTimeout == 0 {
		o.breaker.OpenTimeout = time.Hour // never half-opens during a test
	}
	e.client, err = NewHTTPGateway(GatewayConfig{BaseURL: e.gw.URL, APIKey: testAPIKey, Timeout: o.timeout, Retry: o.retry, Breaker: o.breaker})
	if err != nil {
		t.Fatal(err)
	}
	var gw Gateway = e.client
	if o.wrap != nil {
		gw = o.wrap(gw)
	}
	h, err := newHandler(ctx, deps, gw)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	e.url = srv.URL
	return e
}

// order inserts a pending order and returns its order.created message.
func (e *env) order(customer string, total int64) (domain.OrderCreated, messaging.Message) {
	e.t.Helper()
	o := domain.OrderCreated{
		OrderID: uuid.NewString(), CustomerID: customer,
		Items:    []domain.LineItem{{SKU: "SKU-1", Quantity: 1, UnitPrice: total}},
		Currency: "EUR", Total: total, CreatedAt: time.Now().UTC(),
	}
	e.insertOrder(o)
	return o, e.message(o)
}

func (e *env) insertOrder(o domain.OrderCreated) {
	e.t.Helper()
	items, _ := json.Marshal(o.Items)
	if _, err := e.deps.DB.Exec(context.Background(),
		`INSERT INTO orders (id, customer_id, currency, total, items) VALUES ($1, $2, $3, $4, $5)`,
		o.OrderID, o.CustomerID, o.Currency, o.Total, items); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) message(o events.Payload, opts ...events.Option) messaging.Message {
	e.t.Helper()
	_, m, err := events.NewMessage(context.Background(), "//example.com/orders-api", o, opts...)
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

var delivery = events.Delivery{Subscription: "projects/test-project/subscriptions/payment--order.created", MessageID: "1", Attempt: 1}

// push delivers m as a no-wrapper push subscription does and returns the
// status code.
func push(t *testing.T, url string, m messaging.Message) int {
	t.Helper()
	code, _ := pushtest.Send(t, pushtest.Binary(t, url+"/", m, delivery))
	return code
}

var (
	eventarcPush     = pushtest.Eventarc(pubsubtest.TopicName("order.created"))
	envelopeDelivery = events.Delivery{Subscription: "projects/test-project/subscriptions/eventarc-payment", MessageID: "e-1"}
)

// pushEnvelope delivers m inside an Eventarc messagePublished envelope.
func pushEnvelope(t *testing.T, url string, m messaging.Message) int {
	t.Helper()
	code, _ := pushtest.Send(t, eventarcPush(t, url+"/", m, envelopeDelivery))
	return code
}

// key is the idempotency key the function passes to the gateway for m.
func key(m messaging.Message) string {
	return m.Attributes[events.AttrSource] + "/" + m.Attributes[events.AttrID]
}

func (e *env) status(orderID string) orders.Status {
	e.t.Helper()
	s, err := orders.Get(context.Background(), e.deps.DB, orderID)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

type paymentRow struct {
	ID, Key, Status, Reference, DeclineCode string
	Amount                                  int64
	Moved                                   bool
}

func (e *env) payments(orderID string) []paymentRow {
	e.t.Helper()
	rows, err := e.deps.DB.Query(context.Background(), `
SELECT id::text, idempotency_key, status, coalesce(gateway_reference, ''), coalesce(decline_code, ''), amount, order_moved
FROM payments WHERE order_id = $1 ORDER BY created_at`, orderID)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	var out []paymentRow
	for rows.Next() {
		var p paymentRow
		if err := rows.Scan(&p.ID, &p.Key, &p.Status, &p.Reference, &p.DeclineCode, &p.Amount, &p.Moved); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		e.t.Fatal(err)
	}
	return out
}

// cancel cancels order o as the orders API does (the status, then the
// event) and returns its order.cancelled message.
func (e *env) cancel(o domain.OrderCreated) (domain.OrderCancelled, messaging.Message) {
	e.t.Helper()
	res, err := orders.Advance(context.Background(), e.deps.DB, o.OrderID, orders.Cancelled, "cancel-"+o.OrderID)
	if err != nil || !res.Moved {
		e.t.Fatalf("cancel order %s: %+v, %v", o.OrderID, res, err)
	}
	c := domain.OrderCancelled{OrderID: o.OrderID, Reason: "changed my mind", PreviousStatus: string(res.From), CancelledAt: time.Now().UTC()}
	return c, e.message(c)
}

type refundRow struct {
	ID, Key, PaymentID, Reference, EventID string
	Amount                                 int64
}

func (e *env) refunds(orderID string) []refundRow {
	e.t.Helper()
	rows, err := e.deps.DB.Query(context.Background(), `
SELECT id::text, idempotency_key, payment_id::text, gateway_reference, event_id, amount
FROM refunds WHERE order_id = $1 ORDER BY created_at`, orderID)
	if err != nil {
		e.t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[refundRow])
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// published returns the messages on topic whose subject (or, for dead
// letters, original subject) is orderID.
func published(f *pubsubtest.Fake, topic, orderID string) []messaging.Message {
	var out []messaging.Message
	for _, m := range f.Server.Messages() {
		if !strings.HasSuffix(m.Topic, "/topics/"+topic) {
			continue
		}
		if orderID != "" && m.Attributes[events.AttrSubject] != orderID {
			continue
		}
		out = append(out, messaging.Message{Data: m.Data, Attributes: m.Attributes, OrderingKey: m.OrderingKey})
	}
	return out
}

func decode[T any](t *testing.T, m messaging.Message) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(m.Data, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func want(t *testing.T, what string, got, wantV any) {
	t.Helper()
	if got != wantV {
		t.Fatalf("%s: got %v, want %v", what, got, wantV)
	}
}
