// Package contract turns registered event types into their contracts and
// guards them: a JSON Schema per event type and version generated from
// its Go payload type, an AsyncAPI 3.0 document of every topic (who
// publishes, who consumes) and a Markdown catalogue with a Mermaid diagram
// of the flow. Compare classifies the difference between a committed
// schema and a regenerated one, so that a change which would break a
// consumer of an existing version is refused and must be published as a
// new version instead.
//
// The package is part of the kernel: it knows no domain. A domain package
// commits its contracts (the reference domain under shared/domain/contracts)
// and registers the schemas with events.RegisterSchema, so consumers
// validate incoming data against the schema of its version.
package contract

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"

	"github.com/invopop/jsonschema"

	"example.com/platform/shared/events"
	"example.com/platform/shared/events/internal/schemacheck"
)

// Draft is the JSON Schema dialect of every generated schema.
const Draft = "https://json-schema.org/draft/2020-12/schema"

// Schema returns the JSON Schema of a registered event type: the schema of
// its Go payload type with the type's dataschema URI as $id.
func Schema(ti events.TypeInfo) ([]byte, error) {
	if ti.GoType() == nil {
		return nil, fmt.Errorf("contract: type %s has no Go payload type", ti.Type)
	}
	return SchemaOf(ti.GoType(), ti.Type, ti.DataSchema)
}

// SchemaOf returns the JSON Schema (draft 2020-12) of the Go type t, as
// encoding/json writes it, titled typ and identified by id:
//
//   - every field without omitempty is required (a Go producer always
//     writes it); fields with omitempty are optional;
//   - objects accept unknown properties (no additionalProperties: false),
//     so adding an optional field never breaks a consumer of the version;
//   - nested named structs are $defs referenced with local $refs, so the
//     schema is one self-contained document;
//   - jsonschema struct tags (github.com/invopop/jsonschema) add
//     constraints such as enum, minimum or maxLength; only those the
//     events runtime validator supports (see events.RegisterSchema): a
//     tag that emits another keyword, such as oneOf, is an error naming
//     it.
//
// The output is indented JSON ending in a newline, stable for a given type.
func SchemaOf(t reflect.Type, typ, id string) ([]byte, error) {
	return schemaOf(t, typ, id, nil)
}

// schemaOf is SchemaOf with descriptions from comments (see goComments).
func schemaOf(t reflect.Type, typ, id string, comments map[string]string) ([]byte, error) {
	r := &jsonschema.Reflector{
		ExpandedStruct:            true,
		AllowAdditionalProperties: true,
		Anonymous:                 true,
	}
	if len(comments) > 0 {
		r.LookupComment = lookup(comments)
	}
	s := r.ReflectFromType(t)
	s.Version = Draft
	s.ID = jsonschema.ID(id)
	s.Title = typ
	raw, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("contract: schema of %s: %w", typ, err)
	}
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		return nil, fmt.Errorf("contract: schema of %s: %w", typ, err)
	}
	b.WriteByte('\n')
	// Refuse here, naming the keyword, what the programs would refuse
	// when the domain package registers the committed file.
	if _, err := schemacheck.Compile(b.Bytes(), id); err != nil {
		return nil, fmt.Errorf("contract: schema of %s: %w", typ, err)
	}
	return b.Bytes(), nil
}
