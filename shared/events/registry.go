package events

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"example.com/platform/shared/retry"
)

// Event types. The suffix is the payload's schema version: a breaking
// change to a payload is a new type (…v2) published alongside the old one
// until every consumer has moved.
const (
	TypeOrderCreated       = "com.example.orders.order.created.v1"
	TypePaymentProcessed   = "com.example.payments.payment.processed.v1"
	TypePaymentFailed      = "com.example.payments.payment.failed.v1"
	TypeShipmentDispatched = "com.example.shipping.shipment.dispatched.v1"
)

// SchemaBase prefixes every event's dataschema URI:
// SchemaBase + type + ".json". A fork replaces it with its own.
const SchemaBase = "https://example.com/schemas/events/"

// Payload is the typed data of one domain event. Implementations are value
// types, immutable once published.
type Payload interface {
	// EventType is the versioned CloudEvents type, e.g. TypeOrderCreated.
	EventType() string
	// AggregateID is the id of the aggregate the event is about: it becomes
	// the CloudEvents subject and the Pub/Sub ordering key.
	AggregateID() string
	// OccurredAt is when the occurrence happened: the CloudEvents time.
	OccurredAt() time.Time
	// Validate reports every problem with the payload; errors match
	// ErrInvalidPayload.
	Validate() error
}

// TypeInfo describes one registered event type.
type TypeInfo struct {
	// Type is the versioned CloudEvents type.
	Type string
	// Topic is the Pub/Sub topic id (a key of topics.yaml) the type is
	// published to.
	Topic string
	// DataSchema is the dataschema URI written on every event of the type.
	DataSchema string

	decode func(data []byte) (Payload, error)
}

// registry is the one place event types are declared: to add a type, write
// its payload struct (with the Payload methods) and add a line here and
// its type to the topic's event_types in topics.yaml (a test checks they
// agree).
var registry = []TypeInfo{
	register[OrderCreated](TypeOrderCreated, "order.created"),
	register[PaymentProcessed](TypePaymentProcessed, "payment.processed"),
	register[PaymentFailed](TypePaymentFailed, "payment.failed"),
	register[ShipmentDispatched](TypeShipmentDispatched, "shipment.dispatched"),
}

func register[T Payload](typ, topic string) TypeInfo {
	return TypeInfo{
		Type:       typ,
		Topic:      topic,
		DataSchema: SchemaBase + typ + ".json",
		decode: func(data []byte) (Payload, error) {
			var p T
			if err := json.Unmarshal(data, &p); err != nil {
				return nil, err
			}
			return p, nil
		},
	}
}

// Types returns every registered event type.
func Types() []TypeInfo { return slices.Clone(registry) }

// Lookup returns the registration of a versioned event type.
func Lookup(typ string) (TypeInfo, bool) {
	for _, ti := range registry {
		if ti.Type == typ {
			return ti, true
		}
	}
	return TypeInfo{}, false
}

// TopicFor returns the topic id an event type is published to.
func TopicFor(typ string) (string, error) {
	ti, err := lookupKnown(typ)
	if err != nil {
		return "", err
	}
	return ti.Topic, nil
}

// lookupKnown is Lookup with a permanent error that tells an unknown type
// from an unsupported version of a known one.
func lookupKnown(typ string) (TypeInfo, error) {
	if ti, ok := Lookup(typ); ok {
		return ti, nil
	}
	if typ == "" {
		return TypeInfo{}, retry.Permanentf("missing event type")
	}
	base, version := splitVersion(typ)
	var supported []string
	for _, ti := range registry {
		if b, v := splitVersion(ti.Type); b == base && v != "" {
			supported = append(supported, v)
		}
	}
	if version != "" && len(supported) > 0 {
		return TypeInfo{}, retry.Permanentf("unsupported version %s of event type %s (supported: %s)",
			version, base, strings.Join(supported, ", "))
	}
	return TypeInfo{}, retry.Permanentf("unknown event type %q", typ)
}

// splitVersion splits "a.b.c.v1" into ("a.b.c", "v1"); version is "" when
// the last segment is not v<digits>.
func splitVersion(typ string) (base, version string) {
	i := strings.LastIndexByte(typ, '.')
	if i < 0 {
		return typ, ""
	}
	v := typ[i+1:]
	if len(v) < 2 || v[0] != 'v' || strings.Trim(v[1:], "0123456789") != "" {
		return typ, ""
	}
	return typ[:i], v
}

// decodePayload decodes and validates data as a payload of ti's type.
func decodePayload(ti TypeInfo, data []byte) (Payload, error) {
	if len(data) == 0 {
		return nil, retry.Permanentf("event %s has no data", ti.Type)
	}
	p, err := ti.decode(data)
	if err != nil {
		return nil, retry.Permanentf("malformed JSON data for %s: %v", ti.Type, err)
	}
	if err := p.Validate(); err != nil {
		return nil, retry.Permanent(err)
	}
	return p, nil
}

func describe(p Payload) string { return fmt.Sprintf("%T", p) }
