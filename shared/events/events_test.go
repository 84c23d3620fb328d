package events_test

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"example.com/platform/shared/events"
	"example.com/platform/shared/events/eventstest"
	"example.com/platform/shared/messaging"
	"example.com/platform/shared/observability"
	"example.com/platform/shared/retry"
)

var wantTopics = map[string]string{
	eventstest.TypeCreated: eventstest.TopicCreated,
	eventstest.TypeDone:    eventstest.TopicDone,
}

func TestRoundTripThroughNoWrapperPush(t *testing.T) {
	for _, p := range validPayloads() {
		t.Run(p.EventType(), func(t *testing.T) {
			topic, m, err := events.NewMessage(context.Background(), testSource, p)
			if err != nil {
				t.Fatal(err)
			}
			if topic != wantTopics[p.EventType()] {
				t.Fatalf("topic = %q, want %q", topic, wantTopics[p.EventType()])
			}
			in, err := events.DecodeRequest(noWrapperRequest(m, defaultMeta), 0)
			if err != nil {
				t.Fatalf("DecodeRequest: %v", err)
			}
			if !reflect.DeepEqual(in.Payload, p) {
				t.Fatalf("payload = %#v, want %#v", in.Payload, p)
			}
			again, err := events.Decode(in.Event)
			if err != nil || !reflect.DeepEqual(again, p) {
				t.Fatalf("Decode(in.Event) = %#v, %v", again, err)
			}
			// The reconstructed message is the published one, byte for byte,
			// without the transport headers.
			if !reflect.DeepEqual(in.Message, m) {
				t.Fatalf("message =\n%#v\nwant\n%#v", in.Message, m)
			}
			want := events.Delivery{
				Subscription: defaultMeta.Subscription, MessageID: defaultMeta.MessageID,
				OrderingKey: thingID, PublishTime: time.Date(2026, 5, 1, 12, 30, 46, 5e8, time.UTC), Attempt: 2,
			}
			if !reflect.DeepEqual(in.Delivery, want) {
				t.Fatalf("delivery = %+v, want %+v", in.Delivery, want)
			}
			if in.Event.ID() != m.Attributes["ce-id"] || in.Event.Subject() != thingID || !in.Event.Time().Equal(t0) ||
				in.Event.Source() != testSource || in.Event.DataSchema() != events.DefaultSchemaBase+p.EventType()+".json" {
				t.Fatalf("event = %v", in.Event)
			}
		})
	}
}

func TestEncodeBinaryMode(t *testing.T) {
	p := validCreated()
	ev, err := events.New(testSource, p, events.WithExtension("tenant", "acme"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := uuid.Parse(ev.ID()); err != nil {
		t.Fatalf("id %q is not a UUID", ev.ID())
	}
	m, err := events.Encode(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"ce-id":          ev.ID(),
		"ce-source":      testSource,
		"ce-type":        "com.example.test.thing.created.v1",
		"ce-specversion": "1.0",
		"ce-subject":     thingID,
		"ce-time":        "2026-05-01T12:30:45.123456789Z",
		"ce-dataschema":  "https://example.com/schemas/events/com.example.test.thing.created.v1.json",
		"ce-tenant":      "acme",
		"Content-Type":   "application/json",
	}
	if !maps.Equal(m.Attributes, want) {
		t.Fatalf("attributes =\n%v\nwant\n%v", m.Attributes, want)
	}
	if m.OrderingKey != thingID {
		t.Fatalf("ordering key = %q", m.OrderingKey)
	}
	var body map[string]any
	if err := json.Unmarshal(m.Data, &body); err != nil {
		t.Fatalf("body is not JSON: %v", err)
	}
	if body["thing_id"] != thingID || body["count"] != float64(3) || body["name"] != "widget" ||
		body["at"] != "2026-05-01T12:30:45.123456789Z" {
		t.Fatalf("body = %s", m.Data)
	}
	parts := body["parts"].([]any)
	if pt := parts[0].(map[string]any); pt["name"] != "bolt" || pt["quantity"] != float64(2) || len(pt) != 2 {
		t.Fatalf("parts = %v", parts)
	}
	ev2, err := events.New(testSource, p)
	if err != nil || ev2.ID() == ev.ID() {
		t.Fatalf("two events share id %s (%v)", ev.ID(), err)
	}
	ev3, err := events.New(testSource, p, events.WithID("outbox-1"), events.WithTime(t0.Add(time.Hour)))
	if err != nil || ev3.ID() != "outbox-1" || !ev3.Time().Equal(t0.Add(time.Hour)) {
		t.Fatalf("options not applied: %v %v", ev3, err)
	}
}

func TestNewRejectsInvalidPayload(t *testing.T) {
	p := validCreated()
	p.Count = 5000
	_, err := events.New(testSource, p)
	if !errors.Is(err, retry.ErrPermanent) || !errors.Is(err, events.ErrInvalidPayload) ||
		!strings.Contains(err.Error(), "invalid Created: count: must be between 0 and 1000") {
		t.Fatalf("err = %v", err)
	}
	var ve *events.ValidationError
	if !errors.As(err, &ve) || ve.Payload != "Created" || !slices.Equal(ve.Problems, []string{"count: must be between 0 and 1000"}) {
		t.Fatalf("validation error = %#v", ve)
	}
	if _, err := events.New("", validCreated()); err == nil || !strings.Contains(err.Error(), "source is required") {
		t.Fatalf("empty source: %v", err)
	}
}

func TestTracePropagation(t *testing.T) {
	const incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	parent, err := observability.ParseTraceparent(incoming)
	if err != nil {
		t.Fatal(err)
	}
	// The producer's context carries the trace: the message gets a child span.
	ctx := observability.WithTrace(context.Background(), parent)
	_, m, err := events.NewMessage(ctx, testSource, validCreated())
	if err != nil {
		t.Fatal(err)
	}
	tp := m.Attributes["traceparent"]
	if tp == "" || m.Attributes["ce-traceparent"] != tp {
		t.Fatalf("attributes = %v", m.Attributes)
	}
	out, err := observability.ParseTraceparent(tp)
	if err != nil {
		t.Fatal(err)
	}
	if out.TraceID != parent.TraceID || out.SpanID == parent.SpanID || !out.Sampled {
		t.Fatalf("outgoing %+v is not a child of %+v", out, parent)
	}

	// The consumer reads it back, even when the front end replaced the
	// plain traceparent header with its own.
	req := noWrapperRequest(m, defaultMeta)
	req.Header.Set("Traceparent", "00-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-bbbbbbbbbbbbbbbb-01")
	in, err := events.DecodeRequest(req, 0)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := in.Trace()
	if !ok || got.TraceID != parent.TraceID || got.SpanID != out.SpanID {
		t.Fatalf("incoming trace = %+v %v, want span %s of trace %s", got, ok, out.SpanID, parent.TraceID)
	}

	// Handling it continues the trace on the next hop and labels the logs.
	hctx := in.Context(context.Background())
	htc, ok := observability.TraceFromContext(hctx)
	if !ok || htc.TraceID != parent.TraceID {
		t.Fatalf("handler trace = %+v", htc)
	}
	labels := observability.LabelsFromContext(hctx)
	if labels["event_id"] != in.Event.ID() || labels["event_type"] != eventstest.TypeCreated ||
		labels["ordering_key"] != thingID || labels["delivery_attempt"] != "2" ||
		labels["subscription"] != defaultMeta.Subscription {
		t.Fatalf("labels = %v", labels)
	}
	p := eventstest.Done{ThingID: thingID, At: t0}
	_, next, err := events.NewMessage(hctx, testSource, p)
	if err != nil {
		t.Fatal(err)
	}
	nt, err := observability.ParseTraceparent(next.Attributes["traceparent"])
	if err != nil || nt.TraceID != parent.TraceID || nt.SpanID == htc.SpanID {
		t.Fatalf("next hop trace = %+v (%v)", nt, err)
	}

	// Without trace context in ctx, no trace attributes are invented.
	_, plain, err := events.NewMessage(context.Background(), testSource, p)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := plain.Attributes["traceparent"]; ok {
		t.Fatalf("traceparent without a trace: %v", plain.Attributes)
	}
	// A message whose only trace is the plain attribute (another producer).
	delete(m.Attributes, "ce-traceparent")
	in, err = events.DecodeRequest(noWrapperRequest(m, defaultMeta), 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := in.Trace(); !ok || got.SpanID != out.SpanID {
		t.Fatalf("trace from attribute = %+v %v", got, ok)
	}
}

func TestEventarcEnvelope(t *testing.T) {
	ctx := observability.WithTrace(context.Background(), observability.NewTrace(true))
	_, m, err := events.NewMessage(ctx, testSource, validCreated())
	if err != nil {
		t.Fatal(err)
	}
	for name, req := range map[string]func() *http.Request{
		"binary":     func() *http.Request { return eventarcBinaryRequest(t, m) },
		"structured": func() *http.Request { return eventarcStructuredRequest(t, m) },
	} {
		t.Run(name, func(t *testing.T) {
			in, err := events.DecodeRequest(req(), 0)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(in.Payload, validCreated()) {
				t.Fatalf("payload = %#v", in.Payload)
			}
			if in.Event.Type() != eventstest.TypeCreated || in.Event.ID() != m.Attributes["ce-id"] {
				t.Fatalf("event = %v", in.Event)
			}
			if !reflect.DeepEqual(in.Message, m) {
				t.Fatalf("message = %#v, want the inner Pub/Sub message %#v", in.Message, m)
			}
			if in.Delivery.MessageID != defaultMeta.MessageID || in.Delivery.OrderingKey != thingID ||
				in.Delivery.Subscription != "projects/p/subscriptions/eventarc-us-central1-trigger-sub-000" ||
				in.Delivery.PublishTime.IsZero() {
				t.Fatalf("delivery = %+v", in.Delivery)
			}
			if tc, ok := in.Trace(); !ok || tc.Traceparent() != m.Attributes["traceparent"] {
				t.Fatalf("trace = %+v %v", tc, ok)
			}
		})
	}
}

func TestStructuredDomainEvent(t *testing.T) {
	ev, err := events.New(testSource, validCreated())
	if err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	m := messaging.Message{Data: body, Attributes: map[string]string{"Content-Type": "application/cloudevents+json"}, OrderingKey: thingID}
	in, err := events.DecodeRequest(noWrapperRequest(m, defaultMeta), 0)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in.Payload, validCreated()) || in.Event.ID() != ev.ID() {
		t.Fatalf("payload = %#v, event %v", in.Payload, in.Event)
	}
}

func TestDecodeAs(t *testing.T) {
	ev, err := events.New(testSource, validCreated())
	if err != nil {
		t.Fatal(err)
	}
	c, err := events.DecodeAs[eventstest.Created](ev)
	if err != nil || c.ThingID != thingID {
		t.Fatalf("DecodeAs[Created] = %+v, %v", c, err)
	}
	_, err = events.DecodeAs[eventstest.Done](ev)
	if !errors.Is(err, retry.ErrPermanent) || !strings.Contains(err.Error(), "decodes to eventstest.Created, not eventstest.Done") {
		t.Fatalf("wrong type: %v", err)
	}
}

// TestRegistry checks the kernel's side of the registry with the types
// eventstest registers; the domain's registrations are checked against
// topics.yaml in package domain.
func TestRegistry(t *testing.T) {
	types := events.Types()
	if !slices.IsSortedFunc(types, func(a, b events.TypeInfo) int { return strings.Compare(a.Type, b.Type) }) {
		t.Fatalf("Types() not sorted: %v", types)
	}
	fromRegistry := map[string]string{}
	for _, ti := range types {
		fromRegistry[ti.Type] = ti.Topic
		if got, err := events.TopicFor(ti.Type); err != nil || got != ti.Topic {
			t.Errorf("TopicFor(%s) = %q, %v", ti.Type, got, err)
		}
		if got, ok := events.Lookup(ti.Type); !ok || got.Topic != ti.Topic || got.DataSchema != ti.DataSchema {
			t.Errorf("Lookup(%s) = %+v, %v", ti.Type, got, ok)
		}
		if ti.DataSchema != events.DefaultSchemaBase+ti.Type+".json" {
			t.Errorf("%s: dataschema %q", ti.Type, ti.DataSchema)
		}
	}
	if !maps.Equal(fromRegistry, wantTopics) {
		t.Fatalf("registry %v != %v", fromRegistry, wantTopics)
	}
	var payloadTypes []string
	for _, p := range validPayloads() {
		payloadTypes = append(payloadTypes, p.EventType())
	}
	if got := slices.Sorted(maps.Keys(fromRegistry)); !slices.Equal(got, slices.Sorted(slices.Values(payloadTypes))) {
		t.Fatalf("registered %v, payloads %v", got, payloadTypes)
	}
	if _, err := events.TopicFor("com.example.test.thing.gone.v1"); !retry.IsPermanent(err) {
		t.Fatalf("TopicFor(unknown) = %v, want a permanent error", err)
	}
}

func TestRegisterRejectsProgrammingErrors(t *testing.T) {
	// Registering a type again with the same payload and topic is a no-op.
	if ti := events.Register[eventstest.Done](eventstest.TypeDone, eventstest.TopicDone); ti.Type != eventstest.TypeDone || ti.Topic != eventstest.TopicDone {
		t.Fatalf("re-register = %+v", ti)
	}
	for name, register := range map[string]func(){
		"empty type":             func() { events.Register[eventstest.Done]("", "t") },
		"empty topic":            func() { events.Register[eventstest.Done]("com.example.test.x.v1", "") },
		"no version":             func() { events.Register[eventstest.Done]("com.example.test.x", "t") },
		"another payload type":   func() { events.Register[eventstest.Created](eventstest.TypeDone, eventstest.TopicDone) },
		"another topic":          func() { events.Register[eventstest.Done](eventstest.TypeDone, "elsewhere") },
		"version without digits": func() { events.Register[eventstest.Done]("com.example.test.x.v", "t") },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			register()
		})
	}
	if !maps.Equal(topicsOf(events.Types()), wantTopics) {
		t.Fatalf("a rejected registration changed the registry: %v", events.Types())
	}
}

func topicsOf(types []events.TypeInfo) map[string]string {
	m := map[string]string{}
	for _, ti := range types {
		m[ti.Type] = ti.Topic
	}
	return m
}

func TestNewPushRequestRoundTrip(t *testing.T) {
	_, m, err := events.NewMessage(context.Background(), testSource, validPayloads()[1])
	if err != nil {
		t.Fatal(err)
	}
	d := events.Delivery{Subscription: "projects/p/subscriptions/s", MessageID: "42", PublishTime: t0, Attempt: 5}
	r, err := events.NewPushRequest(context.Background(), "http://fn.local/", m, d)
	if err != nil {
		t.Fatal(err)
	}
	if r.Header.Get("X-Goog-Pubsub-Delivery-Attempt") != "5" || r.Header.Get("Ce-Type") != eventstest.TypeDone {
		t.Fatalf("headers = %v", r.Header)
	}
	in, err := events.DecodeRequest(r, 0)
	if err != nil {
		t.Fatal(err)
	}
	d.OrderingKey = thingID
	if !reflect.DeepEqual(in.Delivery, d) || !reflect.DeepEqual(in.Message, m) || !reflect.DeepEqual(in.Payload, validPayloads()[1]) {
		t.Fatalf("incoming = %+v", in)
	}
}

func TestTraceFallsBackToRequestTrace(t *testing.T) {
	m := validMessage(t)
	r := noWrapperRequest(m, defaultMeta) // carries X-Cloud-Trace-Context only
	in, err := events.DecodeRequest(r, 0)
	if err != nil {
		t.Fatal(err)
	}
	tc, ok := in.Trace()
	if !ok || tc.TraceID != "105445aa7843bc8bf206b12000100000" {
		t.Fatalf("trace = %+v %v", tc, ok)
	}
	if _, ok := in.Message.Attributes["traceparent"]; ok {
		t.Fatal("request trace leaked into message attributes")
	}
}

func TestOtherAttributesArriveLowerCased(t *testing.T) {
	m := validMessage(t)
	m.Attributes["dlq-reason"] = "bad payload"
	m.Attributes["Tenant"] = "acme"
	in, err := events.DecodeRequest(noWrapperRequest(m, defaultMeta), 0)
	if err != nil {
		t.Fatal(err)
	}
	if in.Message.Attributes["dlq-reason"] != "bad payload" || in.Message.Attributes["tenant"] != "acme" {
		t.Fatalf("attributes = %v", in.Message.Attributes)
	}
	if events.LookupAttribute(in.Message.Attributes, "TENANT") != "acme" || events.LookupAttribute(in.Message.Attributes, "content-type") != "application/json" {
		t.Fatal("LookupAttribute does not ignore case")
	}
}
