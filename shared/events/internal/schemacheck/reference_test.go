package schemacheck

// The reference implementation, github.com/santhosh-tekuri/jsonschema/v6,
// configured as package events configured it before this package replaced
// it: draft 2020-12 by default, formats not asserted.

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// contractsDir holds the committed contracts of the reference domain.
const contractsDir = "../../../domain/contracts"

// compileReference compiles a schema document with the reference.
func compileReference(doc []byte, uri string) (*jsonschema.Schema, error) {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource(uri, v); err != nil {
		return nil, err
	}
	return c.Compile(uri)
}

// referenceProblems validates data with the reference and flattens its
// detailed output into one "field: problem" line per leaf error, sorted
// and without duplicates, as package events did.
func referenceProblems(sch *jsonschema.Schema, data []byte) ([]string, error) {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	err = sch.Validate(inst)
	if err == nil {
		return nil, nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return []string{err.Error()}, nil
	}
	var out []string
	var walk func(u jsonschema.OutputUnit)
	walk = func(u jsonschema.OutputUnit) {
		if len(u.Errors) == 0 && u.Error != nil {
			field := strings.TrimPrefix(u.InstanceLocation, "/")
			if field == "" {
				field = "(root)"
			}
			out = append(out, field+": "+u.Error.String())
		}
		for _, c := range u.Errors {
			walk(c)
		}
	}
	walk(*ve.DetailedOutput())
	if len(out) == 0 {
		out = []string{ve.Error()}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

var (
	additionalRE = regexp.MustCompile(`^(.*: additional properties )(.*)( not allowed)$`)
	quotedRE     = regexp.MustCompile(`'(?:[^'\\]|\\.)*'`)
)

// normalize sorts the names in each "additional properties" problem: the
// reference lists them in map order.
func normalize(problems []string) []string {
	out := make([]string, len(problems))
	for i, p := range problems {
		if m := additionalRE.FindStringSubmatch(p); m != nil {
			names := quotedRE.FindAllString(m[2], -1)
			slices.Sort(names)
			p = m[1] + strings.Join(names, ", ") + m[3]
		}
		out[i] = p
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// A pair is one schema compiled by both implementations.
type pair struct {
	name string
	doc  []byte
	ours *Schema
	ref  *jsonschema.Schema
}

func compilePair(t testing.TB, name string, doc []byte) pair {
	t.Helper()
	ours, err := Compile(doc, testURI)
	if err != nil {
		t.Fatalf("%s: Compile: %v", name, err)
	}
	ref, err := compileReference(doc, testURI)
	if err != nil {
		t.Fatalf("%s: reference: %v", name, err)
	}
	return pair{name, doc, ours, ref}
}

// referenceCanTake reports whether the reference can validate data: it
// cannot convert a number whose exponent exceeds a million (big.Rat
// refuses it), then calls it no integer or panics comparing it. Those,
// and data nested beyond MaxDepth, are only checked not to crash us.
func referenceCanTake(data []byte) bool {
	v, err := decode(data)
	if err != nil {
		return checkDepth(data) == nil
	}
	var ok func(v any) bool
	ok = func(v any) bool {
		switch v := v.(type) {
		case json.Number:
			d, _ := parseDecimal(string(v))
			return -10000 < d.point && d.point < 10000
		case []any:
			return !slices.ContainsFunc(v, func(e any) bool { return !ok(e) })
		case map[string]any:
			for _, e := range v {
				if !ok(e) {
					return false
				}
			}
		}
		return true
	}
	return ok(v)
}

// agree validates data with both and reports any difference: in the
// verdict on malformed data, or in the problems.
func (p pair) agree(t testing.TB, data []byte) {
	t.Helper()
	got, err := p.ours.Validate(data)
	if !referenceCanTake(data) {
		return
	}
	want, werr := referenceProblems(p.ref, data)
	if (err != nil) != (werr != nil) {
		t.Errorf("%s: %s\nerror %v, reference error %v", p.name, data, err, werr)
		return
	}
	if g, w := normalize(got), normalize(want); !slices.Equal(g, w) {
		t.Errorf("%s: %s\n      got %q\nreference %q", p.name, data, g, w)
	}
}

// TestKeywordsAgreeWithReference checks the messages of TestKeywords
// against the reference.
func TestKeywordsAgreeWithReference(t *testing.T) {
	for _, tt := range keywordTests {
		p := compilePair(t, tt.name, []byte(tt.schema))
		for _, c := range tt.cases {
			p.agree(t, []byte(c.data))
		}
	}
}

// TestNumbersPrintAsReference checks how numbers print in messages (the
// reference's English printer) over a range of magnitudes.
func TestNumbersPrintAsReference(t *testing.T) {
	numbers := []string{
		"0", "-0", "1", "-1", "7", "999", "1000", "-1000", "12345", "123456", "999999", "1000000", "1234567",
		"1e21", "1e100", "1e308", "1.7976931348623157e308", "1e309", "-1e309",
		"0.5", "0.1", "0.0001", "0.00012345", "0.00001", "1e-7", "1e-100", "5e-324", "1e-400", "-1e-400",
		"123456.7", "999999.5", "999999.99999999999", "1000000.5", "3.141592653589793", "0.30000000000000004",
		"2.5e-5", "12345678901234567890", "-98765.4321", "1.0", "100.000",
	}
	var schemas []string
	for _, n := range numbers {
		schemas = append(schemas, `{"maximum": `+n+`}`, `{"minimum": `+n+`}`, `{"multipleOf": 1e400}`)
	}
	for _, schema := range schemas {
		p := compilePair(t, schema, []byte(schema))
		for _, n := range numbers {
			p.agree(t, []byte(n))
		}
	}
	// Random numbers of up to 20 digits and magnitudes up to 1e±330.
	p := compilePair(t, "exclusiveMaximum", []byte(`{"exclusiveMaximum": -1e999}`))
	r := rand.New(rand.NewPCG(1, 2))
	for range 3000 {
		digits := strconv.FormatUint(r.Uint64()|1<<63, 10)[:1+r.IntN(19)]
		n := digits[:1] + "." + digits[1:] + "e" + strconv.Itoa(r.IntN(661)-330)
		if r.IntN(2) == 0 {
			n = "-" + n
		}
		p.agree(t, []byte(strings.Replace(n, ".e", "e", 1)))
	}
}

// TestCompileAgreesWithReference checks that the schemas Compile refuses
// for an invalid value, the reference refuses too, and that those it
// accepts, the reference accepts.
func TestCompileAgreesWithReference(t *testing.T) {
	for _, schema := range []string{
		`[]`, `{"properties": {"a": 7}}`, `{"type": 7}`, `{"type": "int"}`, `{"type": []}`,
		`{"type": ["string", "string"]}`, `{"required": "a"}`, `{"required": [1]}`, `{"required": ["a", "a"]}`,
		`{"properties": []}`, `{"minLength": -1}`, `{"maxLength": 1.5}`, `{"minItems": "1"}`,
		`{"uniqueItems": 1}`, `{"enum": "a"}`, `{"minimum": "1"}`, `{"multipleOf": 0}`, `{"multipleOf": -0.5}`,
		`{"pattern": "a("}`, `{"pattern": 1}`, `{"additionalProperties": "no"}`, `{"items": [{}]}`,
		`{"format": 1}`, `{"title": null}`, `{"deprecated": "yes"}`, `{"examples": {}}`, `{"$id": 1}`,
		`{"$id": "https://example.com/s.json#frag"}`, `{"$ref": 1}`, `{"$ref": "#/$defs/Nope"}`,
		`{"$ref": "#/required", "required": []}`,
	} {
		if _, err := compileReference([]byte(schema), testURI); err == nil {
			t.Errorf("reference accepts %s", schema)
		}
		if _, err := Compile([]byte(schema), testURI); err == nil {
			t.Errorf("Compile accepts %s", schema)
		}
	}
	for _, schema := range []string{
		`true`, `false`, `{}`, `{"$schema": "https://json-schema.org/draft/2020-12/schema"}`,
		`{"x-vendor": {"oneOf": []}}`, `{"properties": {"oneOf": {"type": "string"}, "$id": true}}`,
		`{"minLength": 2.0, "maxItems": 0, "minimum": -1e400, "maximum": 1e400}`,
		`{"$ref": "#/$defs/a", "$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"properties": {"x": {"$ref": "#"}}}}}`,
		`{"$ref": "#/additionalProperties", "additionalProperties": false}`,
	} {
		compilePair(t, schema, []byte(schema))
	}
}

// handWritten are schemas that use every supported keyword, each with an
// instance it accepts.
var handWritten = []struct{ name, schema, valid string }{
	{"everything", `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "$id": "https://example.com/schemas/test.json",
  "title": "everything", "description": "Every supported keyword.", "$comment": "test",
  "type": "object",
  "required": ["name", "count", "tags"],
  "additionalProperties": false,
  "minProperties": 3, "maxProperties": 15,
  "properties": {
    "name": {"type": "string", "minLength": 2, "maxLength": 8, "pattern": "^[a-z]+$", "examples": ["abc"]},
    "count": {"type": "integer", "minimum": 1, "maximum": 100, "default": 1},
    "ratio": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1, "multipleOf": 0.125},
    "tags": {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1, "maxItems": 3, "uniqueItems": true},
    "kind": {"enum": ["a", "b", 1, null, true]},
    "version": {"const": 2},
    "meta": {"type": "object", "additionalProperties": {"type": "integer"}, "maxProperties": 2},
    "tree": {"$ref": "#/$defs/Tree"},
    "legacy": {"$ref": "#/definitions/Legacy"},
    "nullable": {"type": ["string", "null"], "deprecated": true},
    "never": false,
    "anything": true,
    "shape": {"const": {"a": [1, "x"]}},
    "choice": {"enum": [[1], {"a": 1}]},
    "at": {"type": "string", "format": "date-time", "readOnly": true, "writeOnly": false},
    "blob": {"type": "string", "contentEncoding": "base64", "contentMediaType": "image/png"}
  },
  "$defs": {
    "Tree": {"type": "object", "required": ["value"],
      "properties": {"value": {"type": "integer"}, "kids": {"type": "array", "items": {"$ref": "#/$defs/Tree"}}}}
  },
  "definitions": {"Legacy": {"type": "string", "maxLength": 3}}
}`, `{"name": "abc", "count": 3, "ratio": 0.375, "tags": ["x", "y"], "kind": null, "version": 2.0,
  "meta": {"a": 1}, "tree": {"value": 1, "kids": [{"value": 2, "kids": []}]}, "legacy": "old",
  "nullable": null, "anything": [1], "shape": {"a": [1, "x"]}, "choice": [1], "at": "2026-05-01T12:30:45Z", "blob": "AA=="}`},
	{"array root", `{"type": "array", "items": {"$ref": "#/$defs/Item"}, "uniqueItems": true,
  "$defs": {"Item": {"type": ["object", "integer"], "properties": {"id": {"type": "string", "pattern": "[0-9]"}},
    "required": ["id"], "minimum": 0, "multipleOf": 3}}}`, `[{"id": "a1"}, 3, {"id": "2"}]`},
	{"escaped refs", `{"properties": {"a": {"$ref": "#/$defs/a~1b"}, "b": {"$ref": "#/$defs/c%25d"},
  "c": {"$ref": "#/properties/a"}, "d": {"items": {"$ref": "#/$defs/t~0"}}},
  "$defs": {"a/b": {"type": "integer", "maximum": 5}, "c%d": {"type": "boolean"}, "t~": {"type": "null"}}}`,
		`{"a": 1, "b": true, "c": 2, "d": [null]}`},
	{"boolean", `true`, `{}`},
	{"enum and type", `{"type": "string", "enum": ["xy", "y", 7], "minLength": 2}`, `"xy"`},
}

// TestHandWrittenAgreeWithReference runs every mutation of the valid
// instance of each hand-written schema through both implementations.
func TestHandWrittenAgreeWithReference(t *testing.T) {
	for _, hw := range handWritten {
		p := compilePair(t, hw.name, []byte(hw.schema))
		if problems, err := p.ours.Validate([]byte(hw.valid)); err != nil || problems != nil {
			t.Errorf("%s: valid instance: %q, %v", hw.name, problems, err)
		}
		n := 0
		for data := range mutations(t, []byte(hw.valid)) {
			p.agree(t, data)
			n++
		}
		t.Logf("%s: %d instances", hw.name, n)
	}
}

// TestContractsAgreeWithReference runs an instance of every contract of
// the reference domain, and every mutation of it, through both
// implementations.
func TestContractsAgreeWithReference(t *testing.T) {
	for _, c := range contracts(t) {
		valid := c.example()
		if problems, err := c.ref.ours.Validate(valid); err != nil || problems != nil {
			t.Errorf("%s: example %s: %q, %v", c.ref.name, valid, problems, err)
		}
		n := 0
		for data := range mutations(t, valid) {
			c.ref.agree(t, data)
			n++
		}
		t.Logf("%s: %d instances", c.ref.name, n)
	}
}

// A contract is a committed schema of the reference domain.
type contract struct {
	ref pair
	doc map[string]any
}

// contracts reads the committed contracts.
func contracts(t testing.TB) []contract {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(contractsDir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no contracts in %s: %v", contractsDir, err)
	}
	var out []contract
	for _, f := range files {
		doc, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(doc, &m); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, contract{compilePair(t, filepath.Base(f), doc), m})
	}
	return out
}

// example returns a valid instance of the contract: every property set
// to a value of its type.
func (c contract) example() []byte {
	var gen func(s any) any
	gen = func(s any) any {
		m, _ := s.(map[string]any)
		if ref, ok := m["$ref"].(string); ok {
			var target any = c.doc
			for _, tok := range strings.Split(strings.TrimPrefix(ref, "#"), "/")[1:] {
				target = target.(map[string]any)[tok]
			}
			return gen(target)
		}
		switch m["type"] {
		case "object":
			obj := map[string]any{}
			props, _ := m["properties"].(map[string]any)
			for name, sub := range props {
				obj[name] = gen(sub)
			}
			return obj
		case "array":
			return []any{gen(m["items"]), gen(m["items"])}
		case "integer":
			return 1250
		case "number":
			return 12.5
		case "boolean":
			return true
		case "string":
			if m["format"] == "date-time" {
				return "2026-05-01T12:30:45.123Z"
			}
			return "ORD-0042"
		}
		return nil
	}
	b, _ := json.Marshal(gen(c.doc))
	return b
}

// replacements are the values every value of an instance is replaced by
// in turn: one of every JSON type, and numbers of every kind.
var replacements = []any{
	nil, true, false,
	json.Number("0"), json.Number("-1"), json.Number("1.5"), json.Number("2.0"), json.Number("1e2"),
	json.Number("-0.125"), json.Number("12345678901234567890"), json.Number("1e-7"), json.Number("1e400"),
	"", "x", "ünïcödé 😀", "it's \"quoted\"", "2026-05-01T12:30:45Z",
	[]any{}, []any{json.Number("1")}, []any{"x", "x"},
	map[string]any{}, map[string]any{"a": json.Number("1")},
}

// mutations yields data (a JSON document) changed in one place at a
// time, in every way: each value replaced by each of replacements and by
// an array holding it; each member removed; an extra member added to
// each object, an item repeated and an extra one added in each array.
func mutations(t testing.TB, data []byte) func(func([]byte) bool) {
	t.Helper()
	v, err := decode(data)
	if err != nil {
		t.Fatalf("%s: %v", data, err)
	}
	var variants func(v any) []any
	variants = func(v any) []any {
		out := slices.Clone(replacements)
		out = append(out, []any{v, []any{v}})
		switch v := v.(type) {
		case map[string]any:
			for _, k := range slices.Sorted(maps.Keys(v)) {
				without := maps.Clone(v)
				delete(without, k)
				out = append(out, without)
				for _, sub := range variants(v[k]) {
					with := maps.Clone(v)
					with[k] = sub
					out = append(out, with)
				}
			}
			for _, extra := range []string{"extra", "a/b~c", "", "zz"} {
				with := maps.Clone(v)
				with[extra] = "x"
				out = append(out, with)
			}
		case []any:
			out = append(out, append(slices.Clone(v), v...), append(slices.Clone(v), "extra"), []any{})
			for i := range v {
				for _, sub := range variants(v[i]) {
					with := slices.Clone(v)
					with[i] = sub
					out = append(out, with)
				}
			}
		}
		return out
	}
	return func(yield func([]byte) bool) {
		for _, m := range variants(v) {
			b, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			if !yield(b) {
				return
			}
		}
	}
}
