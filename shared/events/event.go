package events

import (
	"context"
	"fmt"
	"mime"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/google/uuid"

	"example.com/platform/shared/messaging"
	"example.com/platform/shared/observability"
	"example.com/platform/shared/retry"
)

// Attribute names of a binary-mode event on Pub/Sub.
const (
	AttrID          = "ce-id"
	AttrSource      = "ce-source"
	AttrType        = "ce-type"
	AttrSpecVersion = "ce-specversion"
	AttrSubject     = "ce-subject"
	AttrTime        = "ce-time"
	AttrDataSchema  = "ce-dataschema"
	AttrContentType = "Content-Type"
	// AttrPrefix prefixes every CloudEvents attribute and extension.
	AttrPrefix = "ce-"
	// AttrTraceparent and AttrTracestate carry W3C trace context as plain
	// message attributes (and so as request headers of a no-wrapper push).
	AttrTraceparent = observability.TraceparentHeader
	AttrTracestate  = observability.TracestateHeader
)

// ContentTypeJSON is the only datacontenttype domain events use.
const ContentTypeJSON = "application/json"

// Option adjusts an event built by New.
type Option func(*cloudevents.Event)

// WithID sets the event id instead of a random UUID (for example an
// outbox row id, so a re-published event keeps its id).
func WithID(id string) Option { return func(e *cloudevents.Event) { e.SetID(id) } }

// WithTime sets the event time instead of the payload's OccurredAt.
func WithTime(t time.Time) Option { return func(e *cloudevents.Event) { e.SetTime(t) } }

// WithExtension sets a CloudEvents extension attribute (lower-case
// letters and digits), sent as the attribute "ce-<name>".
func WithExtension(name string, value any) Option {
	return func(e *cloudevents.Event) { e.SetExtension(name, value) }
}

// New builds a CloudEvent from a validated payload: specversion 1.0,
// id = random UUID, the given source (a URI-reference naming the producer,
// e.g. "//example.com/my-service"), type = p.EventType(), subject =
// p.AggregateID(), time = p.OccurredAt(), dataschema from the registry,
// datacontenttype application/json and the payload as JSON data.
// Errors (unregistered type, invalid payload) are permanent.
func New(source string, p Payload, opts ...Option) (cloudevents.Event, error) {
	ti, err := lookupKnown(p.EventType())
	if err != nil {
		return cloudevents.Event{}, fmt.Errorf("new event: %w", err)
	}
	if err := p.Validate(); err != nil {
		return cloudevents.Event{}, fmt.Errorf("new event: %w", retry.Permanent(err))
	}
	ev := cloudevents.NewEvent(cloudevents.VersionV1)
	ev.SetID(uuid.NewString())
	ev.SetSource(source)
	ev.SetType(ti.Type)
	ev.SetSubject(p.AggregateID())
	ev.SetTime(p.OccurredAt().UTC())
	ev.SetDataSchema(ti.DataSchema)
	if err := ev.SetData(ContentTypeJSON, p); err != nil {
		return cloudevents.Event{}, fmt.Errorf("new event: encode %s: %w", describe(p), retry.Permanent(err))
	}
	for _, o := range opts {
		o(&ev)
	}
	if source == "" {
		return cloudevents.Event{}, retry.Permanentf("new event: source is required")
	}
	if err := ev.Validate(); err != nil {
		return cloudevents.Event{}, retry.Permanentf("new event: %v", err)
	}
	return ev, nil
}

// Encode turns ev into a Pub/Sub message in CloudEvents binary mode: every
// context attribute as "ce-<name>" (ce-id, ce-source, ce-type,
// ce-specversion, ce-subject, ce-time in RFC 3339 UTC, ce-dataschema),
// every extension as "ce-<name>", "Content-Type: application/json", the
// JSON data as the body and the subject as the ordering key.
//
// When ctx carries a trace (observability.WithTrace), the message gets a
// new child span of it, written both as the "traceparent"/"tracestate"
// attributes and as the CloudEvents extensions of the same name (attributes
// "ce-traceparent"/"ce-tracestate"). Without one, a traceparent extension
// already on ev is kept and mirrored to the plain attribute.
// Errors are permanent: ev is not a valid domain event.
func Encode(ctx context.Context, ev cloudevents.Event) (messaging.Message, error) {
	if err := ev.Validate(); err != nil {
		return messaging.Message{}, retry.Permanentf("encode event: %v", err)
	}
	if ev.SpecVersion() != cloudevents.VersionV1 {
		return messaging.Message{}, retry.Permanentf("encode event: specversion %q, want 1.0", ev.SpecVersion())
	}
	if mt, _, _ := mime.ParseMediaType(ev.DataContentType()); mt != ContentTypeJSON {
		return messaging.Message{}, retry.Permanentf("encode event: datacontenttype %q, want %s", ev.DataContentType(), ContentTypeJSON)
	}
	if ev.Subject() == "" {
		return messaging.Message{}, retry.Permanentf("encode event %s: subject (aggregate id) is required", ev.ID())
	}
	attrs := map[string]string{
		AttrID:          ev.ID(),
		AttrSource:      ev.Source(),
		AttrType:        ev.Type(),
		AttrSpecVersion: ev.SpecVersion(),
		AttrSubject:     ev.Subject(),
		AttrContentType: ContentTypeJSON,
	}
	if !ev.Time().IsZero() {
		attrs[AttrTime] = ev.Time().UTC().Format(time.RFC3339Nano)
	}
	if s := ev.DataSchema(); s != "" {
		attrs[AttrDataSchema] = s
	}
	for name, v := range ev.Extensions() {
		s, err := types.Format(v)
		if err != nil {
			return messaging.Message{}, retry.Permanentf("encode event %s: extension %s: %v", ev.ID(), name, err)
		}
		attrs[AttrPrefix+name] = s
	}
	if tc, ok := observability.TraceFromContext(ctx); ok {
		child := observability.NewChildSpan(tc)
		delete(attrs, AttrPrefix+AttrTracestate)
		observability.InjectCarrier(child, func(k, v string) {
			attrs[k] = v
			attrs[AttrPrefix+k] = v
		})
	} else if tc, ok := observability.TraceFromCarrier(func(k string) string { return attrs[AttrPrefix+k] }); ok {
		observability.InjectCarrier(tc, func(k, v string) { attrs[k] = v })
	}
	return messaging.Message{
		Data:        append([]byte(nil), ev.Data()...),
		Attributes:  attrs,
		OrderingKey: ev.Subject(),
	}, nil
}

// NewMessage is New followed by Encode: it returns the topic to publish to
// and the message.
func NewMessage(ctx context.Context, source string, p Payload, opts ...Option) (topic string, m messaging.Message, err error) {
	ev, err := New(source, p, opts...)
	if err != nil {
		return "", messaging.Message{}, err
	}
	if m, err = Encode(ctx, ev); err != nil {
		return "", messaging.Message{}, err
	}
	topic, err = TopicFor(ev.Type())
	return topic, m, err
}
