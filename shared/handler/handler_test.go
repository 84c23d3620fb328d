package handler_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"example.com/platform/shared/deadletter"
	"example.com/platform/shared/events"
	"example.com/platform/shared/events/eventstest"
	"example.com/platform/shared/handler"
	"example.com/platform/shared/messaging"
	"example.com/platform/shared/retry"
	"example.com/platform/shared/testing/logbuf"
	"example.com/platform/shared/testing/pgtest"
	"example.com/platform/shared/testing/pushtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

var fastRetry = retry.Policy{MaxAttempts: 3, Initial: time.Millisecond, Max: 2 * time.Millisecond, Budget: time.Second}

// order returns a valid thing.created message for a fresh thing.
func order(t *testing.T) messaging.Message {
	t.Helper()
	_, m, err := events.NewMessage(context.Background(), "//things.example.com/tests", eventstest.NewCreated())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

var delivery = events.Delivery{Subscription: "projects/p/subscriptions/payment--thing.created", MessageID: "42", Attempt: 1, PublishTime: time.Now().UTC()}

// stateless is the consumer of fn, which sees the whole delivery.
func stateless(fn func(ctx context.Context, in *events.Incoming) error) handler.Consumer {
	return handler.Stateless(func(ctx context.Context, ev handler.Event[events.Payload]) error { return fn(ctx, ev.Incoming) })
}

// push sends m to h the way a no-wrapper push subscription does.
func push(t *testing.T, h http.Handler, m messaging.Message) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, pushtest.Binary(t, "http://fn/", m, delivery))
	return rec
}

type env struct {
	h    *handler.Handler
	dlq  *messaging.Recorder
	logs *logbuf.Buffer
}

func newEnv(t *testing.T, fn func(ctx context.Context, in *events.Incoming) error) *env {
	t.Helper()
	return newEnvWith(t, handler.Config{}, stateless(fn))
}

// newEnvWith serves c with cfg, completed with a logger, a recording
// dead-letter topic and a fast retry policy.
func newEnvWith(t *testing.T, cfg handler.Config, c handler.Consumer) *env {
	t.Helper()
	e := &env{dlq: &messaging.Recorder{}, logs: &logbuf.Buffer{}}
	cfg.Consumer = "payment"
	cfg.Logger = slog.New(slog.NewJSONHandler(e.logs, nil))
	cfg.DeadLetter = &deadletter.Publisher{Topic: "payment.dlq", Messages: e.dlq}
	if cfg.Retry == (retry.Policy{}) {
		cfg.Retry = fastRetry
	}
	h, err := handler.New(cfg, c)
	if err != nil {
		t.Fatal(err)
	}
	e.h = h
	return e
}

func TestSuccessAcks(t *testing.T) {
	var calls atomic.Int32
	e := newEnv(t, func(ctx context.Context, in *events.Incoming) error {
		calls.Add(1)
		if _, ok := in.Payload.(eventstest.Created); !ok {
			t.Errorf("payload %T", in.Payload)
		}
		return nil
	})
	if rec := push(t, e.h, order(t)); rec.Code != http.StatusNoContent {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if calls.Load() != 1 || len(e.dlq.Messages()) != 0 {
		t.Fatalf("calls=%d dlq=%d", calls.Load(), len(e.dlq.Messages()))
	}
}

func TestEventarcEnvelopeIsAccepted(t *testing.T) {
	var got string
	e := newEnv(t, func(ctx context.Context, in *events.Incoming) error { got = in.Event.ID(); return nil })
	m := order(t)
	req := pushtest.Eventarc("projects/p/topics/order.created")(t, "http://fn/", m,
		events.Delivery{Subscription: "projects/p/subscriptions/eventarc-sub", MessageID: "7"})
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusNoContent || got != m.Attributes["ce-id"] {
		t.Fatalf("status %d body %s; handled event %q, want %q", rec.Code, rec.Body, got, m.Attributes["ce-id"])
	}
}

func TestUndecodablePushIsDeadLetteredWithOriginal(t *testing.T) {
	var calls atomic.Int32
	e := newEnv(t, func(context.Context, *events.Incoming) error { calls.Add(1); return nil })
	m := order(t)
	m.Data = []byte(`{"thing_id": `) // malformed JSON
	rec := push(t, e.h, m)
	if rec.Code != http.StatusNoContent {
		t.Fatalf("status %d, want 204 (dead-lettered and acked)", rec.Code)
	}
	if calls.Load() != 0 {
		t.Fatal("handler ran on an undecodable event")
	}
	dl := e.dlq.Messages()
	if len(dl) != 1 {
		t.Fatalf("dead letters: %d", len(dl))
	}
	if string(dl[0].Data) != string(m.Data) || dl[0].Attributes["ce-id"] != m.Attributes["ce-id"] {
		t.Fatalf("original not kept: %q %v", dl[0].Data, dl[0].Attributes)
	}
	if dl[0].Attributes[deadletter.AttrReasonClass] != "permanent" || !strings.Contains(dl[0].Attributes[deadletter.AttrReason], "JSON") {
		t.Fatalf("reason attributes: %v", dl[0].Attributes)
	}
	if dl[0].Attributes[deadletter.AttrSubscription] != delivery.Subscription || dl[0].Attributes[deadletter.AttrSourceTopic] != eventstest.TopicCreated {
		t.Fatalf("source attributes: %v", dl[0].Attributes)
	}
}

func TestPermanentErrorIsDeadLetteredOnce(t *testing.T) {
	var calls atomic.Int32
	e := newEnv(t, func(context.Context, *events.Incoming) error {
		calls.Add(1)
		return retry.Permanentf("validate order: customer blocked")
	})
	if rec := push(t, e.h, order(t)); rec.Code != http.StatusNoContent {
		t.Fatalf("status %d", rec.Code)
	}
	if calls.Load() != 1 {
		t.Fatalf("permanent error retried: %d calls", calls.Load())
	}
	if dl := e.dlq.Messages(); len(dl) != 1 || dl[0].Attributes[deadletter.AttrReason] != "validate order: customer blocked" {
		t.Fatalf("dead letters %+v", dl)
	}
	if !strings.Contains(e.logs.String(), "event dead-lettered") {
		t.Fatalf("log: %s", e.logs)
	}
}

func TestDeadLetterFailureIsNotAcked(t *testing.T) {
	e := newEnv(t, func(context.Context, *events.Incoming) error { return retry.Permanentf("bad") })
	e.dlq.Fail = func(string, messaging.Message) error { return errors.New("pubsub down") }
	if rec := push(t, e.h, order(t)); rec.Code < 300 {
		t.Fatalf("status %d: acked a message that was neither processed nor dead-lettered", rec.Code)
	}
}

func TestNoDeadLetterTopicAnswers500(t *testing.T) {
	h, err := handler.New(handler.Config{Consumer: "payment", Retry: fastRetry, Logger: slog.New(slog.DiscardHandler)},
		stateless(func(context.Context, *events.Incoming) error { return retry.Permanentf("bad") }))
	if err != nil {
		t.Fatal(err)
	}
	if rec := push(t, h, order(t)); rec.Code != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500", rec.Code)
	}
}

func TestTransientErrorIsRetriedInProcess(t *testing.T) {
	var calls atomic.Int32
	e := newEnv(t, func(context.Context, *events.Incoming) error {
		if calls.Add(1) < 3 {
			return retry.Transientf("gateway 503")
		}
		return nil
	})
	if rec := push(t, e.h, order(t)); rec.Code != http.StatusNoContent {
		t.Fatalf("status %d", rec.Code)
	}
	if calls.Load() != 3 {
		t.Fatalf("calls %d, want 3", calls.Load())
	}
}

func TestTransientErrorAfterRetriesAnswers503(t *testing.T) {
	var calls atomic.Int32
	e := newEnv(t, func(context.Context, *events.Incoming) error { calls.Add(1); return errors.New("connection reset") })
	if rec := push(t, e.h, order(t)); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", rec.Code)
	}
	if calls.Load() != int32(fastRetry.MaxAttempts) || len(e.dlq.Messages()) != 0 {
		t.Fatalf("calls %d dlq %d", calls.Load(), len(e.dlq.Messages()))
	}
}

func TestPanicBecomesTransientAndProcessSurvives(t *testing.T) {
	e := newEnv(t, func(context.Context, *events.Incoming) error { panic("nil map write") })
	srv := httptest.NewServer(e.h)
	defer srv.Close()
	for range 2 {
		if code, body := pushtest.Send(t, pushtest.Binary(t, srv.URL, order(t), delivery)); code != http.StatusServiceUnavailable {
			t.Fatalf("status %d %s, want 503", code, body)
		}
	}
	if logs := e.logs.String(); !strings.Contains(logs, "handler panicked") || !strings.Contains(logs, "goroutine") {
		t.Fatalf("panic not logged with stack: %s", logs)
	}
}

func TestOnlyPOST(t *testing.T) {
	e := newEnv(t, func(context.Context, *events.Incoming) error { return nil })
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("status %d", rec.Code)
	}
}

func TestTimeoutBoundsTheHandler(t *testing.T) {
	h, err := handler.New(handler.Config{Consumer: "payment", Timeout: 20 * time.Millisecond, Retry: retry.Policy{MaxAttempts: 1}, Logger: slog.New(slog.DiscardHandler)},
		stateless(func(ctx context.Context, _ *events.Incoming) error { <-ctx.Done(); return ctx.Err() }))
	if err != nil {
		t.Fatal(err)
	}
	if rec := push(t, h, order(t)); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", rec.Code)
	}
}

func TestConfigValidation(t *testing.T) {
	if _, err := handler.New(handler.Config{}, stateless(nil)); !errors.Is(err, handler.ErrNoConsumer) {
		t.Fatalf("err = %v", err)
	}
	for _, tt := range []struct {
		c    handler.Consumer
		cfg  handler.Config
		want error
	}{
		{handler.Consumer{}, handler.Config{Consumer: "c"}, handler.ErrNoFunction},
		{handler.Transactional(func(context.Context, pgx.Tx, handler.Event[events.Payload]) ([]handler.Out, error) { return nil, nil }),
			handler.Config{Consumer: "c"}, handler.ErrNoTxStore},
		{handler.Lease(func(context.Context, *handler.Claim, handler.Event[events.Payload]) ([]byte, error) { return nil, nil }),
			handler.Config{Consumer: "c"}, handler.ErrNoLeaseStore},
	} {
		if _, err := handler.New(tt.cfg, tt.c); !errors.Is(err, tt.want) {
			t.Errorf("mode %q: err %v, want %v", tt.c.Mode(), err, tt.want)
		}
	}
}

func TestWrongPayloadTypeIsDeadLettered(t *testing.T) {
	var calls atomic.Int32
	e := newEnvWith(t, handler.Config{}, handler.Stateless(func(context.Context, handler.Event[eventstest.Done]) error { calls.Add(1); return nil }))
	if rec := push(t, e.h, order(t)); rec.Code != http.StatusNoContent {
		t.Fatalf("status %d", rec.Code)
	}
	dl := e.dlq.Messages()
	if calls.Load() != 0 || len(dl) != 1 || !strings.Contains(dl[0].Attributes[deadletter.AttrReason], "this consumer accepts eventstest.Done") {
		t.Fatalf("calls %d, dead letters %+v", calls.Load(), dl)
	}
}

// TestFailureLogNamesTheErrorClass: a delivery that fails on a missing
// table is logged with error_class=schema, so a log-based metric can alert
// on deliveries that wait for a person.
func TestFailureLogNamesTheErrorClass(t *testing.T) {
	e := newEnv(t, func(context.Context, *events.Incoming) error {
		return fmt.Errorf("insert shipment: %w", &pgconn.PgError{Code: "42P01", Message: `relation "shipments" does not exist`})
	})
	if rec := push(t, e.h, order(t)); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503 (a missing table is transient)", rec.Code)
	}
	if logs := e.logs.String(); !strings.Contains(logs, `"error_class":"schema"`) || len(e.dlq.Messages()) != 0 {
		t.Fatalf("log without error_class or dead-lettered: %s", logs)
	}
}
