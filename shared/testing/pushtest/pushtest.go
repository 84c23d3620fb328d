// Package pushtest builds and sends the HTTP requests Pub/Sub push
// deliveries make, in both shapes a function receives: the binary-mode
// CloudEvent of a no-wrapper push subscription and Eventarc's
// messagePublished envelope. Tests use it to drive push endpoints the way
// production does.
package pushtest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	"example.com/platform/shared/events"
	"example.com/platform/shared/messaging"
)

// Request builds the push request of m, delivered as d, to url. It fails
// the test when the request cannot be built.
type Request func(t testing.TB, url string, m messaging.Message, d events.Delivery) *http.Request

// Binary is what a no-wrapper push subscription sends:
// events.NewPushRequest(m, d).
func Binary(t testing.TB, url string, m messaging.Message, d events.Delivery) *http.Request {
	t.Helper()
	req, err := events.NewPushRequest(context.Background(), url, m, d)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// Eventarc returns the builder of Eventarc's messagePublished envelope for
// messages published to topic (a full name, projects/P/topics/T: the
// envelope's ce-source). The envelope carries m's data, attributes and
// ordering key with d's subscription, message id and publish time (when
// set); Eventarc carries no delivery attempt, so d.Attempt is left out.
// Each request has a fresh envelope ce-id.
func Eventarc(topic string) Request {
	return func(t testing.TB, url string, m messaging.Message, d events.Delivery) *http.Request {
		t.Helper()
		msg := events.PubsubMessage{Data: m.Data, Attributes: m.Attributes, MessageID: d.MessageID, OrderingKey: m.OrderingKey}
		if !d.PublishTime.IsZero() {
			msg.PublishTime = d.PublishTime.Format(time.RFC3339Nano)
		}
		body, err := json.Marshal(events.MessagePublishedData{Message: msg, Subscription: d.Subscription})
		if err != nil {
			t.Fatal(err)
		}
		req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Ce-Id", uuid.NewString())
		req.Header.Set("Ce-Specversion", "1.0")
		req.Header.Set("Ce-Source", "//pubsub.googleapis.com/"+topic)
		req.Header.Set("Ce-Type", events.MessagePublishedType)
		return req
	}
}

// Shape is a named delivery shape.
type Shape struct {
	Name    string
	Request Request
}

// Shapes are both delivery shapes, "binary" and "eventarc" (for messages
// published to topic), for tests that run once per shape.
func Shapes(topic string) []Shape {
	return []Shape{{"binary", Binary}, {"eventarc", Eventarc(topic)}}
}

// Client sends the requests of Send and Do: a client with a timeout, so a
// hung endpoint fails the test instead of blocking it.
var Client = &http.Client{Timeout: 60 * time.Second}

// Send sends req with Client and returns the status code and body. It
// fails the test when no response arrives; call it from the test's
// goroutine (other goroutines use Do).
func Send(t testing.TB, req *http.Request) (int, string) {
	t.Helper()
	code, body, err := Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return code, body
}

// Do sends req with Client and returns the status code and body. It is
// safe for concurrent use.
func Do(req *http.Request) (int, string, error) {
	resp, err := Client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}
