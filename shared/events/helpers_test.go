package events_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"example.com/platform/shared/events"
	"example.com/platform/shared/events/eventstest"
	"example.com/platform/shared/messaging"
)

const (
	thingID    = "7f1d2c3b-4a5e-4f60-8b7c-9d0e1f2a3b4c"
	otherID    = "0a1b2c3d-4e5f-4061-8273-8495a6b7c8d9"
	testSource = "//example.com/tests"
)

var t0 = eventstest.T0

// validCreated is a valid Created with nested parts, so the tests cover a
// payload with a list of structs.
func validCreated() eventstest.Created {
	return eventstest.Created{
		ThingID: thingID,
		Name:    "widget",
		Count:   3,
		Parts: []eventstest.Part{
			{Name: "bolt", Quantity: 2},
			{Name: "nut", Quantity: 1},
		},
		At: t0,
	}
}

// validPayloads returns one valid payload of every type eventstest
// registers, all about the same thing (thingID) at t0.
func validPayloads() []events.Payload {
	return []events.Payload{
		validCreated(),
		eventstest.Done{ThingID: thingID, At: t0},
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
	b, err := json.Marshal(events.MessagePublishedData{
		Message: events.PubsubMessage{
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
	r.Header.Set("Ce-Type", events.MessagePublishedType)
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
		"type":            events.MessagePublishedType,
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
