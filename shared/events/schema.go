package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"example.com/platform/shared/events/internal/schemacheck"
	"example.com/platform/shared/retry"
)

// ErrSchemaViolation is matched (errors.Is) by the error decoding returns
// for data that does not match its type's JSON Schema. Such an error is
// also permanent (retry.ErrPermanent).
var ErrSchemaViolation = errors.New("schema violation")

// SchemaViolation is the permanent error for event data that does not
// match the JSON Schema of its type and version. Each problem names the
// field by its JSON pointer without the leading slash ("items/0/quantity";
// "(root)" for the data itself).
type SchemaViolation struct {
	Type     string   // the versioned event type
	Problems []string // "items/0/quantity: got string, want integer"
}

func (e *SchemaViolation) Error() string {
	return "data of " + e.Type + " violates its schema: " + strings.Join(e.Problems, "; ")
}

// Is reports whether target is ErrSchemaViolation or ErrInvalidPayload.
func (e *SchemaViolation) Is(target error) bool {
	return target == ErrSchemaViolation || target == ErrInvalidPayload
}

// RegisterSchema attaches a JSON Schema (draft 2020-12) to the registered
// type typ: from then on every event of the type is validated against it
// before its data is decoded into the Go type, and a violation is a
// permanent error (a *SchemaViolation) that names the field. The schema
// must be self-contained (local $refs only) and its $id, when present,
// must be the type's dataschema URI, so that an event's dataschema
// attribute names the document it was checked against.
//
// The validator supports the subset of draft 2020-12 the contracts use
// (package shared/events/internal/schemacheck lists it): type, const,
// enum, properties, required, additionalProperties, items, the size,
// length, range and pattern keywords, uniqueItems, $defs and $ref; format
// and the other annotations are not asserted. A schema using any other
// keyword of the specification (allOf, oneOf, if, patternProperties, …)
// is refused with an error naming it. The subset keeps the programs off
// github.com/santhosh-tekuri/jsonschema/v6, whose package init compiled
// the five draft metaschemas: 8.8 ms of every function's cold start. That
// library stays the reference in the validator's tests, which check that
// both report the same problems in the same words.
//
// A domain package calls it from init, after Register, with the schema it
// committed for the type (see package shared/events/contract). Types
// without a schema are decoded without one. RegisterSchema compiles the
// schema once; it is safe for concurrent use, and registering the same
// type again replaces its schema (a nil schema removes it).
func RegisterSchema(typ string, schema []byte) error {
	ti, ok := Lookup(typ)
	if !ok {
		return fmt.Errorf("events.RegisterSchema: type %q is not registered", typ)
	}
	if schema == nil {
		setSchema(typ, nil)
		return nil
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(schema, &top); err != nil {
		if _, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
			return fmt.Errorf("events.RegisterSchema %s: the schema is not a JSON object", typ)
		}
		return fmt.Errorf("events.RegisterSchema %s: %w", typ, err)
	}
	if top == nil { // null
		return fmt.Errorf("events.RegisterSchema %s: the schema is not a JSON object", typ)
	}
	var id string
	if raw, ok := top["$id"]; ok && json.Unmarshal(raw, &id) == nil && id != ti.DataSchema {
		return fmt.Errorf("events.RegisterSchema %s: $id %q is not the type's dataschema %q", typ, id, ti.DataSchema)
	}
	sch, err := schemacheck.Compile(schema, ti.DataSchema)
	if err != nil {
		return fmt.Errorf("events.RegisterSchema %s: %w", typ, err)
	}
	setSchema(typ, sch)
	return nil
}

func setSchema(typ string, sch *schemacheck.Schema) {
	registryMu.Lock()
	defer registryMu.Unlock()
	cur := registry[typ]
	cur.schema = sch
	registry[typ] = cur
}

// MustRegisterSchema is RegisterSchema that panics on error, for init.
func MustRegisterSchema(typ string, schema []byte) {
	if err := RegisterSchema(typ, schema); err != nil {
		panic(err)
	}
}

// RegisterSchemas calls RegisterSchema for every registered type whose
// schema file dir/<type>.json is in fsys (a domain package's embedded
// contracts folder); types without a file are left without a schema. It
// returns the first error, naming the file.
func RegisterSchemas(fsys fs.FS, dir string) error {
	for _, ti := range Types() {
		schema, err := fs.ReadFile(fsys, path.Join(dir, ti.Type+".json"))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("events.RegisterSchemas: %w", err)
		}
		if err := RegisterSchema(ti.Type, schema); err != nil {
			return err
		}
	}
	return nil
}

// validateSchema checks data against ti's schema, if it has one. Every
// error is permanent.
func (ti TypeInfo) validateSchema(data []byte) error {
	if ti.schema == nil {
		return nil
	}
	problems, err := ti.schema.Validate(data)
	if err != nil {
		return retry.Permanentf("malformed JSON data for %s: %v", ti.Type, err)
	}
	if problems == nil {
		return nil
	}
	return retry.Permanent(&SchemaViolation{Type: ti.Type, Problems: problems})
}
