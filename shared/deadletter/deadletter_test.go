package deadletter_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/net/http/httpguts"

	"example.com/platform/shared/deadletter"
	"example.com/platform/shared/events"
	"example.com/platform/shared/messaging"
	"example.com/platform/shared/retry"
	"example.com/platform/shared/testing/pubsubtest"
)

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

func TestPublishKeepsOriginalAndAddsReason(t *testing.T) {
	f := pubsubtest.New(t)
	f.CreateTopic(t, "payment.dlq")
	pub := messaging.NewPubSub(f.Client)
	defer pub.Stop()
	p := &deadletter.Publisher{Topic: "payment.dlq", Messages: pub}
	at := time.Date(2026, 11, 26, 10, 0, 0, 5, time.UTC)
	m := original()
	id, err := p.Publish(context.Background(), m, deadletter.Reason{
		Err: retry.Permanentf("decode order: missing field customer_id"), Consumer: "payment",
		SourceTopic: "order.created", Subscription: "payment--order.created", MessageID: "m-9", Attempt: 3, Time: at,
		PublishTime: at.Add(-time.Minute),
	})
	if err != nil {
		t.Fatal(err)
	}
	got := f.Server.Message(id)
	if string(got.Data) != string(m.Data) {
		t.Fatalf("body changed: %q", got.Data)
	}
	for k, v := range m.Attributes {
		if got.Attributes[k] != v {
			t.Errorf("attribute %s = %q, want %q", k, got.Attributes[k], v)
		}
	}
	want := map[string]string{
		deadletter.AttrReasonClass: "permanent", deadletter.AttrReason: "decode order: missing field customer_id",
		deadletter.AttrConsumer: "payment", deadletter.AttrSourceTopic: "order.created",
		deadletter.AttrSubscription: "payment--order.created", deadletter.AttrMessageID: "m-9",
		deadletter.AttrAttempt: "3", deadletter.AttrOrderingKey: "o-1", deadletter.AttrPublishTime: "2026-11-26T09:59:00.000000005Z", deadletter.AttrDeadLetteredAt: "2026-11-26T10:00:00.000000005Z",
	}
	for k, v := range want {
		if got.Attributes[k] != v {
			t.Errorf("attribute %s = %q, want %q", k, got.Attributes[k], v)
		}
	}
	if got.OrderingKey != "" {
		t.Errorf("ordering key kept: %q", got.OrderingKey)
	}
	if m.Attributes[deadletter.AttrReason] != "" {
		t.Error("Publish modified the caller's attributes")
	}
}

func TestPublishFailureIsTransient(t *testing.T) {
	boom := errors.New("unavailable")
	p := &deadletter.Publisher{Topic: "x.dlq", Messages: messaging.PublisherFunc(func(context.Context, string, messaging.Message) (string, error) {
		return "", boom
	})}
	_, err := p.Publish(context.Background(), original(), deadletter.Reason{Err: errors.New("bad")})
	if !errors.Is(err, boom) || !retry.IsTransient(err) {
		t.Fatalf("err = %v, want transient wrapping the publish error", err)
	}
	var none *deadletter.Publisher
	if _, err := none.Publish(context.Background(), original(), deadletter.Reason{}); !errors.Is(err, deadletter.ErrNoTopic) || !retry.IsTransient(err) {
		t.Fatalf("unconfigured publisher: %v", err)
	}
}

func TestReplayedMessageGetsNewestReason(t *testing.T) {
	var r messaging.Recorder
	p := &deadletter.Publisher{Topic: "x.dlq", Messages: &r}
	m := original()
	m.Attributes[deadletter.AttrReason] = "old reason"
	m.Attributes[deadletter.AttrAttempt] = "9"
	if _, err := p.Publish(context.Background(), m, deadletter.Reason{Err: errors.New("new reason")}); err != nil {
		t.Fatal(err)
	}
	got := r.Messages()[0].Attributes
	if got[deadletter.AttrReason] != "new reason" {
		t.Fatalf("reason = %q", got[deadletter.AttrReason])
	}
	if _, ok := got[deadletter.AttrAttempt]; ok {
		t.Fatal("stale attempt attribute kept")
	}
	if got[deadletter.AttrReasonClass] != "transient" {
		t.Fatalf("an unmarked error should be reported with its class (transient), got %q", got[deadletter.AttrReasonClass])
	}
}

func TestLongReasonIsTruncatedToValidUTF8(t *testing.T) {
	long := strings.Repeat("é", 2000)
	out := deadletter.Annotate(original(), deadletter.Reason{Err: errors.New(long)})
	v := out.Attributes[deadletter.AttrReason]
	if len(v) > deadletter.MaxAttributeValue || !utf8.ValidString(v) || !strings.HasSuffix(v, "…") {
		t.Fatalf("len %d valid %v", len(v), utf8.ValidString(v))
	}
}

// A multi-line error must not make the dead letter undeliverable: a
// no-wrapper push carries attributes as HTTP headers.
func TestMultiLineReasonStaysDeliverable(t *testing.T) {
	err := errors.New("insert shipment: ERROR: duplicate key\nDETAIL: Key (order_id)=(o-1) already exists.\r\n\tat line 3 \xff")
	out := deadletter.Annotate(original(), deadletter.Reason{Err: err, Consumer: "ship\nment"})
	want := "insert shipment: ERROR: duplicate key DETAIL: Key (order_id)=(o-1) already exists. at line 3 \uFFFD"
	if got := out.Attributes[deadletter.AttrReason]; got != want {
		t.Fatalf("reason = %q, want %q", got, want)
	}
	if got := out.Attributes[deadletter.AttrConsumer]; got != "ship ment" {
		t.Fatalf("consumer = %q", got)
	}
	req, rerr := events.NewPushRequest(context.Background(), "http://127.0.0.1/", out, events.Delivery{MessageID: "1"})
	if rerr != nil {
		t.Fatal(rerr)
	}
	for k, vs := range req.Header {
		for _, v := range vs {
			if !httpguts.ValidHeaderFieldValue(v) {
				t.Fatalf("header %s = %q is not a valid HTTP header value", k, v)
			}
		}
	}
}
