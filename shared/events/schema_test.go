package events_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"testing/fstest"

	"example.com/platform/shared/events"
	"example.com/platform/shared/events/eventstest"
	"example.com/platform/shared/retry"
)

// createdSchema is a hand-written schema of eventstest.Created, as a
// domain package would commit it: open content model (unknown properties
// pass), required fields, nested parts.
const createdSchema = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "$id": "https://example.com/schemas/events/com.example.test.thing.created.v1.json",
  "type": "object",
  "required": ["thing_id", "name", "count", "at"],
  "properties": {
    "thing_id": {"type": "string"},
    "name": {"type": "string"},
    "count": {"type": "integer"},
    "parts": {"type": "array", "items": {"$ref": "#/$defs/Part"}},
    "at": {"type": "string", "format": "date-time"}
  },
  "$defs": {
    "Part": {
      "type": "object",
      "required": ["name", "quantity"],
      "properties": {"name": {"type": "string"}, "quantity": {"type": "integer"}}
    }
  }
}`

// withSchema gives the fixture type Created the schema for one test.
func withSchema(t *testing.T, schema string) {
	t.Helper()
	if err := events.RegisterSchema(eventstest.TypeCreated, []byte(schema)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := events.RegisterSchema(eventstest.TypeCreated, nil); err != nil {
			t.Error(err)
		}
	})
}

// TestSchemaViolationIsPermanentAndNamesTheField checks that data which
// does not match its type's schema is rejected before it is decoded into
// the Go type (and before Validate), as a permanent error naming each
// offending field by its location.
func TestSchemaViolationIsPermanentAndNamesTheField(t *testing.T) {
	withSchema(t, createdSchema)
	if ti, _ := events.Lookup(eventstest.TypeCreated); !ti.HasSchema() {
		t.Fatal("HasSchema = false after RegisterSchema")
	}
	tests := []struct {
		name, from, to string
		want           []string
	}{
		{"nested field of the wrong type", `"quantity":2`, `"quantity":"2"`,
			[]string{"parts/0/quantity: got string, want integer"}},
		{"missing required field", `"name":"widget",`, ``,
			[]string{"(root): missing property 'name'"}},
		{"two problems at once", `"count":3`, `"count":true,"thing_id":7`,
			[]string{"count: got boolean, want integer", "thing_id: got number, want string"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, m, err := events.NewMessage(context.Background(), testSource, validCreated())
			if err != nil {
				t.Fatal(err)
			}
			data := bytes.Replace(m.Data, []byte(tt.from), []byte(tt.to), 1)
			if bytes.Equal(data, m.Data) {
				t.Fatalf("mutation did not apply to %s", m.Data)
			}
			m.Data = data
			in, err := events.DecodeRequest(noWrapperRequest(m, defaultMeta), 0)
			if err == nil || !retry.IsPermanent(err) || !errors.Is(err, events.ErrSchemaViolation) || !errors.Is(err, events.ErrInvalidPayload) {
				t.Fatalf("err = %v, want a permanent schema violation", err)
			}
			var sv *events.SchemaViolation
			if !errors.As(err, &sv) || sv.Type != eventstest.TypeCreated {
				t.Fatalf("err = %#v, want a *SchemaViolation of %s", err, eventstest.TypeCreated)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v\nwant it to contain %q", err, w)
				}
			}
			if in.Payload != nil {
				t.Fatalf("payload set on error: %#v", in.Payload)
			}
		})
	}
}

// TestSchemaAcceptsUnknownProperties checks the forward compatibility
// the contracts rely on: a producer that added an optional field does not
// break a consumer still validating against the older schema.
func TestSchemaAcceptsUnknownProperties(t *testing.T) {
	withSchema(t, createdSchema)
	_, m, err := events.NewMessage(context.Background(), testSource, validCreated())
	if err != nil {
		t.Fatal(err)
	}
	m.Data = bytes.Replace(m.Data, []byte(`{`), []byte(`{"colour":"red",`), 1)
	in, err := events.DecodeRequest(noWrapperRequest(m, defaultMeta), 0)
	if err != nil {
		t.Fatalf("DecodeRequest: %v", err)
	}
	if in.Payload.(eventstest.Created).Name != "widget" {
		t.Fatalf("payload = %#v", in.Payload)
	}
}

// TestTypeWithoutSchemaSkipsValidation checks that a type registered
// without a schema is decoded as before: the wrong JSON type surfaces as
// the Go decoder's error, not as a schema violation.
func TestTypeWithoutSchemaSkipsValidation(t *testing.T) {
	if ti, _ := events.Lookup(eventstest.TypeCreated); ti.HasSchema() {
		t.Fatal("fixture type has a schema outside withSchema")
	}
	_, m, err := events.NewMessage(context.Background(), testSource, validCreated())
	if err != nil {
		t.Fatal(err)
	}
	m.Data = bytes.Replace(m.Data, []byte(`"quantity":2`), []byte(`"quantity":"2"`), 1)
	_, err = events.DecodeRequest(noWrapperRequest(m, defaultMeta), 0)
	if err == nil || !retry.IsPermanent(err) || errors.Is(err, events.ErrSchemaViolation) ||
		!strings.Contains(err.Error(), "malformed JSON data") {
		t.Fatalf("err = %v, want the decoder's permanent error", err)
	}
}

func TestRegisterSchemaRejects(t *testing.T) {
	tests := []struct{ name, typ, schema, want string }{
		{"unknown type", "com.example.test.nope.v1", `{}`, "not registered"},
		{"not JSON", eventstest.TypeCreated, `{`, "events.RegisterSchema"},
		{"not an object", eventstest.TypeCreated, `[]`, "not a JSON object"},
		{"another type's $id", eventstest.TypeCreated, `{"$id": "https://example.com/schemas/events/com.example.test.thing.done.v1.json"}`, "is not the type's dataschema"},
		{"invalid schema", eventstest.TypeCreated, `{"type": 7}`, "events.RegisterSchema"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := events.RegisterSchema(tt.typ, []byte(tt.schema))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
			if ti, _ := events.Lookup(eventstest.TypeCreated); ti.HasSchema() {
				t.Fatal("a rejected schema was registered")
			}
		})
	}
}

// TestRegisterSchemasFromAFolder attaches the schemas a folder holds to
// the registered types they name and leaves other types without one.
func TestRegisterSchemasFromAFolder(t *testing.T) {
	fsys := fstest.MapFS{"contracts/" + eventstest.TypeCreated + ".json": {Data: []byte(createdSchema)}}
	if err := events.RegisterSchemas(fsys, "contracts"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = events.RegisterSchema(eventstest.TypeCreated, nil) })
	created, _ := events.Lookup(eventstest.TypeCreated)
	done, _ := events.Lookup(eventstest.TypeDone)
	if !created.HasSchema() || done.HasSchema() {
		t.Fatalf("HasSchema: created %v, done %v", created.HasSchema(), done.HasSchema())
	}
	bad := fstest.MapFS{"contracts/" + eventstest.TypeDone + ".json": {Data: []byte(`{"type": 7}`)}}
	if err := events.RegisterSchemas(bad, "contracts"); err == nil || !strings.Contains(err.Error(), eventstest.TypeDone) {
		t.Fatalf("RegisterSchemas(invalid) = %v, want an error naming %s", err, eventstest.TypeDone)
	}
}
