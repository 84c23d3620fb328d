package domain

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"example.com/platform/shared/events"
	"example.com/platform/shared/events/contract"
	"example.com/platform/shared/retry"
)

const repoRoot = "../.."

// TestContractsAreCurrent regenerates the contracts in memory (schemas,
// asyncapi.yaml, docs/events.md) and fails when the committed files
// differ ("run make contracts"), or, first, when a payload type changed in
// a way that breaks consumers of its published version: then it lists one
// line per field, and `make contracts` refuses to write the schema.
func TestContractsAreCurrent(t *testing.T) {
	out, err := contract.Generate(contract.Config{
		Root: repoRoot, Dir: ContractsDir, Docs: contract.DefaultDocs,
		Sources: map[string]string{reflect.TypeFor[OrderCreated]().PkgPath(): "."},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := out.Check(repoRoot); err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{TypeOrderCreated, TypeOrderCancelled, TypePaymentProcessed, TypePaymentFailed, TypePaymentRefunded, TypeShipmentDispatched} {
		if _, ok := out.Files[ContractsDir+"/"+typ+".json"]; !ok {
			t.Errorf("no schema generated for %s", typ)
		}
	}
}

// TestEveryTypeValidatesAgainstItsCommittedSchema checks that importing
// the package attaches the embedded schema to every domain type, that the
// schema is the one committed for the version, and that every valid
// payload passes it (the schema is no stricter than the Go type).
func TestEveryTypeValidatesAgainstItsCommittedSchema(t *testing.T) {
	for _, p := range validPayloads() {
		ti, ok := events.Lookup(p.EventType())
		if !ok || !ti.HasSchema() {
			t.Fatalf("%s: registered %v, has schema %v", p.EventType(), ok, ti.HasSchema())
		}
		schema, err := Contracts.ReadFile("contracts/" + p.EventType() + ".json")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(schema, []byte(`"$id": "`+ti.DataSchema+`"`)) {
			t.Fatalf("%s: schema $id is not %s", p.EventType(), ti.DataSchema)
		}
		_, m, err := events.NewMessage(context.Background(), testSource, p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decode(t, m); err != nil {
			t.Fatalf("%s: valid payload rejected: %v", p.EventType(), err)
		}
	}
}

// TestSchemaViolationNamesTheField sends an order whose first line item's
// quantity is a string: the consumer rejects it against the committed
// schema before decoding, as a permanent error naming items/0/quantity.
func TestSchemaViolationNamesTheField(t *testing.T) {
	_, m, err := events.NewMessage(context.Background(), testSource, validOrderCreated())
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Replace(m.Data, []byte(`"quantity":2`), []byte(`"quantity":"2"`), 1)
	if bytes.Equal(data, m.Data) {
		t.Fatalf("mutation did not apply to %s", m.Data)
	}
	m.Data = data
	in, err := decode(t, m)
	if !retry.IsPermanent(err) || !errors.Is(err, events.ErrSchemaViolation) ||
		!strings.Contains(err.Error(), "data of com.example.orders.order.created.v1 violates its schema: items/0/quantity: got string, want integer") {
		t.Fatalf("err = %v, want a permanent schema violation naming items/0/quantity", err)
	}
	if in.Payload != nil {
		t.Fatalf("payload set on error: %#v", in.Payload)
	}
}
