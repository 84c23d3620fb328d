package analytics

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"example.com/platform/shared/domain"
	"example.com/platform/shared/events"
	"example.com/platform/shared/handler"
	"example.com/platform/shared/manifest"
	"example.com/platform/shared/testing/pushtest"
	"example.com/platform/shared/warehouse"
)

// TestConsumesEveryTopic: the function records every domain event, so
// its manifest consumes every topic of topics.yaml, each with the same
// settings.
func TestConsumesEveryTopic(t *testing.T) {
	f, err := os.Open("../../topics.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cat, err := manifest.ParseCatalogue(f)
	if err != nil {
		t.Fatal(err)
	}
	m, err := manifest.LoadFile("function.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var consumed []string
	for _, c := range m.Consumes {
		consumed = append(consumed, c.Topic)
		first := m.Consumes[0]
		first.Topic = c.Topic
		if c != first {
			t.Errorf("consumes %+v: settings differ from %+v", c, m.Consumes[0])
		}
	}
	var topics []string
	for name := range cat.Topics {
		topics = append(topics, name)
	}
	if slices.Sort(consumed); !slices.Equal(consumed, slices.Sorted(slices.Values(topics))) {
		t.Fatalf("consumes %v, topics.yaml has %v", consumed, topics)
	}
}

// TestRecordsTheCancellationEvents writes the rows of order.cancelled and
// payment.refunded: the event's type, subject and data, as for every type.
func TestRecordsTheCancellationEvents(t *testing.T) {
	orderID := uuid.NewString()
	now := time.Now().UTC()
	for _, c := range []struct {
		p     events.Payload
		topic string
	}{
		{domain.OrderCancelled{OrderID: orderID, Reason: "changed my mind", PreviousStatus: "paid", CancelledAt: now}, "order.created"},
		{domain.PaymentRefunded{OrderID: orderID, PaymentID: uuid.NewString(), RefundReference: "rf_1", Amount: 1250, Currency: "EUR", RefundedAt: now}, "payment.refunded"},
	} {
		t.Run(c.p.EventType(), func(t *testing.T) {
			topic, m, err := events.NewMessage(context.Background(), "//example.com/test", c.p)
			if err != nil || topic != c.topic {
				t.Fatalf("topic %q, %v", topic, err)
			}
			in, err := events.DecodeRequest(pushtest.Binary(t, "http://fn/", m, delivery(1)), 0)
			if err != nil {
				t.Fatal(err)
			}
			sink := warehouse.NewMemory(Tables())
			svc := &Service{Sink: sink}
			if err := svc.Record(context.Background(), handler.Event[events.Payload]{Incoming: in, Data: in.Payload}); err != nil {
				t.Fatal(err)
			}
			rows := sink.Rows(Table)
			if len(rows) != 1 || rows[0].InsertID != m.Attributes[events.AttrID] {
				t.Fatalf("rows %+v", rows)
			}
			v := rows[0].Values
			if v["event_type"] != c.p.EventType() || v["subject"] != orderID {
				t.Fatalf("row %v", v)
			}
			data, _ := v["data"].(string) // a JSON column holds the document's text
			var back map[string]any
			if err := json.Unmarshal([]byte(data), &back); err != nil || back["order_id"] != orderID {
				t.Fatalf("data column %v: %v", v["data"], err)
			}
		})
	}
}
