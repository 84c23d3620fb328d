package events

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"

	"example.com/platform/shared/messaging"
	"example.com/platform/shared/observability"
	"example.com/platform/shared/retry"
)

// DefaultMaxBody is the request body limit DecodeRequest applies when
// given maxBody <= 0.
const DefaultMaxBody int64 = 1 << 20

// MaxMessageBytes is the largest Pub/Sub message (10 MB). A body larger than
// maxBody but within this limit is still read whole, so that the
// dead-letter copy of an oversized event loses nothing.
const MaxMessageBytes int64 = 10_000_000

// MessagePublishedType is the CloudEvents type of Eventarc's Pub/Sub
// envelope, whose data is a MessagePublishedData.
const MessagePublishedType = "google.cloud.pubsub.topic.v1.messagePublished"

// Headers a no-wrapper push subscription with write_metadata adds to the
// request (the message's attributes arrive as headers of their own name).
const (
	HeaderSubscription    = "X-Goog-Pubsub-Subscription-Name"
	HeaderMessageID       = "X-Goog-Pubsub-Message-Id"
	HeaderPublishTime     = "X-Goog-Pubsub-Publish-Time"
	HeaderOrderingKey     = "X-Goog-Pubsub-Ordering-Key"
	HeaderDeliveryAttempt = "X-Goog-Pubsub-Delivery-Attempt"
)

// Delivery is the Pub/Sub metadata of one push. Fields the push did not
// carry are zero: Attempt is 0 when unknown (Pub/Sub counts attempts only
// on subscriptions with a dead-letter policy).
type Delivery struct {
	Subscription string
	MessageID    string
	OrderingKey  string
	PublishTime  time.Time
	Attempt      int
}

// Incoming is one decoded push.
type Incoming struct {
	// Event is the domain CloudEvent (the inner event of an Eventarc
	// envelope). It is the zero Event when the push could not be parsed.
	Event cloudevents.Event
	// Payload is the typed, validated data; nil when DecodeRequest failed.
	Payload Payload
	// Delivery is the push's Pub/Sub metadata.
	Delivery Delivery
	// Message is the original Pub/Sub message (data, attributes, ordering
	// key) reconstructed from the push, so a dead-letter publisher can
	// forward it unchanged. It is always set, even when decoding failed.
	Message messaging.Message

	// requestTrace is the push request's own trace (X-Cloud-Trace-Context
	// or traceparent header), the fallback when the event carries none.
	requestTrace observability.TraceContext
}

// MessagePublishedData is the data of an Eventarc
// google.cloud.pubsub.topic.v1.messagePublished event (and the body of a
// wrapped Pub/Sub push).
type MessagePublishedData struct {
	Message      PubsubMessage `json:"message"`
	Subscription string        `json:"subscription"`
	// DeliveryAttempt is set by wrapped pushes on subscriptions with a
	// dead-letter policy; Eventarc leaves it out.
	DeliveryAttempt int `json:"deliveryAttempt,omitempty"`
}

// PubsubMessage is a Pub/Sub message in its JSON form.
type PubsubMessage struct {
	// Data is base64 in JSON.
	Data        []byte            `json:"data,omitempty"`
	Attributes  map[string]string `json:"attributes,omitempty"`
	MessageID   string            `json:"messageId,omitempty"`
	PublishTime string            `json:"publishTime,omitempty"`
	OrderingKey string            `json:"orderingKey,omitempty"`
}

// transportHeaders are request headers added by HTTP, Google's front end
// or Pub/Sub itself, never message attributes: they are left out of the
// reconstructed Message (Authorization in particular must never be
// forwarded to a dead-letter topic).
var transportHeaders = map[string]bool{
	"Accept": true, "Accept-Encoding": true, "Authorization": true, "Connection": true,
	"Content-Length": true, "Cookie": true, "Expect": true, "Forwarded": true, "Host": true,
	"Origin": true, "Proxy-Authorization": true, "Te": true, "Trailer": true,
	"Transfer-Encoding": true, "Upgrade": true, "User-Agent": true, "Via": true,
	"X-Cloud-Trace-Context": true, "X-Forwarded-For": true, "X-Forwarded-Host": true,
	"X-Forwarded-Proto": true, "X-Forwarded-Port": true, "X-Real-Ip": true,
	"X-Request-Id": true, "Function-Execution-Id": true,
}

var transportPrefixes = []string{"X-Goog-", "X-Appengine-", "X-Serverless-", "X-Envoy-", "X-Google-"}

// DecodeRequest decodes one push request into an Incoming. It accepts the
// two shapes Google delivers:
//
//   - a binary-mode CloudEvent from a no-wrapper push subscription with
//     write_metadata: the message attributes are request headers of the
//     same name (ce-id, ce-type, …, Content-Type, traceparent), the
//     metadata x-goog-pubsub-* headers, and the body is the message data;
//     a structured-mode event (Content-Type application/cloudevents+json)
//     is accepted too;
//   - Eventarc's google.cloud.pubsub.topic.v1.messagePublished envelope
//     (binary or structured) whose data holds the Pub/Sub message; that
//     message's ce-* attributes and data are the domain event.
//
// A body over maxBody bytes (DefaultMaxBody when maxBody <= 0) is a
// permanent error; it is still read whole (up to MaxMessageBytes) into
// Message so the dead-letter copy is complete.
// Every error about the request's content (oversized body, not a
// CloudEvent, missing or invalid attributes, wrong content type, unknown
// type or unsupported version, malformed JSON, invalid payload) is
// permanent (retry.ErrPermanent): redelivery cannot fix it, so the caller
// should dead-letter and acknowledge. A failure to read the body is
// transient. In every case the returned Incoming is non-nil and carries
// Message and Delivery, so the caller can dead-letter what it received.
func DecodeRequest(r *http.Request, maxBody int64) (*Incoming, error) {
	if maxBody <= 0 {
		maxBody = DefaultMaxBody
	}
	in := &Incoming{Delivery: deliveryFromHeader(r.Header)}
	in.requestTrace, _ = observability.TraceFromHeader(r.Header)
	in.Message = messaging.Message{Attributes: attributesFromHeader(r.Header), OrderingKey: in.Delivery.OrderingKey}

	var body []byte
	if r.Body != nil {
		var err error
		// Read up to the Pub/Sub message limit even when maxBody is
		// smaller, so an oversized event is dead-lettered whole.
		body, err = io.ReadAll(http.MaxBytesReader(nil, r.Body, max(maxBody, MaxMessageBytes)))
		in.Message.Data = body
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig) || int64(len(body)) > maxBody:
			return in, retry.Permanentf("decode event: request body exceeds the %d-byte limit", maxBody)
		case err != nil:
			return in, retry.Transientf("decode event: read body: %w", err)
		}
	}
	return in, in.decode()
}

// DecodeMessage decodes a stored Pub/Sub message m, delivered with d, the
// way DecodeRequest decodes a push carrying it: for messages a consumer
// kept to apply later (shared/parking). Errors are as DecodeRequest's; the
// returned Incoming is never nil.
func DecodeMessage(m messaging.Message, d Delivery, maxBody int64) (*Incoming, error) {
	if maxBody <= 0 {
		maxBody = DefaultMaxBody
	}
	in := &Incoming{Delivery: d, Message: m}
	if int64(len(m.Data)) > maxBody {
		return in, retry.Permanentf("decode event: message data exceeds the %d-byte limit", maxBody)
	}
	return in, in.decode()
}

// decode decodes in.Message into in.Event and in.Payload.
func (in *Incoming) decode() error {
	outer, err := eventFromMessage(in.Message)
	if err != nil {
		return fmt.Errorf("decode event: %w", err)
	}
	ev := outer
	if outer.Type() == MessagePublishedType {
		msg, d, err := unwrapMessagePublished(outer)
		if err != nil {
			return fmt.Errorf("decode event: eventarc envelope %s: %w", outer.ID(), err)
		}
		if d.Attempt == 0 {
			d.Attempt = in.Delivery.Attempt
		}
		in.Message, in.Delivery = msg, d
		if ev, err = eventFromMessage(msg); err != nil {
			return fmt.Errorf("decode event: eventarc message %s: %w", d.MessageID, err)
		}
	}
	in.Event = ev
	p, err := Decode(ev)
	if err != nil {
		return fmt.Errorf("decode event: %w", err)
	}
	in.Payload = p
	return nil
}

// Decode returns the typed, validated payload of a domain event,
// dispatching on its type through the registry. It checks the attributes
// every domain event must have (id, source, type, subject, time,
// datacontenttype application/json) and that the subject is the payload's
// aggregate id. Every error is permanent.
func Decode(ev cloudevents.Event) (Payload, error) {
	var missing []string
	for _, f := range []struct{ name, v string }{
		{"id", ev.ID()}, {"source", ev.Source()}, {"type", ev.Type()}, {"subject", ev.Subject()},
	} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if ev.Time().IsZero() {
		missing = append(missing, "time")
	}
	if len(missing) > 0 {
		return nil, retry.Permanentf("missing required CloudEvents attribute(s): %s", strings.Join(missing, ", "))
	}
	if sv := ev.SpecVersion(); sv != cloudevents.VersionV1 {
		return nil, retry.Permanentf("unsupported CloudEvents specversion %q (want 1.0)", sv)
	}
	ti, err := lookupKnown(ev.Type())
	if err != nil {
		return nil, err
	}
	ct := ev.DataContentType()
	if ct == "" {
		return nil, retry.Permanentf("event %s: missing content type (want %s)", ev.ID(), ContentTypeJSON)
	}
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != ContentTypeJSON {
		return nil, retry.Permanentf("event %s: unsupported content type %q (want %s)", ev.ID(), ct, ContentTypeJSON)
	}
	p, err := decodePayload(ti, ev.Data())
	if err != nil {
		return nil, fmt.Errorf("event %s: %w", ev.ID(), err)
	}
	if p.AggregateID() != ev.Subject() {
		return nil, retry.Permanentf("event %s: subject %q does not match the payload's aggregate id %q",
			ev.ID(), ev.Subject(), p.AggregateID())
	}
	return p, nil
}

// DecodeAs is Decode for callers that expect one payload type.
func DecodeAs[T Payload](ev cloudevents.Event) (T, error) {
	var zero T
	p, err := Decode(ev)
	if err != nil {
		return zero, err
	}
	t, ok := p.(T)
	if !ok {
		return zero, retry.Permanentf("event %s of type %s decodes to %s, not %T", ev.ID(), ev.Type(), describe(p), zero)
	}
	return t, nil
}

// Trace returns the trace context of the delivery: the event's
// "traceparent" CloudEvents extension, else the message's "traceparent"
// attribute, else the push request's own trace headers.
func (in *Incoming) Trace() (observability.TraceContext, bool) {
	if in.Event.Context != nil {
		ext := in.Event.Extensions()
		if tc, ok := observability.TraceFromCarrier(func(k string) string {
			s, _ := types.ToString(ext[k])
			return s
		}); ok {
			return tc, true
		}
	}
	if tc, ok := observability.TraceFromCarrier(func(k string) string { return lookupFold(in.Message.Attributes, k) }); ok {
		return tc, true
	}
	return in.requestTrace, in.requestTrace.TraceID != ""
}

// Context returns ctx prepared for handling in: a child span of the
// event's trace (when it carries one) so logs join the producer's trace
// and Encode continues it on every outgoing message, and log labels for
// the event id, type and source, ordering key, subscription, message id
// and delivery attempt.
func (in *Incoming) Context(ctx context.Context) context.Context {
	if tc, ok := in.Trace(); ok {
		ctx = observability.WithTrace(ctx, observability.NewChildSpan(tc))
	}
	labels := map[string]string{}
	set := func(k, v string) {
		if v != "" {
			labels[k] = v
		}
	}
	if in.Event.Context != nil {
		set(observability.LabelEventID, in.Event.ID())
		set(observability.LabelEventType, in.Event.Type())
		set(observability.LabelEventSource, in.Event.Source())
	} else {
		set(observability.LabelEventID, lookupFold(in.Message.Attributes, AttrID))
		set(observability.LabelEventType, lookupFold(in.Message.Attributes, AttrType))
	}
	set(observability.LabelOrderingKey, in.Delivery.OrderingKey)
	set(observability.LabelSubscription, in.Delivery.Subscription)
	set(observability.LabelMessageID, in.Delivery.MessageID)
	if in.Delivery.Attempt > 0 {
		set(observability.LabelDeliveryAttempt, strconv.Itoa(in.Delivery.Attempt))
	}
	return observability.WithLabels(ctx, labels)
}

func deliveryFromHeader(h http.Header) Delivery {
	d := Delivery{
		Subscription: h.Get(HeaderSubscription),
		MessageID:    h.Get(HeaderMessageID),
		OrderingKey:  h.Get(HeaderOrderingKey),
		PublishTime:  parseTime(h.Get(HeaderPublishTime)),
	}
	if n, err := strconv.Atoi(h.Get(HeaderDeliveryAttempt)); err == nil && n > 0 {
		d.Attempt = n
	}
	return d
}

func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

// attributesFromHeader reconstructs message attributes from push headers.
// net/http canonicalises header names (ce-id arrives as Ce-Id), so the
// original spelling is lost: every key is lower-cased, which restores the
// wire names of ce-*, traceparent, tracestate and this repository's other
// attributes (dlq-*), except Content-Type, which keeps the spelling the
// CloudEvents Pub/Sub binding uses. Look other attributes up with
// LookupAttribute, which ignores case. Transport and x-goog-* headers are
// dropped.
func attributesFromHeader(h http.Header) map[string]string {
	attrs := make(map[string]string, len(h))
	for k, vs := range h {
		if len(vs) == 0 || transportHeaders[k] || hasAnyPrefix(k, transportPrefixes) {
			continue
		}
		if k != AttrContentType {
			k = strings.ToLower(k)
		}
		attrs[k] = strings.Join(vs, ",")
	}
	return attrs
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// LookupAttribute returns attrs[key], matching the key without regard to
// case (push headers lose the case of attribute names).
func LookupAttribute(attrs map[string]string, key string) string { return lookupFold(attrs, key) }

// lookupFold returns attrs[key], matching the key without regard to case.
func lookupFold(attrs map[string]string, key string) string {
	if v, ok := attrs[key]; ok {
		return v
	}
	for k, v := range attrs {
		if strings.EqualFold(k, key) {
			return v
		}
	}
	return ""
}

// eventFromMessage parses a Pub/Sub message as a CloudEvent in binary mode
// (ce-* attributes, data as body) or structured mode (Content-Type
// application/cloudevents+json, the whole event as body).
func eventFromMessage(m messaging.Message) (cloudevents.Event, error) {
	ct := lookupFold(m.Attributes, AttrContentType)
	mt, _, _ := mime.ParseMediaType(ct)
	switch {
	case mt == "application/cloudevents+json":
		return structuredEvent(m.Data)
	case mt == "application/cloudevents-batch+json":
		return cloudevents.Event{}, retry.Permanentf("batched CloudEvents are not supported")
	case lookupFold(m.Attributes, AttrSpecVersion) != "" || hasCEAttribute(m.Attributes):
		return binaryEvent(m.Attributes, ct, m.Data)
	default:
		return cloudevents.Event{}, retry.Permanentf(
			"not a CloudEvent: no ce-specversion attribute and content type %q is not application/cloudevents+json", ct)
	}
}

func hasCEAttribute(attrs map[string]string) bool {
	for k := range attrs {
		if len(k) > len(AttrPrefix) && strings.EqualFold(k[:len(AttrPrefix)], AttrPrefix) {
			return true
		}
	}
	return false
}

func structuredEvent(body []byte) (cloudevents.Event, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return cloudevents.Event{}, retry.Permanentf("malformed structured CloudEvent: %v", err)
	}
	var sv string
	if err := json.Unmarshal(raw["specversion"], &sv); err != nil || sv == "" {
		return cloudevents.Event{}, retry.Permanentf("missing required CloudEvents attribute specversion")
	}
	if sv != cloudevents.VersionV1 {
		return cloudevents.Event{}, retry.Permanentf("unsupported CloudEvents specversion %q (want 1.0)", sv)
	}
	ev := cloudevents.NewEvent()
	if err := json.Unmarshal(body, &ev); err != nil {
		return cloudevents.Event{}, retry.Permanentf("malformed structured CloudEvent: %v", err)
	}
	if err := requireCore(ev.ID(), ev.Source(), ev.Type(), ""); err != nil {
		return cloudevents.Event{}, err
	}
	if err := ev.Validate(); err != nil {
		return cloudevents.Event{}, retry.Permanentf("invalid structured CloudEvent: %s", validationText(err))
	}
	return ev, nil
}

func requireCore(id, source, typ, prefix string) error {
	var missing []string
	for _, f := range []struct{ name, v string }{{"id", id}, {"source", source}, {"type", typ}} {
		if strings.TrimSpace(f.v) == "" {
			missing = append(missing, prefix+f.name)
		}
	}
	if len(missing) > 0 {
		return retry.Permanentf("missing required CloudEvents attribute(s): %s", strings.Join(missing, ", "))
	}
	return nil
}

// validationText renders an sdk-go ValidationError in a stable order.
func validationText(err error) string {
	var ve event.ValidationError
	if !errors.As(err, &ve) {
		return err.Error()
	}
	parts := make([]string, 0, len(ve))
	for _, k := range slices.Sorted(maps.Keys(ve)) {
		parts = append(parts, k+": "+ve[k].Error())
	}
	return strings.Join(parts, "; ")
}

func binaryEvent(attrs map[string]string, contentType string, data []byte) (cloudevents.Event, error) {
	get := func(name string) string { return lookupFold(attrs, AttrPrefix+name) }
	sv := get("specversion")
	if sv == "" {
		return cloudevents.Event{}, retry.Permanentf("missing required CloudEvents attribute(s): ce-specversion")
	}
	if sv != cloudevents.VersionV1 {
		return cloudevents.Event{}, retry.Permanentf("unsupported CloudEvents specversion %q (want 1.0)", sv)
	}
	if err := requireCore(get("id"), get("source"), get("type"), AttrPrefix); err != nil {
		return cloudevents.Event{}, err
	}
	ec := &event.EventContextV1{}
	bad := func(attr, v string, err error) (cloudevents.Event, error) {
		return cloudevents.Event{}, retry.Permanentf("invalid CloudEvents attribute %s%s %q: %v", AttrPrefix, attr, v, err)
	}
	_ = ec.SetID(get("id"))
	_ = ec.SetType(get("type"))
	if err := ec.SetSource(get("source")); err != nil {
		return bad("source", get("source"), unwrapURLError(err))
	}
	_ = ec.SetSubject(get("subject"))
	if v := get("time"); v != "" {
		t, err := types.ParseTime(v)
		if err != nil {
			return bad("time", v, errors.New("must be an RFC 3339 timestamp"))
		}
		_ = ec.SetTime(t)
	}
	if v := get("dataschema"); v != "" {
		u, err := url.Parse(v)
		if err != nil {
			return bad("dataschema", v, unwrapURLError(err))
		}
		if !u.IsAbs() {
			return bad("dataschema", v, errors.New("must be an absolute URI"))
		}
		_ = ec.SetDataSchema(v)
	}
	if contentType == "" {
		contentType = get("datacontenttype")
	}
	_ = ec.SetDataContentType(contentType)
	for _, k := range slices.Sorted(maps.Keys(attrs)) {
		if len(k) <= len(AttrPrefix) || !strings.EqualFold(k[:len(AttrPrefix)], AttrPrefix) {
			continue
		}
		name := strings.ToLower(k[len(AttrPrefix):])
		switch name {
		case "id", "source", "type", "specversion", "subject", "time", "dataschema", "datacontenttype":
			continue
		}
		if err := ec.SetExtension(name, attrs[k]); err != nil {
			return cloudevents.Event{}, retry.Permanentf("invalid CloudEvents extension attribute %q: %v", k, err)
		}
	}
	ev := cloudevents.Event{Context: ec, DataEncoded: data}
	if len(data) == 0 {
		ev.DataEncoded = nil
	}
	if err := ev.Validate(); err != nil {
		return cloudevents.Event{}, retry.Permanentf("invalid CloudEvent: %s", validationText(err))
	}
	return ev, nil
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// unwrapMessagePublished extracts the Pub/Sub message and its delivery
// metadata from an Eventarc messagePublished event.
func unwrapMessagePublished(outer cloudevents.Event) (messaging.Message, Delivery, error) {
	data := outer.Data()
	if len(data) == 0 {
		return messaging.Message{}, Delivery{}, retry.Permanentf("no data")
	}
	var env MessagePublishedData
	if err := json.Unmarshal(data, &env); err != nil {
		var ce base64.CorruptInputError
		if errors.As(err, &ce) {
			return messaging.Message{}, Delivery{}, retry.Permanentf("message.data is not valid base64: %v", err)
		}
		return messaging.Message{}, Delivery{}, retry.Permanentf("malformed JSON: %v", err)
	}
	if env.Message.MessageID == "" && len(env.Message.Data) == 0 && len(env.Message.Attributes) == 0 {
		return messaging.Message{}, Delivery{}, retry.Permanentf("no message")
	}
	attrs := env.Message.Attributes
	if attrs == nil {
		attrs = map[string]string{}
	}
	m := messaging.Message{Data: env.Message.Data, Attributes: attrs, OrderingKey: env.Message.OrderingKey}
	d := Delivery{
		Subscription: env.Subscription,
		MessageID:    env.Message.MessageID,
		OrderingKey:  env.Message.OrderingKey,
		PublishTime:  parseTime(env.Message.PublishTime),
		Attempt:      env.DeliveryAttempt,
	}
	return m, d, nil
}
