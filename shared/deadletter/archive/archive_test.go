package archive_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"example.com/platform/shared/deadletter"
	"example.com/platform/shared/deadletter/archive"
	"example.com/platform/shared/messaging"
	"example.com/platform/shared/warehouse"
)

// roundTrip encodes rec as the archive function writes it (Row, then the
// insertAll JSON the sinks store) and decodes it as eventctl reads it.
func roundTrip(t testing.TB, rec archive.Record) archive.Record {
	t.Helper()
	b, err := json.Marshal(rec.Row().Values)
	if err != nil {
		t.Fatalf("encode row: %v", err)
	}
	row, err := warehouse.DecodeJSONRow(b)
	if err != nil {
		t.Fatalf("decode JSON row %s: %v", b, err)
	}
	got, err := archive.DecodeRow(row)
	if err != nil {
		t.Fatalf("DecodeRow(%s): %v", b, err)
	}
	return got
}

func TestRecordRoundTrip(t *testing.T) {
	at := time.Date(2026, 5, 1, 12, 0, 0, 123456000, time.UTC)
	for name, m := range map[string]messaging.Message{
		"annotated": deadletter.Annotate(original(), deadletter.Reason{
			Consumer: "payment", SourceTopic: "order.created", Subscription: "payment--order.created",
			MessageID: "m-1", Attempt: 4, PublishTime: at.Add(-time.Minute), Time: at,
		}),
		"pubsub gave up": {Data: []byte{0xff, 0x00, 'x'}, Attributes: map[string]string{
			deadletter.AttrPubSubDeliveryCount: "5", deadletter.AttrPubSubSubscription: "shipment--payment.processed",
			deadletter.AttrPubSubSubscriptionProject: "p", deadletter.AttrPubSubTopicPublishTime: "2026-05-01T11:59:00.500+00:00",
		}},
		"bare": {Data: []byte("not an event")},
	} {
		t.Run(name, func(t *testing.T) {
			rec := archive.NewRecord(m, archive.Received{At: at})
			got := roundTrip(t, rec)
			if !reflect.DeepEqual(got, rec) {
				t.Fatalf("round trip\n got %+v\nwant %+v", got, rec)
			}
		})
	}
	rec := archive.NewRecord(messaging.Message{Data: []byte("x"), Attributes: map[string]string{
		deadletter.AttrPubSubDeliveryCount: "5", deadletter.AttrPubSubSubscription: "shipment--payment.processed", deadletter.AttrPubSubSubscriptionProject: "p",
	}}, archive.Received{At: at})
	if rec.Subscription != "projects/p/subscriptions/shipment--payment.processed" || rec.OriginalTopic != "payment.processed" ||
		rec.ReasonClass != archive.ReasonDeliveryAttempts || rec.DeliveryAttempts != 5 || !strings.HasPrefix(rec.MessageID, "sha256:") {
		t.Errorf("record of a message Pub/Sub dead-lettered: %+v", rec)
	}
}

func TestDecodeRowNamesTheColumn(t *testing.T) {
	good := func() map[string]any {
		return map[string]any{"message_id": "m", "dead_lettered_at": "2026-05-01T12:00:00Z"}
	}
	for col, bad := range map[string]any{
		"message_id": "", "dead_lettered_at": "yesterday", "attributes": "[1]", "delivery_attempts": "many",
		"body_encoding": "rot13", "body": 12.5, "publish_time": true,
	} {
		row := good()
		row[col] = bad
		if col == "body" {
			row["body_encoding"] = archive.EncodingBase64
			row["body"] = "!!!"
		}
		if _, err := archive.DecodeRow(row); err == nil || !strings.Contains(err.Error(), col) {
			t.Errorf("%s = %v: err = %v, want one naming the column", col, bad, err)
		}
	}
}

func original() messaging.Message {
	return messaging.Message{
		Data:        []byte(`{"order_id":"o-1"}`),
		OrderingKey: "o-1",
		Attributes: map[string]string{
			"ce-id": "e-1", "ce-type": "com.example.orders.order.created.v1", "ce-source": "/orders",
			"ce-specversion": "1.0", "Content-Type": "application/json", "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		},
	}
}
