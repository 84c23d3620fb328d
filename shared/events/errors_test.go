package events_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"example.com/platform/shared/events"
	"example.com/platform/shared/events/eventstest"
	"example.com/platform/shared/messaging"
	"example.com/platform/shared/retry"
)

// validMessage returns a fresh encoded Created message (with parts).
func validMessage(t testing.TB) messaging.Message {
	t.Helper()
	_, m, err := events.NewMessage(context.Background(), testSource, validCreated())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestDecodeRequestPermanentErrors(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(m *messaging.Message)
		maxBody int64
		want    string
	}{
		{name: "unknown type", mutate: func(m *messaging.Message) { m.Attributes["ce-type"] = "com.example.test.thing.deleted.v1" },
			want: `unknown event type "com.example.test.thing.deleted.v1"`},
		{name: "unsupported version", mutate: func(m *messaging.Message) { m.Attributes["ce-type"] = "com.example.test.thing.created.v2" },
			want: "unsupported version v2 of event type com.example.test.thing.created (supported: v1)"},
		{name: "unversioned type", mutate: func(m *messaging.Message) { m.Attributes["ce-type"] = "com.example.test.thing.created" },
			want: `unknown event type "com.example.test.thing.created"`},
		{name: "malformed JSON", mutate: func(m *messaging.Message) { m.Data = []byte(`{"thing_id":`) },
			want: "malformed JSON data for " + eventstest.TypeCreated + ": unexpected end of JSON input"},
		{name: "wrong JSON field type", mutate: func(m *messaging.Message) {
			m.Data = bytes.Replace(m.Data, []byte(`"quantity":2`), []byte(`"quantity":"2"`), 1)
		}, want: "cannot unmarshal string into Go struct field Part.parts.quantity of type int64"},
		{name: "empty data", mutate: func(m *messaging.Message) { m.Data = nil },
			want: "event " + eventstest.TypeCreated + " has no data"},
		{name: "missing payload field", mutate: func(m *messaging.Message) {
			m.Data = bytes.Replace(m.Data, []byte(`"name":"widget"`), []byte(`"name":""`), 1)
		}, want: "invalid Created: name: is required"},
		{name: "JSON null data", mutate: func(m *messaging.Message) { m.Data = []byte("null") },
			want: "invalid Created: thing_id: must be a non-nil UUID in canonical form; name: is required; at: is required"},
		{name: "subject is not the aggregate", mutate: func(m *messaging.Message) { m.Attributes["ce-subject"] = otherID },
			want: `subject "` + otherID + `" does not match the payload's aggregate id "` + thingID + `"`},
		{name: "missing ce-id", mutate: func(m *messaging.Message) { delete(m.Attributes, "ce-id") },
			want: "missing required CloudEvents attribute(s): ce-id"},
		{name: "missing ce-source and ce-type", mutate: func(m *messaging.Message) {
			delete(m.Attributes, "ce-source")
			delete(m.Attributes, "ce-type")
		}, want: "missing required CloudEvents attribute(s): ce-source, ce-type"},
		{name: "missing ce-specversion", mutate: func(m *messaging.Message) { delete(m.Attributes, "ce-specversion") },
			want: "missing required CloudEvents attribute(s): ce-specversion"},
		{name: "missing subject", mutate: func(m *messaging.Message) { delete(m.Attributes, "ce-subject") },
			want: "missing required CloudEvents attribute(s): subject"},
		{name: "missing time", mutate: func(m *messaging.Message) { delete(m.Attributes, "ce-time") },
			want: "missing required CloudEvents attribute(s): time"},
		{name: "spec version 0.3", mutate: func(m *messaging.Message) { m.Attributes["ce-specversion"] = "0.3" },
			want: `unsupported CloudEvents specversion "0.3" (want 1.0)`},
		{name: "bad time", mutate: func(m *messaging.Message) { m.Attributes["ce-time"] = "yesterday" },
			want: `invalid CloudEvents attribute ce-time "yesterday": must be an RFC 3339 timestamp`},
		{name: "relative dataschema", mutate: func(m *messaging.Message) { m.Attributes["ce-dataschema"] = "schemas/x.json" },
			want: `invalid CloudEvents attribute ce-dataschema "schemas/x.json": must be an absolute URI`},
		{name: "bad extension name", mutate: func(m *messaging.Message) { m.Attributes["ce-trace-id"] = "x" },
			want: `invalid CloudEvents extension attribute "ce-trace-id"`},
		{name: "wrong content type", mutate: func(m *messaging.Message) { m.Attributes["Content-Type"] = "text/plain" },
			want: `unsupported content type "text/plain" (want application/json)`},
		{name: "missing content type", mutate: func(m *messaging.Message) { delete(m.Attributes, "Content-Type") },
			want: "missing content type (want application/json)"},
		{name: "not a CloudEvent", mutate: func(m *messaging.Message) {
			m.Attributes = map[string]string{"Content-Type": "application/json"}
		}, want: `not a CloudEvent: no ce-specversion attribute and content type "application/json" is not application/cloudevents+json`},
		{name: "batch", mutate: func(m *messaging.Message) {
			m.Attributes = map[string]string{"Content-Type": "application/cloudevents-batch+json"}
		}, want: "batched CloudEvents are not supported"},
		{name: "malformed structured event", mutate: func(m *messaging.Message) {
			m.Attributes = map[string]string{"Content-Type": "application/cloudevents+json"}
			m.Data = []byte(`{"specversion":`)
		}, want: "malformed structured CloudEvent: unexpected end of JSON input"},
		{name: "structured event without id", mutate: func(m *messaging.Message) {
			m.Attributes = map[string]string{"Content-Type": "application/cloudevents+json"}
			m.Data = []byte(`{"specversion":"1.0","source":"/x","type":"` + eventstest.TypeCreated + `"}`)
		}, want: "missing required CloudEvents attribute(s): id"},
		{name: "oversized body", maxBody: 64, want: "request body exceeds the 64-byte limit"},
		{name: "invalid payload values", mutate: func(m *messaging.Message) {
			m.Data = bytes.Replace(m.Data, []byte(`"count":3`), []byte(`"count":-1`), 1)
			m.Data = bytes.Replace(m.Data, []byte(`"quantity":2`), []byte(`"quantity":0`), 1)
		}, want: "invalid Created: count: must be between 0 and 1000; parts[0].quantity: must be between 1 and 100, got 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := validMessage(t)
			if tt.mutate != nil {
				tt.mutate(&m)
			}
			in, err := events.DecodeRequest(noWrapperRequest(m, defaultMeta), tt.maxBody)
			assertPermanent(t, err, tt.want)
			if in == nil {
				t.Fatal("DecodeRequest returned a nil Incoming")
			}
			if in.Payload != nil {
				t.Fatalf("payload set on error: %#v", in.Payload)
			}
			if !bytes.Equal(in.Message.Data, m.Data) {
				t.Fatalf("message data = %q, want the whole original %q", in.Message.Data, m.Data)
			}
			for k, v := range m.Attributes {
				if in.Message.Attributes[k] != v {
					t.Fatalf("attribute %s = %q, want %q (all: %v)", k, in.Message.Attributes[k], v, in.Message.Attributes)
				}
			}
			if _, ok := in.Message.Attributes["Authorization"]; ok {
				t.Fatal("Authorization header kept as an attribute")
			}
			if in.Delivery.MessageID != defaultMeta.MessageID || in.Delivery.Attempt != 2 {
				t.Fatalf("delivery = %+v", in.Delivery)
			}
		})
	}
}

func TestDecodeRequestEventarcErrors(t *testing.T) {
	envelope := func(body string) *http.Request {
		r := eventarcBinaryRequest(t, validMessage(t))
		r.Body = httptestBody(body)
		return r
	}
	tests := []struct {
		name string
		req  *http.Request
		want string
	}{
		{name: "malformed envelope", req: envelope(`{"message":`),
			want: "eventarc envelope 2070443601311540: malformed JSON: unexpected end of JSON input"},
		{name: "data not base64", req: envelope(`{"message":{"data":"!!!","messageId":"1"}}`),
			want: "eventarc envelope 2070443601311540: message.data is not valid base64"},
		{name: "no message", req: envelope(`{"subscription":"s"}`),
			want: "eventarc envelope 2070443601311540: no message"},
		{name: "inner message is not a CloudEvent", req: envelope(`{"message":{"data":"` +
			base64.StdEncoding.EncodeToString([]byte(`{"a":1}`)) + `","messageId":"99"}}`),
			want: `eventarc message 99: not a CloudEvent: no ce-specversion attribute and content type "" is not application/cloudevents+json`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := events.DecodeRequest(tt.req, 0)
			assertPermanent(t, err, tt.want)
			if in == nil || len(in.Message.Data) == 0 {
				t.Fatalf("incoming = %+v, want the raw message kept", in)
			}
		})
	}
}

func TestDecodeRequestReadFailureIsTransient(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/", failingReader{})
	in, err := events.DecodeRequest(r, 0)
	if !errors.Is(err, retry.ErrTransient) || !strings.Contains(err.Error(), "read body: connection reset") {
		t.Fatalf("err = %v", err)
	}
	if in == nil {
		t.Fatal("nil Incoming")
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func httptestBody(s string) *readCloser { return &readCloser{strings.NewReader(s)} }

type readCloser struct{ *strings.Reader }

func (*readCloser) Close() error { return nil }

func assertPermanent(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", want)
	}
	if !errors.Is(err, retry.ErrPermanent) || !retry.IsPermanent(err) {
		t.Fatalf("error %q is not permanent", err)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error = %q\nwant it to contain %q", err, want)
	}
}
