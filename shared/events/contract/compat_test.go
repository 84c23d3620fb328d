package contract_test

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"example.com/platform/shared/events/contract"
)

const testType = "com.example.test.thing.created.v1"

// schemaOf generates the schema of T as the generator writes it.
func schemaOf[T any](t *testing.T) []byte {
	t.Helper()
	b, err := contract.SchemaOf(reflect.TypeFor[T](), testType, "https://example.com/schemas/events/"+testType+".json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// lines compares the schemas of Old and New and returns the gate's lines
// for the breaking changes, and the compatible changes apart.
func lines[Old, New any](t *testing.T) (breaking, compatible []string) {
	t.Helper()
	changes, err := contract.Compare(testType, schemaOf[Old](t), schemaOf[New](t))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range changes {
		if c.Breaking {
			breaking = append(breaking, c.String())
		} else {
			compatible = append(compatible, c.String())
		}
	}
	return breaking, compatible
}

func wantBreaking(t *testing.T, got []string, want ...string) {
	t.Helper()
	for i := range want {
		want[i] = testType + ": " + want[i] + ": publish it as com.example.test.thing.created.v2"
	}
	if !slices.Equal(got, want) {
		t.Fatalf("breaking changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// The version committed first: every test changes one thing in it.
type (
	item struct {
		SKU      string `json:"sku"`
		Quantity int64  `json:"quantity"`
	}
	base struct {
		ID     string    `json:"id"`
		Status string    `json:"status" jsonschema:"enum=open,enum=closed"`
		Count  int64     `json:"count" jsonschema:"minimum=0,maximum=100"`
		Note   string    `json:"note,omitempty"`
		Items  []item    `json:"items"`
		At     time.Time `json:"at"`
	}
)

func TestGateRemovedField(t *testing.T) {
	type v struct {
		ID     string    `json:"id"`
		Status string    `json:"status" jsonschema:"enum=open,enum=closed"`
		Count  int64     `json:"count" jsonschema:"minimum=0,maximum=100"`
		Items  []item    `json:"items"`
		At     time.Time `json:"at"`
	}
	got, _ := lines[base, v](t)
	wantBreaking(t, got, "field note: removed (a renamed field is a removed one)")
}

func TestGateRenamedField(t *testing.T) {
	type v struct {
		ID     string    `json:"id"`
		Status string    `json:"status" jsonschema:"enum=open,enum=closed"`
		Total  int64     `json:"total" jsonschema:"minimum=0,maximum=100"`
		Note   string    `json:"note,omitempty"`
		Items  []item    `json:"items"`
		At     time.Time `json:"at"`
	}
	got, _ := lines[base, v](t)
	wantBreaking(t, got,
		"field count: removed (a renamed field is a removed one)",
		"field total: new required field: data of older producers lacks it")
}

func TestGateChangedType(t *testing.T) {
	type v struct {
		ID     int64  `json:"id"`
		Status string `json:"status" jsonschema:"enum=open,enum=closed"`
		Count  int64  `json:"count" jsonschema:"minimum=0,maximum=100"`
		Note   string `json:"note,omitempty"`
		Items  []item `json:"items"`
		At     string `json:"at"`
	}
	got, _ := lines[base, v](t)
	wantBreaking(t, got,
		"field at: format changed from date-time to none",
		"field id: type changed from string to integer")
}

func TestGateChangedNestedType(t *testing.T) {
	type item2 struct {
		SKU      string `json:"sku"`
		Quantity string `json:"quantity"`
	}
	type v struct {
		ID     string    `json:"id"`
		Status string    `json:"status" jsonschema:"enum=open,enum=closed"`
		Count  int64     `json:"count" jsonschema:"minimum=0,maximum=100"`
		Note   string    `json:"note,omitempty"`
		Items  []item2   `json:"items"`
		At     time.Time `json:"at"`
	}
	got, _ := lines[base, v](t)
	wantBreaking(t, got, "field items[].quantity: type changed from integer to string")
}

func TestGateRemovedNestedField(t *testing.T) {
	type item2 struct {
		SKU string `json:"sku"`
	}
	type v struct {
		ID     string    `json:"id"`
		Status string    `json:"status" jsonschema:"enum=open,enum=closed"`
		Count  int64     `json:"count" jsonschema:"minimum=0,maximum=100"`
		Note   string    `json:"note,omitempty"`
		Items  []item2   `json:"items"`
		At     time.Time `json:"at"`
	}
	got, _ := lines[base, v](t)
	wantBreaking(t, got, "field items[].quantity: removed (a renamed field is a removed one)")
}

func TestGateNewRequiredField(t *testing.T) {
	type v struct {
		ID       string    `json:"id"`
		Status   string    `json:"status" jsonschema:"enum=open,enum=closed"`
		Count    int64     `json:"count" jsonschema:"minimum=0,maximum=100"`
		Note     string    `json:"note,omitempty"`
		Items    []item    `json:"items"`
		At       time.Time `json:"at"`
		Priority int64     `json:"priority"`
	}
	got, _ := lines[base, v](t)
	wantBreaking(t, got, "field priority: new required field: data of older producers lacks it")
}

func TestGateRequiredness(t *testing.T) {
	type v struct {
		ID     string    `json:"id,omitempty"`
		Status string    `json:"status" jsonschema:"enum=open,enum=closed"`
		Count  int64     `json:"count" jsonschema:"minimum=0,maximum=100"`
		Note   string    `json:"note"`
		Items  []item    `json:"items"`
		At     time.Time `json:"at"`
	}
	got, _ := lines[base, v](t)
	wantBreaking(t, got,
		"field id: no longer required: consumers of the version expect it",
		"field note: now required: data of older producers may lack it")
}

func TestGateNarrowedEnum(t *testing.T) {
	type v struct {
		ID     string    `json:"id"`
		Status string    `json:"status" jsonschema:"enum=open,enum=pending"`
		Count  int64     `json:"count" jsonschema:"minimum=0,maximum=100"`
		Note   string    `json:"note,omitempty"`
		Items  []item    `json:"items"`
		At     time.Time `json:"at"`
	}
	got, compatible := lines[base, v](t)
	wantBreaking(t, got, `field status: enum narrowed: "closed" removed`)
	if !slices.Equal(compatible, []string{testType + `: field status: enum widened: "pending" added`}) {
		t.Fatalf("compatible = %q", compatible)
	}
}

func TestGateNarrowedRange(t *testing.T) {
	type v struct {
		ID     string    `json:"id" jsonschema:"maxLength=36"`
		Status string    `json:"status" jsonschema:"enum=open,enum=closed"`
		Count  int64     `json:"count" jsonschema:"minimum=1,maximum=50"`
		Note   string    `json:"note,omitempty"`
		Items  []item    `json:"items" jsonschema:"minItems=1"`
		At     time.Time `json:"at"`
	}
	got, _ := lines[base, v](t)
	wantBreaking(t, got,
		"field count: range narrowed: minimum raised from 0 to 1; range narrowed: maximum lowered from 100 to 50",
		"field id: range narrowed: maxLength 36 added",
		"field items: range narrowed: minItems 1 added")
}

func TestGateUnknownPropertiesRefused(t *testing.T) {
	old := []byte(`{"type":"object","properties":{"a":{"type":"string"}}}`)
	closed := []byte(`{"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":false}`)
	changes, err := contract.Compare(testType, old, closed)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 1 || !changes[0].Breaking || changes[0].String() != testType+
		": payload: unknown properties no longer allowed: publish it as com.example.test.thing.created.v2" {
		t.Fatalf("changes = %v", changes)
	}
}

// TestGateCompatibleChanges checks that what cannot break a consumer
// passes the gate: a new optional field, a widened enum and range,
// documentation, and a nested type moved to another definition name.
func TestGateCompatibleChanges(t *testing.T) {
	type lineItem struct {
		SKU      string `json:"sku" jsonschema:"description=Stock keeping unit"`
		Quantity int64  `json:"quantity"`
	}
	type v struct {
		ID     string     `json:"id" jsonschema:"title=Thing id,description=The thing's UUID"`
		Status string     `json:"status" jsonschema:"enum=open,enum=closed,enum=archived"`
		Count  int64      `json:"count" jsonschema:"maximum=1000"`
		Note   string     `json:"note,omitempty"`
		Items  []lineItem `json:"items"`
		At     time.Time  `json:"at"`
		Colour string     `json:"colour,omitempty"`
	}
	breaking, compatible := lines[base, v](t)
	if len(breaking) > 0 {
		t.Fatalf("breaking = %q", breaking)
	}
	want := []string{
		testType + ": field colour: new optional field",
		testType + ": field count: range widened: minimum 0 removed; range widened: maximum from 100 to 1000",
		testType + `: field status: enum widened: "archived" added`,
	}
	if !slices.Equal(compatible, want) {
		t.Fatalf("compatible:\n%s\nwant:\n%s", strings.Join(compatible, "\n"), strings.Join(want, "\n"))
	}
	if changes, err := contract.Compare(testType, schemaOf[base](t), schemaOf[base](t)); err != nil || len(changes) != 0 {
		t.Fatalf("Compare(same) = %v, %v", changes, err)
	}
}

func TestNextVersion(t *testing.T) {
	for in, want := range map[string]string{
		"com.example.a.b.v1":  "com.example.a.b.v2",
		"com.example.a.b.v9":  "com.example.a.b.v10",
		"com.example.a.b":     "com.example.a.b.v2",
		"com.example.a.b.vx1": "com.example.a.b.vx1.v2",
	} {
		if got := contract.NextVersion(in); got != want {
			t.Errorf("NextVersion(%q) = %q, want %q", in, got, want)
		}
	}
}
