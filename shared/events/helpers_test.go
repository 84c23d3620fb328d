package events

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"example.com/platform/shared/messaging"
)

const (
	orderID    = "7f1d2c3b-4a5e-4f60-8b7c-9d0e1f2a3b4c"
	paymentID  = "0a1b2c3d-4e5f-4061-8273-8495a6b7c8d9"
	shipmentID = "1b2c3d4e-5f60-4172-8384-95a6b7c8d9e0"
	testSource = "//example.com/tests"
)

var t0 = time.Date(2026, 5, 1, 12, 30, 45, 123456789, time.UTC)

func validOrderCreated() OrderCreated {
	return OrderCreated{
		OrderID:    orderID,
		CustomerID: "cust-42",
		Items: []LineItem{
			{SKU: "SKU-1", Quantity: 2, UnitPrice: 1250},
			{SKU: "SKU-2", Quantity: 1, UnitPrice: 999},
		},
		Currency:  "EUR",
		Total:     3499,
		CreatedAt: t0,
	}
}

func validPayloads() []Payload {
	return []Payload{
		validOrderCreated(),
		PaymentProcessed{OrderID: orderID, PaymentID: paymentID, Amount: 3499, Currency: "EUR", GatewayReference: "gw_123", ProcessedAt: t0},
		PaymentFailed{OrderID: orderID, Reason: "card_declined", DeclineCode: "insufficient_funds", Amount: 3499, Currency: "EUR", FailedAt: t0},
		ShipmentDispatched{OrderID: orderID, ShipmentID: shipmentID, Carrier: "DHL", TrackingNumber: "JD0123456789", DispatchedAt: t0},
	}
}

// pushMeta is the metadata a no-wrapper push writes as x-goog-pubsub-* headers.
type pushMeta struct {
	Subscription, MessageID, PublishTime, Attempt string
}

var defaultMeta = pushMeta{
	Subscription: "projects/p/subscriptions/payment--order.created",
	MessageID:    "2070443601311540",
	PublishTime:  "2026-05-01T12:30:46.5Z",
	Attempt:      "2",
}

// noWrapperRequest builds the request a no-wrapper push subscription with
// write_metadata sends for m: every attribute becomes a header of the same
// name (Go canonicalises it, as net/http does on the server), the metadata
// x-goog-pubsub-* headers, the data the body; plus the transport headers
// the function sees in production.
func noWrapperRequest(m messaging.Message, meta pushMeta) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(m.Data))
	r.Header = http.Header{}
	for k, v := range m.Attributes {
		r.Header.Set(k, v)
	}
	set := func(k, v string) {
		if v != "" {
			r.Header.Set(k, v)
		}
	}
	set("x-goog-pubsub-subscription-name", meta.Subscription)
	set("x-goog-pubsub-message-id", meta.MessageID)
	set("x-goog-pubsub-publish-time", meta.PublishTime)
	set("x-goog-pubsub-ordering-key", m.OrderingKey)
	set("x-goog-pubsub-delivery-attempt", meta.Attempt)
	r.Header.Set("Authorization", "Bearer secret-oidc-token")
	r.Header.Set("User-Agent", "CloudPubSub-Google")
	r.Header.Set("X-Cloud-Trace-Context", "105445aa7843bc8bf206b12000100000/1;o=1")
	r.Header.Set("X-Forwarded-For", "10.0.0.1")
	return r
}

// eventarcData is the messagePublished envelope for m.
func eventarcData(t testing.TB, m messaging.Message) []byte {
	t.Helper()
	b, err := json.Marshal(MessagePublishedData{
		Message: PubsubMessage{
			Data: m.Data, Attributes: m.Attributes, MessageID: defaultMeta.MessageID,
			PublishTime: defaultMeta.PublishTime, OrderingKey: m.OrderingKey,
		},
		Subscription: "projects/p/subscriptions/eventarc-us-central1-trigger-sub-000",
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// eventarcBinaryRequest is how Eventarc delivers a Pub/Sub message to a
// Cloud Run service: a binary-mode messagePublished CloudEvent.
func eventarcBinaryRequest(t testing.TB, m messaging.Message) *http.Request {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(eventarcData(t, m)))
	r.Header = http.Header{}
	r.Header.Set("Ce-Id", defaultMeta.MessageID)
	r.Header.Set("Ce-Source", "//pubsub.googleapis.com/projects/p/topics/order.created")
	r.Header.Set("Ce-Specversion", "1.0")
	r.Header.Set("Ce-Type", MessagePublishedType)
	r.Header.Set("Ce-Time", defaultMeta.PublishTime)
	r.Header.Set("Content-Type", "application/json; charset=utf-8")
	r.Header.Set("Authorization", "Bearer x")
	return r
}

func eventarcStructuredRequest(t testing.TB, m messaging.Message) *http.Request {
	t.Helper()
	body, err := json.Marshal(map[string]any{
		"specversion":     "1.0",
		"id":              defaultMeta.MessageID,
		"source":          "//pubsub.googleapis.com/projects/p/topics/order.created",
		"type":            MessagePublishedType,
		"time":            defaultMeta.PublishTime,
		"datacontenttype": "application/json",
		"data":            json.RawMessage(eventarcData(t, m)),
	})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	r.Header = http.Header{"Content-Type": {"application/cloudevents+json; charset=utf-8"}}
	return r
}
