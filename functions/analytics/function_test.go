package analytics

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/GoogleCloudPlatform/functions-framework-go/functions"
	"github.com/google/uuid"

	"example.com/platform/shared/app"
	"example.com/platform/shared/deadletter"
	"example.com/platform/shared/domain"
	"example.com/platform/shared/events"
	"example.com/platform/shared/handler"
	"example.com/platform/shared/messaging"
	"example.com/platform/shared/observability"
	"example.com/platform/shared/retry"
	"example.com/platform/shared/testing/fftest"
	"example.com/platform/shared/testing/pubsubtest"
	"example.com/platform/shared/testing/pushtest"
	"example.com/platform/shared/warehouse"
	"example.com/platform/shared/warehouse/bqfake"
)

const subscription = "projects/test-project/subscriptions/analytics--order.created"

func orderMessage(t *testing.T) messaging.Message {
	t.Helper()
	ctx := observability.WithTrace(context.Background(), observability.NewTrace(true))
	_, m, err := events.NewMessage(ctx, "//example.com/orders-api", domain.OrderCreated{
		OrderID: uuid.NewString(), CustomerID: "cust-1",
		Items:    []domain.LineItem{{SKU: "SKU-1", Quantity: 2, UnitPrice: 500}},
		Currency: "EUR", Total: 1000, CreatedAt: time.Now().UTC(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func delivery(attempt int) events.Delivery {
	return events.Delivery{Subscription: subscription, MessageID: uuid.NewString(), Attempt: attempt, PublishTime: time.Now().UTC()}
}

// shapes are both push shapes of order.created deliveries.
var shapes = pushtest.Shapes(pubsubtest.TopicName("order.created"))

func rowsWithID(srv *bqfake.Server, id string) []warehouse.Stored {
	var out []warehouse.Stored
	for _, r := range srv.Rows(Table) {
		if r.Values["event_id"] == id {
			out = append(out, r)
		}
	}
	return out
}

func deadLetters(ps *pstest.Server, topic, eventID string) []*pstest.Message {
	var out []*pstest.Message
	for _, m := range ps.Messages() {
		if m.Topic == pubsubtest.TopicName(topic) && m.Attributes["ce-id"] == eventID {
			out = append(out, m)
		}
	}
	return out
}

// checkRow checks a row the fake received against the event it records
// (the fake already validated it against schema/events.json).
func checkRow(t *testing.T, got warehouse.Stored, m messaging.Message, d events.Delivery) {
	t.Helper()
	if fe := EventsSchema.Validate(got.Values); fe != nil {
		t.Fatalf("row does not match schema/events.json: %v", fe)
	}
	for k := range got.Values {
		if _, ok := EventsSchema.Field(k); !ok {
			t.Fatalf("column %s is not in schema/events.json", k)
		}
	}
	row := EventsSchema.Normalize(got.Values)
	id := m.Attributes["ce-id"]
	tc, _ := observability.ParseTraceparent(m.Attributes["traceparent"])
	evTime, _ := time.Parse(time.RFC3339Nano, m.Attributes["ce-time"])
	var wantData any
	_ = json.Unmarshal(m.Data, &wantData)
	wantJSON, _ := json.Marshal(wantData)
	want := map[string]any{
		"event_id": id, "event_type": domain.TypeOrderCreated, "source": "//example.com/orders-api",
		"subject": m.OrderingKey, "ordering_key": m.OrderingKey, "event_time": evTime.UTC().Truncate(time.Microsecond),
		"data": string(wantJSON), "trace_id": tc.TraceID, "subscription": d.Subscription,
	}
	if d.Attempt > 0 {
		want["delivery_attempt"] = int64(d.Attempt)
	}
	received, ok := row["received_at"].(time.Time)
	if !ok || time.Since(received) > time.Minute || received.After(time.Now()) {
		t.Fatalf("received_at %v", row["received_at"])
	}
	delete(row, "received_at")
	for k, v := range want {
		if row[k] != v {
			t.Errorf("column %s = %#v, want %#v", k, row[k], v)
		}
	}
	if got.InsertID != id {
		t.Errorf("insertId %q, want the event id %q", got.InsertID, id)
	}
}

// TestThroughFramework serves the registered Analytics entry point
// through functions-framework-go, built from the environment as in
// production: the real Pub/Sub client against pstest for dead letters and
// the real BigQuery client against bqfake.
func TestThroughFramework(t *testing.T) {
	ps := pubsubtest.New(t)
	ps.CreateTopic(t, "analytics.dlq")
	bq := bqfake.New(t, "test-project", "analytics", Tables())
	for k, v := range map[string]string{
		"PUBSUB_EMULATOR_HOST":    ps.Server.Addr,
		"FUNCTION_NAME":           "analytics",
		"GOOGLE_CLOUD_PROJECT":    pubsubtest.Project,
		EnvProject:                "test-project",
		EnvDataset:                "analytics",
		warehouse.EnvEmulatorHost: bq.Host(),
		EnvInsertTimeout:          "300ms",
		EnvSink:                   "",
		"DEAD_LETTER_TOPIC":       "",
	} {
		t.Setenv(k, v)
	}
	url := fftest.Start(t, EntryPoint)

	for _, sh := range shapes {
		t.Run(sh.Name, func(t *testing.T) {
			t.Run("OneRowPerEvent", func(t *testing.T) {
				m, d := orderMessage(t), delivery(3)
				if code, body := pushtest.Send(t, sh.Request(t, url, m, d)); code != http.StatusNoContent {
					t.Fatalf("status %d %s", code, body)
				}
				rows := rowsWithID(bq, m.Attributes["ce-id"])
				if len(rows) != 1 {
					t.Fatalf("%d rows", len(rows))
				}
				if sh.Name == "eventarc" {
					d.Attempt = 0 // Eventarc does not carry the attempt
				}
				checkRow(t, rows[0], m, d)
			})

			t.Run("DuplicateDeliveriesWriteOneRow", func(t *testing.T) {
				m, d := orderMessage(t), delivery(1)
				for range 2 {
					if code, body := pushtest.Send(t, sh.Request(t, url, m, d)); code != http.StatusNoContent {
						t.Fatalf("status %d %s", code, body)
					}
				}
				var wg sync.WaitGroup
				codes := make(chan int, 4)
				for range 4 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						code, _, err := pushtest.Do(sh.Request(t, url, m, d))
						if err != nil {
							codes <- 0
							return
						}
						codes <- code
					}()
				}
				wg.Wait()
				close(codes)
				for c := range codes {
					if c != http.StatusNoContent {
						t.Fatalf("concurrent duplicate: status %d", c)
					}
				}
				if n := len(rowsWithID(bq, m.Attributes["ce-id"])); n != 1 {
					t.Fatalf("%d rows for one event delivered 6 times, want 1 (insertId dedup)", n)
				}
			})

			t.Run("RejectedRowIsDeadLetteredAndAcked", func(t *testing.T) {
				// The deployed table lost a column: BigQuery answers with a
				// per-row insertError ("no such field"), which no retry fixes.
				var drifted warehouse.Schema
				for _, f := range EventsSchema {
					if f.Name != "trace_id" {
						drifted = append(drifted, f)
					}
				}
				bq.SetSchema(Table, drifted)
				defer bq.SetSchema(Table, EventsSchema)
				m, d := orderMessage(t), delivery(1)
				if code, body := pushtest.Send(t, sh.Request(t, url, m, d)); code != http.StatusNoContent {
					t.Fatalf("status %d %s, want 204 (dead-lettered and acked)", code, body)
				}
				if n := len(rowsWithID(bq, m.Attributes["ce-id"])); n != 0 {
					t.Fatalf("%d rows", n)
				}
				dl := deadLetters(ps.Server, "analytics.dlq", m.Attributes["ce-id"])
				if len(dl) != 1 {
					t.Fatalf("%d dead letters on analytics.dlq, want 1", len(dl))
				}
				a := dl[0].Attributes
				if !bytes.Equal(dl[0].Data, m.Data) || a[deadletter.AttrReasonClass] != "permanent" ||
					!strings.Contains(a[deadletter.AttrReason], "no such field") || a[deadletter.AttrConsumer] != "analytics" ||
					a[deadletter.AttrSourceTopic] != "order.created" {
					t.Fatalf("dead letter: %q %v", dl[0].Data, a)
				}
			})

			for _, fault := range []bqfake.Fault{bqfake.BackendError, bqfake.QuotaExceeded} {
				t.Run("Transient"+fault.Reason+"ThenRedelivery", func(t *testing.T) {
					bq.FailAll(fault)
					m, d := orderMessage(t), delivery(1)
					code, body := pushtest.Send(t, sh.Request(t, url, m, d))
					bq.Heal()
					if code != http.StatusServiceUnavailable {
						t.Fatalf("status %d %s, want 503 so Pub/Sub redelivers", code, body)
					}
					if n := len(deadLetters(ps.Server, "analytics.dlq", m.Attributes["ce-id"])); n != 0 {
						t.Fatalf("a transient failure was dead-lettered")
					}
					d.Attempt = 2
					if code, body := pushtest.Send(t, sh.Request(t, url, m, d)); code != http.StatusNoContent {
						t.Fatalf("redelivery: status %d %s", code, body)
					}
					if n := len(rowsWithID(bq, m.Attributes["ce-id"])); n != 1 {
						t.Fatalf("%d rows after redelivery", n)
					}
				})
			}

			t.Run("BadPayloadIsDeadLettered", func(t *testing.T) {
				m, d := orderMessage(t), delivery(1)
				m.Data = []byte(`{"order_id": `)
				if code, body := pushtest.Send(t, sh.Request(t, url, m, d)); code != http.StatusNoContent {
					t.Fatalf("status %d %s", code, body)
				}
				dl := deadLetters(ps.Server, "analytics.dlq", m.Attributes["ce-id"])
				if len(dl) != 1 || !bytes.Equal(dl[0].Data, m.Data) {
					t.Fatalf("dead letters: %v", dl)
				}
				if n := len(rowsWithID(bq, m.Attributes["ce-id"])); n != 0 {
					t.Fatalf("%d rows for an undecodable event", n)
				}
			})
		})
	}
}

// panicking is a sink that panics while explode is set.
var (
	panicking = warehouse.NewMemory(Tables())
	explode   atomic.Bool
)

func init() {
	panicking.Fail = func(string, []warehouse.Row) error {
		if explode.Load() {
			panic("sink exploded")
		}
		return nil
	}
	h, err := newHandler(&Service{Sink: panicking}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), "analytics")
	if err != nil {
		panic(err)
	}
	functions.HTTP("AnalyticsPanicking", h.ServeHTTP)
}

func TestPanicAnswers5xxAndTheProcessSurvives(t *testing.T) {
	url := fftest.Start(t, "AnalyticsPanicking")
	for i, sh := range shapes {
		m := orderMessage(t)
		explode.Store(true)
		code, body := pushtest.Send(t, sh.Request(t, url, m, delivery(1)))
		explode.Store(false)
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "panic") {
			t.Fatalf("%s: status %d %s, want 503 (a panic is transient)", sh.Name, code, body)
		}
		// The same process serves the redelivery.
		if code, body := pushtest.Send(t, sh.Request(t, url, m, delivery(2))); code != http.StatusNoContent {
			t.Fatalf("%s: after the panic: status %d %s", sh.Name, code, body)
		}
		if n := len(panicking.Rows(Table)); n != i+1 {
			t.Fatalf("%s: %d rows", sh.Name, n)
		}
	}
}

func TestTransientSinkErrorIsRetriedInProcess(t *testing.T) {
	sink := warehouse.NewMemory(Tables())
	var calls atomic.Int32
	sink.Fail = func(string, []warehouse.Row) error {
		if calls.Add(1) == 1 {
			return retry.Transientf("backend blip")
		}
		return nil
	}
	rec := &messaging.Recorder{}
	h, err := newHandler(&Service{Sink: sink}, &deadletter.Publisher{Topic: "analytics.dlq", Messages: rec}, slog.New(slog.NewTextHandler(io.Discard, nil)), "analytics")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, sh := range shapes {
		calls.Store(0)
		m := orderMessage(t)
		if code, body := pushtest.Send(t, sh.Request(t, srv.URL, m, delivery(1))); code != http.StatusNoContent {
			t.Fatalf("%s: status %d %s", sh.Name, code, body)
		}
		if calls.Load() != 2 {
			t.Fatalf("%s: %d calls, want 2", sh.Name, calls.Load())
		}
	}
	if len(sink.Rows(Table)) != 2 || len(rec.Messages()) != 0 {
		t.Fatalf("rows %d, dead letters %d", len(sink.Rows(Table)), len(rec.Messages()))
	}
}

func TestEventRowMatchesTheSchemaFile(t *testing.T) {
	m := orderMessage(t)
	in, err := events.DecodeRequest(pushtest.Binary(t, "http://fn/", m, delivery(4)), 0)
	if err != nil {
		t.Fatal(err)
	}
	row := EventRow(in, time.Now())
	if row.InsertID != m.Attributes["ce-id"] {
		t.Fatalf("insert id %q", row.InsertID)
	}
	// Every column of the schema file, and only those, is set.
	got := map[string]bool{}
	for k := range row.Values {
		got[k] = true
	}
	for _, name := range EventsSchema.Names() {
		if !got[name] {
			t.Errorf("column %s missing from the row", name)
		}
		delete(got, name)
	}
	if len(got) > 0 {
		t.Errorf("columns not in schema/events.json: %v", got)
	}
	// And the values convert to the column types.
	if err := warehouse.NewMemory(Tables()).Insert(context.Background(), Table, []warehouse.Row{row}); err != nil {
		t.Fatalf("row rejected by the schema: %v", err)
	}
}

func TestConfigErrorListsEverythingMissing(t *testing.T) {
	env := func(vars map[string]string) func(string) string { return func(k string) string { return vars[k] } }
	h := app.NewLazy(func(ctx context.Context) (http.Handler, error) { return function.Build(ctx, env(nil)) }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", strings.NewReader("{}")))
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("status %d", rec.Code)
	}
	for _, name := range []string{"FUNCTION_NAME", "GOOGLE_CLOUD_PROJECT", EnvProject, EnvDataset} {
		if !strings.Contains(rec.Body.String(), name) {
			t.Errorf("message %q does not name %s", rec.Body.String(), name)
		}
	}

	// A local sink needs no dataset; an unknown sink is named.
	_, err := function.Build(context.Background(), env(map[string]string{EnvSink: "bogus"}))
	if err == nil || !strings.Contains(err.Error(), EnvSink) || strings.Contains(err.Error(), EnvDataset) {
		t.Fatalf("err %v", err)
	}
}

func TestLocalSinkLogsALoudWarning(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	path := t.TempDir() + "/events.jsonl"
	sink, closer, err := warehouse.Open(context.Background(), warehouse.OpenConfig{Kind: warehouse.KindJSONL, JSONLPath: path, Tables: Tables(), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	if !strings.Contains(buf.String(), `"level":"WARN"`) || !strings.Contains(buf.String(), "NOT to BigQuery") {
		t.Fatalf("log: %s", buf.String())
	}
	m := orderMessage(t)
	in, err := events.DecodeRequest(pushtest.Binary(t, "http://fn/", m, delivery(1)), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := (&Service{Sink: sink}).Record(context.Background(), handler.Event[events.Payload]{Incoming: in, Data: in.Payload}); err != nil {
		t.Fatal(err)
	}
	recs, err := warehouse.ReadJSONL(path)
	if err != nil || len(recs) != 1 || recs[0].InsertID != m.Attributes["ce-id"] {
		t.Fatalf("records %+v, %v", recs, err)
	}
}

// newHandler is the function's push endpoint around svc, configured as
// registered.
func newHandler(svc *Service, dl *deadletter.Publisher, logger *slog.Logger, consumer string) (*handler.Handler, error) {
	cfg := handlerConfig
	cfg.Consumer, cfg.Logger, cfg.DeadLetter = consumer, logger, dl
	return handler.New(cfg, handler.Stateless(svc.Record))
}
