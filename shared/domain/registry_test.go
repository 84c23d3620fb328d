package domain

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"example.com/platform/shared/events"
	"example.com/platform/shared/manifest"
	"example.com/platform/shared/messaging"
	"example.com/platform/shared/retry"
)

// wantTopics is the topic of every domain event type, as topics.yaml at
// the repository root lists it.
var wantTopics = map[string]string{
	"com.example.orders.order.created.v1":         "order.created",
	"com.example.orders.order.cancelled.v1":       "order.created",
	"com.example.payments.payment.processed.v1":   "payment.processed",
	"com.example.payments.payment.failed.v1":      "payment.failed",
	"com.example.payments.payment.refunded.v1":    "payment.refunded",
	"com.example.shipping.shipment.dispatched.v1": "shipment.dispatched",
}

// TestRegistryMatchesTopicsYAML checks that importing the package
// registers every domain type, each with the topic topics.yaml lists for
// it, and nothing else.
func TestRegistryMatchesTopicsYAML(t *testing.T) {
	f, err := os.Open(filepath.Join("..", "..", "topics.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cat, err := manifest.ParseCatalogue(f)
	if err != nil {
		t.Fatal(err)
	}
	fromYAML := map[string]string{}
	for topic, def := range cat.Topics {
		for _, typ := range def.EventTypes {
			fromYAML[typ] = topic
		}
	}
	fromRegistry := map[string]string{}
	for _, ti := range events.Types() {
		fromRegistry[ti.Type] = ti.Topic
		if got, err := events.TopicFor(ti.Type); err != nil || got != ti.Topic {
			t.Errorf("TopicFor(%s) = %q, %v", ti.Type, got, err)
		}
		if want := "https://example.com/schemas/events/" + ti.Type + ".json"; ti.DataSchema != want {
			t.Errorf("%s: dataschema %q, want %q", ti.Type, ti.DataSchema, want)
		}
	}
	if !maps.Equal(fromYAML, fromRegistry) {
		t.Fatalf("topics.yaml event types %v != registry %v", fromYAML, fromRegistry)
	}
	if !maps.Equal(fromRegistry, wantTopics) {
		t.Fatalf("registry %v != %v", fromRegistry, wantTopics)
	}
	var types []string
	for _, p := range validPayloads() {
		types = append(types, p.EventType())
	}
	if got := slices.Sorted(maps.Keys(fromRegistry)); !slices.Equal(got, slices.Sorted(slices.Values(types))) {
		t.Fatalf("registered %v, payloads %v", got, types)
	}
}

// TestPayloadsRoundTrip sends every domain payload through the kernel's
// codec: it is published to its topic, keyed by the order, and decodes to
// an equal value.
func TestPayloadsRoundTrip(t *testing.T) {
	for _, p := range validPayloads() {
		t.Run(p.EventType(), func(t *testing.T) {
			topic, m, err := events.NewMessage(context.Background(), testSource, p)
			if err != nil {
				t.Fatal(err)
			}
			if topic != wantTopics[p.EventType()] {
				t.Fatalf("topic = %q, want %q", topic, wantTopics[p.EventType()])
			}
			if m.OrderingKey != orderID || m.Attributes[events.AttrSubject] != orderID {
				t.Fatalf("ordering key %q, subject %q, want the order id", m.OrderingKey, m.Attributes[events.AttrSubject])
			}
			in, err := decode(t, m)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(in.Payload, p) {
				t.Fatalf("payload = %#v, want %#v", in.Payload, p)
			}
		})
	}
}

// TestOrderCreatedWireFormat pins the JSON field names of the order event.
func TestOrderCreatedWireFormat(t *testing.T) {
	_, m, err := events.NewMessage(context.Background(), testSource, validOrderCreated())
	if err != nil {
		t.Fatal(err)
	}
	if m.Attributes[events.AttrType] != "com.example.orders.order.created.v1" ||
		m.Attributes[events.AttrDataSchema] != "https://example.com/schemas/events/com.example.orders.order.created.v1.json" {
		t.Fatalf("attributes = %v", m.Attributes)
	}
	var body map[string]any
	if err := json.Unmarshal(m.Data, &body); err != nil {
		t.Fatalf("body is not JSON: %v", err)
	}
	if body["order_id"] != orderID || body["customer_id"] != "cust-42" || body["total"] != float64(3499) ||
		body["currency"] != "EUR" || body["created_at"] != "2026-05-01T12:30:45.123456789Z" {
		t.Fatalf("body = %s", m.Data)
	}
	items := body["items"].([]any)
	if it := items[0].(map[string]any); len(items) != 2 || it["sku"] != "SKU-1" || it["quantity"] != float64(2) || it["unit_price"] != float64(1250) {
		t.Fatalf("items = %v", items)
	}
}

func TestNewRejectsUnknownCurrency(t *testing.T) {
	p := validOrderCreated()
	p.Currency = "XXX"
	_, err := events.New(testSource, p)
	if !errors.Is(err, retry.ErrPermanent) || !errors.Is(err, events.ErrInvalidPayload) ||
		!strings.Contains(err.Error(), `currency: unknown ISO 4217 currency code "XXX"`) {
		t.Fatalf("err = %v", err)
	}
}

// TestDecodeRejectsInvalidOrders checks the domain's validation of
// received orders (the committed schema first, then Validate): every
// problem is a permanent error naming the fields.
func TestDecodeRejectsInvalidOrders(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(m *messaging.Message)
		want   string
	}{
		{name: "wrong JSON field type", mutate: func(m *messaging.Message) {
			m.Data = bytes.Replace(m.Data, []byte(`"quantity":2`), []byte(`"quantity":"2"`), 1)
		}, want: "violates its schema: items/0/quantity: got string, want integer"},
		{name: "missing payload field", mutate: func(m *messaging.Message) {
			m.Data = bytes.Replace(m.Data, []byte(`"customer_id":"cust-42"`), []byte(`"customer_id":""`), 1)
		}, want: "invalid OrderCreated: customer_id: is required"},
		{name: "JSON null data", mutate: func(m *messaging.Message) { m.Data = []byte("null") },
			want: "violates its schema: (root): got null, want object"},
		{name: "missing required field", mutate: func(m *messaging.Message) {
			m.Data = bytes.Replace(m.Data, []byte(`"customer_id":"cust-42",`), nil, 1)
		}, want: "violates its schema: (root): missing property 'customer_id'"},
		{name: "invalid payload values", mutate: func(m *messaging.Message) {
			m.Data = bytes.Replace(m.Data, []byte(`"currency":"EUR"`), []byte(`"currency":"eur"`), 1)
			m.Data = bytes.Replace(m.Data, []byte(`"quantity":2`), []byte(`"quantity":0`), 1)
		}, want: `invalid OrderCreated: currency: unknown ISO 4217 currency code "eur"; items[0].quantity: must be between 1 and 10000, got 0`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, m, err := events.NewMessage(context.Background(), testSource, validOrderCreated())
			if err != nil {
				t.Fatal(err)
			}
			before := string(m.Data)
			tt.mutate(&m)
			if string(m.Data) == before {
				t.Fatalf("mutation did not apply to %s", before)
			}
			in, err := decode(t, m)
			if err == nil || !retry.IsPermanent(err) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want a permanent error containing %q", err, tt.want)
			}
			if in.Payload != nil {
				t.Fatalf("payload set on error: %#v", in.Payload)
			}
		})
	}
}

// decode delivers m the way a no-wrapper push subscription does and
// decodes the request.
func decode(t *testing.T, m messaging.Message) (*events.Incoming, error) {
	t.Helper()
	r, err := events.NewPushRequest(context.Background(), "http://fn.local/", m,
		events.Delivery{Subscription: "projects/p/subscriptions/s", MessageID: "1", PublishTime: t0, Attempt: 1})
	if err != nil {
		t.Fatal(err)
	}
	return events.DecodeRequest(r, 0)
}
