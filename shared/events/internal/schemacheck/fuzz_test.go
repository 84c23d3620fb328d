package schemacheck

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// FuzzAgreesWithReference checks, for every contract and hand-written
// schema (picked by the first input), that Validate never panics and
// agrees with the reference on the data (the second input): same verdict
// on malformed data, same problems. `go test` runs the seeds (each
// schema's valid instance and its mutations);
// `go test -fuzz=FuzzAgreesWithReference ./events/internal/schemacheck`
// explores further.
func FuzzAgreesWithReference(f *testing.F) {
	var pairs []pair
	var valid [][]byte
	for _, c := range contracts(f) {
		pairs = append(pairs, c.ref)
		valid = append(valid, c.example())
	}
	for _, hw := range handWritten {
		pairs = append(pairs, compilePair(f, hw.name, []byte(hw.schema)))
		valid = append(valid, []byte(hw.valid))
	}
	for i := range pairs {
		f.Add(uint8(i), valid[i])
		for data := range mutations(f, valid[i]) {
			f.Add(uint8(i), data)
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		pairs[int(which)%len(pairs)].agree(t, data)
	})
}

// BenchmarkValidate validates a realistic order.created event with this
// package and with the reference (decoding included in both, as package
// events validates raw data).
func BenchmarkValidate(b *testing.B) {
	doc, err := os.ReadFile(filepath.Join(contractsDir, "com.example.orders.order.created.v1.json"))
	if err != nil {
		b.Fatal(err)
	}
	data := []byte(`{"order_id":"ord_01JBK6Z3X7Q9V2M4N8P0R5T7W9","customer_id":"cus_4f9d2a7c",` +
		`"items":[{"sku":"SKU-RED-MUG-350","quantity":2,"unit_price":1250},` +
		`{"sku":"SKU-BLUE-TEE-M","quantity":1,"unit_price":1999},` +
		`{"sku":"SKU-STICKER-PACK","quantity":5,"unit_price":300}],` +
		`"currency":"EUR","total":5999,"created_at":"2026-05-01T12:30:45.123456789Z"}`)
	p := compilePair(b, "order.created", doc)
	b.Run("schemacheck", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if problems, err := p.ours.Validate(data); err != nil || problems != nil {
				b.Fatal(problems, err)
			}
		}
	})
	b.Run("santhosh-tekuri", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
			if err != nil {
				b.Fatal(err)
			}
			if err := p.ref.Validate(inst); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// FuzzCompileAgreesWithReference checks, for any schema and data, that
// Compile never panics, that the reference accepts every schema Compile
// accepts, and that both then agree on the data.
func FuzzCompileAgreesWithReference(f *testing.F) {
	for _, tt := range keywordTests {
		for _, c := range tt.cases {
			f.Add([]byte(tt.schema), []byte(c.data))
		}
	}
	for _, hw := range handWritten {
		f.Add([]byte(hw.schema), []byte(hw.valid))
	}
	f.Fuzz(func(t *testing.T, schema, data []byte) {
		ours, err := Compile(schema, testURI)
		if err != nil || !referenceCanTake(schema) {
			return
		}
		ref, err := compileReference(schema, testURI)
		if err != nil {
			t.Fatalf("Compile accepts %s, the reference does not: %v", schema, err)
		}
		pair{"fuzzed", schema, ours, ref}.agree(t, data)
	})
}
