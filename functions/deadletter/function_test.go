package deadletter

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"
	"github.com/google/uuid"

	"example.com/platform/shared/app"
	dl "example.com/platform/shared/deadletter"
	dlarchive "example.com/platform/shared/deadletter/archive"
	"example.com/platform/shared/domain"
	"example.com/platform/shared/events"
	"example.com/platform/shared/handler"
	"example.com/platform/shared/messaging"
	"example.com/platform/shared/retry"
	"example.com/platform/shared/testing/fftest"
	"example.com/platform/shared/testing/pushtest"
	"example.com/platform/shared/warehouse"
	"example.com/platform/shared/warehouse/bqfake"
)

const dlqSubscription = "projects/test-project/subscriptions/deadletter--payment.dlq"

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// annotated is what the payment function publishes to payment.dlq for a
// permanently failed order.created event.
func annotated(t *testing.T, data []byte) messaging.Message {
	t.Helper()
	_, m, err := events.NewMessage(context.Background(), "//example.com/orders-api", domain.OrderCreated{
		OrderID: uuid.NewString(), CustomerID: "cust-1",
		Items:    []domain.LineItem{{SKU: "SKU-1", Quantity: 1, UnitPrice: 100}},
		Currency: "EUR", Total: 100, CreatedAt: time.Now().UTC(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if data != nil {
		m.Data = data
	}
	return dl.Annotate(m, dl.Reason{
		Err: retry.Permanentf("validate order: customer blocked"), Consumer: "payment",
		SourceTopic: "order.created", Subscription: "projects/test-project/subscriptions/payment--order.created",
		MessageID: "orig-1", Attempt: 3, Time: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC),
		PublishTime: time.Date(2026, 5, 1, 11, 58, 0, 0, time.UTC),
	})
}

func dlqDelivery() events.Delivery {
	return events.Delivery{Subscription: dlqSubscription, MessageID: uuid.NewString(), Attempt: 1, PublishTime: time.Date(2026, 5, 1, 12, 0, 1, 0, time.UTC)}
}

// shapes are both push shapes of payment.dlq deliveries.
var shapes = pushtest.Shapes("projects/test-project/topics/payment.dlq")

func rowsFor(srv *bqfake.Server, messageID string) []map[string]any {
	var out []map[string]any
	for _, r := range srv.Rows(Table) {
		if r.Values["message_id"] == messageID {
			if fe := DeadLettersSchema.Validate(r.Values); fe != nil {
				panic("row does not match schema/dead_letters.json: " + fe.Error())
			}
			out = append(out, DeadLettersSchema.Normalize(r.Values))
		}
	}
	return out
}

func attrsOf(t *testing.T, row map[string]any) map[string]string {
	t.Helper()
	var a map[string]string
	if err := json.Unmarshal([]byte(row["attributes"].(string)), &a); err != nil {
		t.Fatalf("attributes %v: %v", row["attributes"], err)
	}
	return a
}

// TestThroughFramework serves the registered DeadLetter entry point through
// functions-framework-go, built from the environment as in production, with
// the real BigQuery client against bqfake.
func TestThroughFramework(t *testing.T) {
	bq := bqfake.New(t, "test-project", "analytics", Tables())
	for k, v := range map[string]string{
		"FUNCTION_NAME":           "deadletter",
		EnvProject:                "test-project",
		EnvDataset:                "analytics",
		warehouse.EnvEmulatorHost: bq.Host(),
		EnvInsertTimeout:          "300ms",
		EnvSink:                   "",
	} {
		t.Setenv(k, v)
	}
	url := fftest.Start(t, EntryPoint)

	for _, sh := range shapes {
		t.Run(sh.Name, func(t *testing.T) {
			t.Run("AnnotatedEventIsArchived", func(t *testing.T) {
				m, d := annotated(t, nil), dlqDelivery()
				if code, body := pushtest.Send(t, sh.Request(t, url, m, d)); code != http.StatusNoContent {
					t.Fatalf("status %d %s", code, body)
				}
				rows := rowsFor(bq, d.MessageID)
				if len(rows) != 1 {
					t.Fatalf("%d rows", len(rows))
				}
				r := rows[0]
				want := map[string]any{
					"original_topic": "order.created", "subscription": "projects/test-project/subscriptions/payment--order.created",
					"body": string(m.Data), "body_encoding": dlarchive.EncodingUTF8, "reason_class": "permanent",
					"reason_message": "validate order: customer blocked", "delivery_attempts": int64(3),
					"dead_lettered_at": time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC),
					"publish_time":     time.Date(2026, 5, 1, 11, 58, 0, 0, time.UTC),
				}
				for k, v := range want {
					if r[k] != v {
						t.Errorf("%s = %#v, want %#v", k, r[k], v)
					}
				}
				a := attrsOf(t, r)
				if a["ce-id"] != m.Attributes["ce-id"] || a[dl.AttrConsumer] != "payment" {
					t.Errorf("attributes %v", a)
				}
			})

			t.Run("UndecodableBinaryBodyIsArchivedAsBase64", func(t *testing.T) {
				raw := []byte{0xff, 0xfe, 0x00, 0x80, 'x'}
				m := messaging.Message{Data: raw, Attributes: map[string]string{"producer": "legacy", dl.AttrReason: "garbage"}}
				d := dlqDelivery()
				if code, body := pushtest.Send(t, sh.Request(t, url, m, d)); code != http.StatusNoContent {
					t.Fatalf("status %d %s", code, body)
				}
				rows := rowsFor(bq, d.MessageID)
				if len(rows) != 1 || rows[0]["body_encoding"] != dlarchive.EncodingBase64 {
					t.Fatalf("rows %v", rows)
				}
				got, err := base64.StdEncoding.DecodeString(rows[0]["body"].(string))
				if err != nil || !bytes.Equal(got, raw) {
					t.Fatalf("body %v decodes to %v (%v)", rows[0]["body"], got, err)
				}
				if attrsOf(t, rows[0])["producer"] != "legacy" {
					t.Errorf("attributes %v", rows[0]["attributes"])
				}
			})

			t.Run("TextBodyIsArchivedAsText", func(t *testing.T) {
				m := messaging.Message{Data: []byte("héllo, not an event"), Attributes: map[string]string{"producer": "manual"}}
				d := dlqDelivery()
				if code, body := pushtest.Send(t, sh.Request(t, url, m, d)); code != http.StatusNoContent {
					t.Fatalf("status %d %s", code, body)
				}
				rows := rowsFor(bq, d.MessageID)
				if len(rows) != 1 || rows[0]["body"] != "héllo, not an event" || rows[0]["body_encoding"] != dlarchive.EncodingUTF8 {
					t.Fatalf("rows %v", rows)
				}
			})

			t.Run("PubSubDeadLetteredAfterMaxAttempts", func(t *testing.T) {
				m := annotated(t, nil)
				for k := range m.Attributes {
					if strings.HasPrefix(k, "dlq-") {
						delete(m.Attributes, k)
					}
				}
				m.Attributes[dl.AttrPubSubDeliveryCount] = "5"
				m.Attributes[dl.AttrPubSubSubscription] = "analytics--order.created"
				m.Attributes[dl.AttrPubSubSubscriptionProject] = "test-project"
				m.Attributes[dl.AttrPubSubTopicPublishTime] = "2026-05-01T11:59:00.5Z"
				d := dlqDelivery()
				if code, body := pushtest.Send(t, sh.Request(t, url, m, d)); code != http.StatusNoContent {
					t.Fatalf("status %d %s", code, body)
				}
				rows := rowsFor(bq, d.MessageID)
				if len(rows) != 1 {
					t.Fatalf("%d rows", len(rows))
				}
				r := rows[0]
				want := map[string]any{
					"original_topic": "order.created", "subscription": "projects/test-project/subscriptions/analytics--order.created",
					"reason_class": dlarchive.ReasonDeliveryAttempts, "delivery_attempts": int64(5),
					"publish_time":     time.Date(2026, 5, 1, 11, 59, 0, 500_000_000, time.UTC),
					"dead_lettered_at": d.PublishTime,
				}
				for k, v := range want {
					if r[k] != v {
						t.Errorf("%s = %#v, want %#v", k, r[k], v)
					}
				}
			})

			t.Run("DuplicateDeliveryWritesOneRow", func(t *testing.T) {
				m, d := annotated(t, nil), dlqDelivery()
				for range 3 {
					if code, body := pushtest.Send(t, sh.Request(t, url, m, d)); code != http.StatusNoContent {
						t.Fatalf("status %d %s", code, body)
					}
				}
				if n := len(rowsFor(bq, d.MessageID)); n != 1 {
					t.Fatalf("%d rows, want 1", n)
				}
			})

			t.Run("InsertFailureIsNotAckedThenRedeliverySucceeds", func(t *testing.T) {
				m, d := annotated(t, nil), dlqDelivery()
				bq.FailAll(bqfake.BackendError)
				code, body := pushtest.Send(t, sh.Request(t, url, m, d))
				bq.Heal()
				if code != http.StatusServiceUnavailable {
					t.Fatalf("status %d %s, want 503", code, body)
				}
				if n := len(rowsFor(bq, d.MessageID)); n != 0 {
					t.Fatalf("%d rows", n)
				}
				d.Attempt = 2
				if code, body := pushtest.Send(t, sh.Request(t, url, m, d)); code != http.StatusNoContent {
					t.Fatalf("redelivery: status %d %s", code, body)
				}
				if n := len(rowsFor(bq, d.MessageID)); n != 1 {
					t.Fatalf("%d rows after redelivery", n)
				}
			})

			t.Run("RejectedRowIsNeverAcked", func(t *testing.T) {
				var drifted warehouse.Schema
				for _, f := range DeadLettersSchema {
					if f.Name != "reason_message" {
						drifted = append(drifted, f)
					}
				}
				bq.SetSchema(Table, drifted)
				defer bq.SetSchema(Table, DeadLettersSchema)
				m, d := annotated(t, nil), dlqDelivery()
				if code, body := pushtest.Send(t, sh.Request(t, url, m, d)); code != http.StatusInternalServerError || !strings.Contains(body, "no such field") {
					t.Fatalf("status %d %s, want 500 so Pub/Sub keeps it", code, body)
				}
			})
		})
	}
}

var (
	exploding = warehouse.NewMemory(Tables())
	explode   atomic.Bool
)

func init() {
	exploding.Fail = func(string, []warehouse.Row) error {
		if explode.Load() {
			panic("sink exploded")
		}
		return nil
	}
	functions.HTTP("DeadLetterPanicking", newHandler(&Service{Sink: exploding}, quiet, "deadletter").ServeHTTP)
}

func TestPanicAnswers5xxAndTheProcessSurvives(t *testing.T) {
	url := fftest.Start(t, "DeadLetterPanicking")
	for i, sh := range shapes {
		m, d := annotated(t, nil), dlqDelivery()
		explode.Store(true)
		code, body := pushtest.Send(t, sh.Request(t, url, m, d))
		explode.Store(false)
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "panic") {
			t.Fatalf("%s: status %d %s, want 503", sh.Name, code, body)
		}
		if code, body := pushtest.Send(t, sh.Request(t, url, m, d)); code != http.StatusNoContent {
			t.Fatalf("%s: after the panic: status %d %s", sh.Name, code, body)
		}
		if n := len(exploding.Rows(Table)); n != i+1 {
			t.Fatalf("%s: %d rows", sh.Name, n)
		}
	}
}

func TestArchiveRowWithoutMetadata(t *testing.T) {
	// A push without x-goog-pubsub-* headers still gets a stable id.
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("{not json"))
	in, _ := events.DecodeRequest(req, 0)
	now := time.Now()
	a, b := ArchiveRow(in, now), ArchiveRow(in, now.Add(time.Second))
	if a.InsertID == "" || a.InsertID != b.InsertID || !strings.HasPrefix(a.InsertID, "sha256:") {
		t.Fatalf("ids %q %q", a.InsertID, b.InsertID)
	}
	if err := warehouse.NewMemory(Tables()).Insert(context.Background(), Table, []warehouse.Row{a}); err != nil {
		t.Fatalf("row rejected by schema/dead_letters.json: %v", err)
	}
	if a.Values["dead_lettered_at"] != now {
		t.Fatalf("dead_lettered_at %v, want the receive time", a.Values["dead_lettered_at"])
	}
}

func TestEveryColumnIsSet(t *testing.T) {
	in, _ := events.DecodeRequest(pushtest.Binary(t, "http://fn/", annotated(t, nil), dlqDelivery()), 0)
	row := ArchiveRow(in, time.Now())
	for _, name := range DeadLettersSchema.Names() {
		if _, ok := row.Values[name]; !ok {
			t.Errorf("column %s not set", name)
		}
	}
	if len(row.Values) != len(DeadLettersSchema) {
		t.Errorf("row has %d columns, schema %d", len(row.Values), len(DeadLettersSchema))
	}
}

func TestConfigErrorListsEverythingMissing(t *testing.T) {
	h := app.NewLazy(func(ctx context.Context) (http.Handler, error) {
		return function.Build(ctx, func(string) string { return "" })
	}, quiet)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", strings.NewReader("x")))
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("status %d", rec.Code)
	}
	for _, name := range []string{"FUNCTION_NAME", EnvProject, EnvDataset} {
		if !strings.Contains(rec.Body.String(), name) {
			t.Errorf("message %q does not name %s", rec.Body.String(), name)
		}
	}
}

func TestNonPostIsRejected(t *testing.T) {
	rec := httptest.NewRecorder()
	newHandler(&Service{Sink: warehouse.NewMemory(Tables())}, quiet, "deadletter").ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("status %d", rec.Code)
	}
}

// newHandler is the function's push endpoint around svc, configured as
// registered.
func newHandler(svc *Service, logger *slog.Logger, consumer string) http.Handler {
	cfg := handlerConfig
	cfg.Consumer, cfg.Logger = consumer, logger
	h, err := handler.New(cfg, handler.Raw((&archiver{Service: svc, logger: logger}).archive))
	if err != nil {
		panic(err)
	}
	return h
}
