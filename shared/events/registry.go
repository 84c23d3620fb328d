package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"example.com/platform/shared/events/internal/schemacheck"
	"example.com/platform/shared/retry"
)

// DefaultSchemaBase prefixes the dataschema URI of a type registered
// without one: DefaultSchemaBase + type + ".json". A fork passes its own
// base as Register's last argument.
const DefaultSchemaBase = "https://example.com/schemas/events/"

// ErrInvalidPayload is matched (errors.Is) by every validation error.
var ErrInvalidPayload = errors.New("invalid payload")

// ValidationError lists every problem found in one payload, each as
// "field: problem", so a dead-lettered event says exactly what was wrong.
// Payload types return it from Validate.
type ValidationError struct {
	Payload  string   // Go type name, e.g. "Created"
	Problems []string // "parts[1].quantity: must be between 1 and 100, got 0"
}

func (e *ValidationError) Error() string {
	return "invalid " + e.Payload + ": " + strings.Join(e.Problems, "; ")
}

// Is reports whether target is ErrInvalidPayload.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalidPayload }

// Payload is the typed data of one domain event. Implementations are value
// types, immutable once published.
type Payload interface {
	// EventType is the versioned CloudEvents type, e.g.
	// "com.example.test.thing.created.v1".
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

	goType reflect.Type
	decode func(data []byte) (Payload, error)
	// schema, when set by RegisterSchema, validates the raw data before
	// it is decoded.
	schema *schemacheck.Schema
}

// GoType is the payload type registered for the event type (the T of
// Register).
func (ti TypeInfo) GoType() reflect.Type { return ti.goType }

// HasSchema reports whether data of the type is validated against a JSON
// Schema (see RegisterSchema) before it is decoded.
func (ti TypeInfo) HasSchema() bool { return ti.schema != nil }

// registry holds the registered types, keyed by type. Domain packages fill
// it from their init functions (see Register); it is read-only afterwards.
var (
	registryMu sync.RWMutex
	registry   = map[string]TypeInfo{}
)

// Register declares the event type typ, whose data is a T, published to
// topic (a key of topics.yaml). A domain package calls it from init for
// each of its types, so every program that imports the package can encode
// and decode them; the kernel itself knows no type. The type's dataschema
// is DefaultSchemaBase + typ + ".json" unless schemaBase is given.
//
// Register panics when typ or topic is empty, when typ does not end in a
// version segment (".v1"), or when typ is already registered with another
// payload type: each is a programming error found at start-up.
func Register[T Payload](typ, topic string, schemaBase ...string) TypeInfo {
	if typ == "" || topic == "" {
		panic("events.Register: empty type or topic")
	}
	if _, v := splitVersion(typ); v == "" {
		panic(fmt.Sprintf("events.Register: type %q has no version suffix such as .v1", typ))
	}
	base := DefaultSchemaBase
	if len(schemaBase) > 0 && schemaBase[0] != "" {
		base = schemaBase[0]
	}
	var zero T
	ti := TypeInfo{
		Type:       typ,
		Topic:      topic,
		DataSchema: base + typ + ".json",
		goType:     reflect.TypeOf(zero),
		decode: func(data []byte) (Payload, error) {
			var p T
			if err := json.Unmarshal(data, &p); err != nil {
				return nil, err
			}
			return p, nil
		},
	}
	registryMu.Lock()
	defer registryMu.Unlock()
	if old, ok := registry[typ]; ok {
		if old.goType != ti.goType || old.Topic != topic {
			panic(fmt.Sprintf("events.Register: type %q registered twice (%v on %s, then %v on %s)", typ, old.goType, old.Topic, ti.goType, topic))
		}
		return old
	}
	registry[typ] = ti
	return ti
}

// Types returns every registered event type, sorted by type.
func Types() []TypeInfo {
	registryMu.RLock()
	defer registryMu.RUnlock()
	return slices.SortedFunc(maps.Values(registry), func(a, b TypeInfo) int { return strings.Compare(a.Type, b.Type) })
}

// Lookup returns the registration of a versioned event type.
func Lookup(typ string) (TypeInfo, bool) {
	registryMu.RLock()
	defer registryMu.RUnlock()
	ti, ok := registry[typ]
	return ti, ok
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
	for _, ti := range Types() {
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

// decodePayload decodes and validates data as a payload of ti's type:
// first against the type's JSON Schema, when it has one (RegisterSchema),
// then into the Go type, then with its Validate method.
func decodePayload(ti TypeInfo, data []byte) (Payload, error) {
	if len(data) == 0 {
		return nil, retry.Permanentf("event %s has no data", ti.Type)
	}
	if err := ti.validateSchema(data); err != nil {
		return nil, err
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
