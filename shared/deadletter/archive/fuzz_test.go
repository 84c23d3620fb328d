package archive_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"example.com/platform/shared/deadletter"
	"example.com/platform/shared/deadletter/archive"
	"example.com/platform/shared/events"
	"example.com/platform/shared/messaging"
	"example.com/platform/shared/warehouse"
	"golang.org/x/net/http/httpguts"
)

// parseAttrBlob reads "key=value" lines (a line without "=" is a key with
// no value), the fuzzers' attribute input.
func parseAttrBlob(s string) map[string]string {
	attrs := map[string]string{}
	for line := range strings.SplitSeq(s, "\n") {
		if line == "" {
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		attrs[k] = v
	}
	return attrs
}

func attrBlob(attrs map[string]string) string {
	var b strings.Builder
	for k, v := range attrs {
		b.WriteString(k + "=" + v + "\n")
	}
	return b.String()
}

// FuzzArchiveRecord builds the archive record of a message with arbitrary
// body and attributes. Properties: no panic; the record encodes, and
// decoding the encoded row gives the same record.
func FuzzArchiveRecord(f *testing.F) {
	f.Add([]byte(`{"order_id":"o-1"}`), attrBlob(deadletter.Annotate(original(), deadletter.Reason{Consumer: "payment", Attempt: 2}).Attributes), "m-1")
	f.Add([]byte{0xff, 0, 1}, "CloudPubSubDeadLetterSourceDeliveryCount=5\nCloudPubSubDeadLetterSourceSubscription=a--b\nCloudPubSubDeadLetterSourceSubscriptionProject=p", "")
	f.Add([]byte(""), "dlq-time=not a time\ndlq-publish-time=1e300\ndlq-delivery-attempt=-3\nce-type=x", "")
	f.Add([]byte("x"), "dlq-time=0001-01-01T00:00:00Z\ndlq-publish-time=9999-12-31T23:59:59.999999Z", "id")
	f.Fuzz(func(t *testing.T, body []byte, attrs, id string) {
		m := messaging.Message{Data: body, Attributes: parseAttrBlob(attrs)}
		rec := archive.NewRecord(m, archive.Received{MessageID: id, At: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)})
		if got := roundTrip(t, rec); !reflect.DeepEqual(got, rec) {
			t.Fatalf("round trip\n got %+v\nwant %+v", got, rec)
		}
	})
}

// FuzzDecodeRow decodes arbitrary archive rows (JSON objects, the form
// the JSONL archive and insertAll use). Properties: no panic; an error
// names the column; a decoded record encodes, and encoding and decoding
// it again is stable.
func FuzzDecodeRow(f *testing.F) {
	for _, rec := range []archive.Record{
		archive.NewRecord(deadletter.Annotate(original(), deadletter.Reason{Consumer: "payment"}), archive.Received{MessageID: "m-1", At: time.Unix(1777600000, 123000).UTC()}),
		archive.NewRecord(messaging.Message{Data: []byte{0xff}}, archive.Received{At: time.Unix(0, 0).UTC()}),
	} {
		b, err := json.Marshal(rec.Row().Values)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"message_id":"m","dead_lettered_at":1777600000,"delivery_attempts":"7","attributes":{"a":1,"b":null}}`))
	f.Add([]byte(`{"message_id":"m","dead_lettered_at":"2026-05-01 12:00:00 UTC","body":"!!","body_encoding":"base64"}`))
	f.Add([]byte(`{"message_id":"m","dead_lettered_at":1e300}`))
	f.Add([]byte(`{"message_id":"m","dead_lettered_at":-99999999999999}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		row, err := warehouse.DecodeJSONRow(doc)
		if err != nil {
			return
		}
		rec, err := archive.DecodeRow(row)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "column ") {
				t.Fatalf("error %q does not name the column", err)
			}
			return
		}
		once := roundTrip(t, rec)
		if twice := roundTrip(t, once); !reflect.DeepEqual(once, twice) {
			t.Fatalf("not stable\n once %+v\ntwice %+v", once, twice)
		}
		if once.MessageID != rec.MessageID || string(once.Body) != string(rec.Body) || !once.DeadLetteredAt.Equal(rec.DeadLetteredAt) {
			t.Fatalf("encoding changed the record\n got %+v\nwant %+v", once, rec)
		}
	})
}

// FuzzDeadLetterAttributes annotates a message carrying arbitrary
// attributes with an arbitrary reason. Properties: no panic; every reason
// attribute is one line of valid UTF-8 of at most MaxAttributeValue bytes
// (so the dead letter is deliverable as push headers); the original
// attributes that are not reason attributes are kept; and the archive
// record built from the delivered dead letter gives the reason, consumer,
// subscription and attempt back.
func FuzzDeadLetterAttributes(f *testing.F) {
	f.Add(attrBlob(original().Attributes), "decode order: missing field customer_id", "payment", "order.created", "payment--order.created", 3)
	f.Add("dlq-reason=old\ndlq-delivery-attempt=9\nCloudPubSubDeadLetterSourceDeliveryCount=5", "line one\nline two\r\n\tat x", "ship\nment", "", "", 0)
	f.Add("ce-id=\xff", "\xff\xfe\x00", "\u2028", "t", "projects/p/subscriptions/a--b", -1)
	f.Add("", strings.Repeat("é", 700), strings.Repeat("x", 2000), "", "", 1<<30)
	f.Fuzz(func(t *testing.T, attrs, reason, consumer, topic, sub string, attempt int) {
		m := messaging.Message{Data: []byte(`{"order_id":"o-1"}`), Attributes: parseAttrBlob(attrs)}
		at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
		out := deadletter.Annotate(m, deadletter.Reason{
			Err: errors.New(reason), Consumer: consumer, SourceTopic: topic, Subscription: sub,
			MessageID: "m-1", Attempt: attempt, Time: at,
		})
		for k, v := range out.Attributes {
			if !strings.HasPrefix(k, deadletter.ReasonAttrPrefix) {
				if v != m.Attributes[k] {
					t.Fatalf("original attribute %q changed: %q -> %q", k, m.Attributes[k], v)
				}
				continue
			}
			if len(v) > deadletter.MaxAttributeValue || !utf8.ValidString(v) || !httpguts.ValidHeaderFieldValue(v) {
				t.Fatalf("reason attribute %s = %q is not one deliverable line", k, v)
			}
		}
		for k, v := range m.Attributes {
			if !strings.HasPrefix(k, deadletter.ReasonAttrPrefix) && out.Attributes[k] != v {
				t.Fatalf("original attribute %q lost", k)
			}
		}
		if out.Attributes[deadletter.AttrReason] != deadletter.AttributeValue(reason) {
			t.Fatalf("reason = %q, want AttributeValue(%q)", out.Attributes[deadletter.AttrReason], reason)
		}
		// Deliver it as a no-wrapper push and archive it: the reason
		// survives when every original attribute is a valid header.
		for k, v := range m.Attributes {
			if !httpguts.ValidHeaderFieldName(k) || !httpguts.ValidHeaderFieldValue(v) || strings.HasPrefix(strings.ToLower(k), "x-goog-") {
				return
			}
		}
		req, err := events.NewPushRequest(context.Background(), "http://fn/", out, events.Delivery{MessageID: "dl-1"})
		if err != nil {
			t.Fatal(err)
		}
		in, _ := events.DecodeRequest(req, 0)
		rec := archive.NewRecord(in.Message, archive.Received{MessageID: in.Delivery.MessageID, At: at})
		if rec.ReasonMessage != out.Attributes[deadletter.AttrReason] || rec.MessageID != "dl-1" || !rec.DeadLetteredAt.Equal(at) {
			t.Fatalf("record %+v lost the reason %q", rec, out.Attributes[deadletter.AttrReason])
		}
		if sub != "" && rec.Subscription != out.Attributes[deadletter.AttrSubscription] {
			t.Fatalf("subscription %q, want %q", rec.Subscription, out.Attributes[deadletter.AttrSubscription])
		}
		if attempt > 0 && rec.DeliveryAttempts != int64(attempt) {
			t.Fatalf("attempts %d, want %d", rec.DeliveryAttempts, attempt)
		}
	})
}
