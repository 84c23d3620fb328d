package schemacheck

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

const testURI = "https://example.com/schemas/test.json"

func mustCompile(t testing.TB, schema string) *Schema {
	t.Helper()
	s, err := Compile([]byte(schema), testURI)
	if err != nil {
		t.Fatalf("Compile(%s): %v", schema, err)
	}
	return s
}

// keywordTests are, per keyword, instances and the exact problems
// Validate reports for them (none: valid). TestKeywords checks them, and
// TestKeywordsAgreeWithReference checks that the reference
// implementation reports the same.
var keywordTests = []struct {
	name, schema string
	cases        []keywordCase
}{
	{"boolean true", `true`, []keywordCase{
		{`null`, nil}, {`{"a":[1]}`, nil},
	}},
	{"boolean false", `false`, []keywordCase{
		{`null`, []string{"(root): false schema"}},
		{`{}`, []string{"(root): false schema"}},
	}},
	{"empty", `{}`, []keywordCase{{`"x"`, nil}, {`[]`, nil}}},
	{"type", `{"type": "integer"}`, []keywordCase{
		{`1`, nil}, {`-7`, nil}, {`1.0`, nil}, {`1e2`, nil}, {`1.5e1`, nil}, {`-0`, nil},
		{`1.5`, []string{"(root): got number, want integer"}},
		{`1e-2`, []string{"(root): got number, want integer"}},
		{`"1"`, []string{"(root): got string, want integer"}},
		{`null`, []string{"(root): got null, want integer"}},
		{`true`, []string{"(root): got boolean, want integer"}},
		{`[]`, []string{"(root): got array, want integer"}},
		{`{}`, []string{"(root): got object, want integer"}},
	}},
	{"types", `{"type": ["object", "string", "null", "integer"]}`, []keywordCase{
		{`null`, nil}, {`"s"`, nil}, {`{}`, nil}, {`3`, nil},
		{`3.5`, []string{"(root): got number, want null or integer or string or object"}},
		{`[1]`, []string{"(root): got array, want null or integer or string or object"}},
	}},
	{"number", `{"type": "number"}`, []keywordCase{
		{`3`, nil}, {`3.5`, nil}, {`-1e300`, nil},
		{`"3"`, []string{"(root): got string, want number"}},
	}},
	{"properties", `{"properties": {"a": {"type": "string"}, "b/c~": {"type": "boolean"}, "": {"type": "null"}, "f": false}}`, []keywordCase{
		{`{}`, nil}, {`{"a": "x", "b/c~": true, "": null, "other": 1}`, nil}, {`7`, nil},
		{`{"a": 1}`, []string{"a: got number, want string"}},
		{`{"b/c~": 1}`, []string{"b~1c~0: got number, want boolean"}},
		// A member named "" of the root is reported at the root, as the
		// reference does.
		{`{"": 1}`, []string{"(root): got number, want null"}},
		{`{"f": 1}`, []string{"f: false schema"}},
		{`{"a": 1, "a": "x"}`, nil}, // the last value counts
	}},
	{"required", `{"required": ["name", "it's", "a\"b"]}`, []keywordCase{
		{`{"name": 1, "it's": 2, "a\"b": 3}`, nil}, {`[]`, nil},
		{`{"it's": 2, "a\"b": 3}`, []string{"(root): missing property 'name'"}},
		{`{"a\"b": 3}`, []string{`(root): missing properties 'name', 'it\'s'`}},
		{`{}`, []string{`(root): missing properties 'name', 'it\'s', 'a"b'`}},
	}},
	{"additionalProperties false", `{"properties": {"a": true}, "additionalProperties": false}`, []keywordCase{
		{`{"a": 1}`, nil},
		{`{"a": 1, "c": 2, "b": 3}`, []string{"(root): additional properties 'b', 'c' not allowed"}},
	}},
	{"additionalProperties schema", `{"properties": {"a": true}, "additionalProperties": {"type": "integer"}}`, []keywordCase{
		{`{"a": "x", "b": 1}`, nil},
		{`{"a": "x", "b": "y", "c": null}`, []string{"b: got string, want integer", "c: got null, want integer"}},
	}},
	{"minProperties maxProperties", `{"minProperties": 2, "maxProperties": 3}`, []keywordCase{
		{`{"a": 1, "b": 2}`, nil}, {`"not an object"`, nil},
		{`{"a": 1}`, []string{"(root): minProperties: got 1, want 2"}},
		{`{"a": 1, "b": 2, "c": 3, "d": 4}`, []string{"(root): maxProperties: got 4, want 3"}},
	}},
	{"items", `{"items": {"type": "string"}}`, []keywordCase{
		{`[]`, nil}, {`["a", "b"]`, nil}, {`{"0": 1}`, nil},
		{`["a", 1, "b", true]`, []string{"1: got number, want string", "3: got boolean, want string"}},
	}},
	{"items false", `{"items": false}`, []keywordCase{
		{`[]`, nil},
		{`[1, 2]`, []string{"0: false schema", "1: false schema"}},
	}},
	{"minItems maxItems", `{"minItems": 1, "maxItems": 2.0}`, []keywordCase{
		{`[1]`, nil}, {`[1, 2]`, nil},
		{`[]`, []string{"(root): minItems: got 0, want 1"}},
		{`[1, 2, 3]`, []string{"(root): maxItems: got 3, want 2"}},
	}},
	{"uniqueItems", `{"uniqueItems": true}`, []keywordCase{
		{`[]`, nil}, {`[1, "1", [1], {"a": 1}, {"a": 2}, null, false]`, nil},
		{`[1, 2, 1.0]`, []string{"(root): items at 0 and 2 are equal"}},
		{`[1, 2, 2, 1]`, []string{"(root): items at 1 and 2 are equal"}},
		{`[{"a": [1, {"b": 2}]}, {"a": [1.0, {"b": 20e-1}]}]`, []string{"(root): items at 0 and 1 are equal"}},
		{`[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,3.0,21]`, []string{"(root): items at 3 and 22 are equal"}},
		{`[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,{"a":1,"b":[null]},{"b":[null],"a":1}]`, []string{"(root): items at 22 and 23 are equal"}},
	}},
	{"uniqueItems false", `{"uniqueItems": false}`, []keywordCase{{`[1, 1]`, nil}}},
	{"enum", `{"enum": ["a", 1.50, null, true]}`, []keywordCase{
		{`"a"`, nil}, {`1.5`, nil}, {`15e-1`, nil}, {`null`, nil}, {`true`, nil},
		{`"b"`, []string{"(root): value must be one of 'a', 1.50, <nil>, true"}},
		{`false`, []string{"(root): value must be one of 'a', 1.50, <nil>, true"}},
		{`[]`, []string{"(root): value must be one of 'a', 1.50, <nil>, true"}},
	}},
	{"enum of one", `{"enum": ["only"]}`, []keywordCase{
		{`"only"`, nil},
		{`"other"`, []string{"(root): value must be 'only'"}},
	}},
	{"enum of composites", `{"enum": [[1, 2], {"a": null}, 3]}`, []keywordCase{
		{`[1, 2.0]`, nil}, {`{"a": null}`, nil}, {`3`, nil},
		{`[2, 1]`, []string{"(root): 'enum' failed"}},
		{`{"a": null, "b": 1}`, []string{"(root): 'enum' failed"}},
	}},
	{"empty enum", `{"enum": []}`, []keywordCase{
		{`1`, []string{"(root): value must be one of "}},
	}},
	{"const", `{"const": "it's"}`, []keywordCase{
		{`"it's"`, nil},
		{`"its"`, []string{`(root): value must be 'it\'s'`}},
	}},
	{"const number", `{"const": 100}`, []keywordCase{
		{`1e2`, nil}, {`100.00`, nil},
		{`101`, []string{"(root): value must be 100"}},
		{`"100"`, []string{"(root): value must be 100"}},
	}},
	{"const null", `{"const": null}`, []keywordCase{
		{`null`, nil},
		{`0`, []string{"(root): value must be <nil>"}},
	}},
	{"const object", `{"const": {"a": [1, "x"]}}`, []keywordCase{
		{`{"a": [1.0, "x"]}`, nil},
		{`{"a": [1, "x", null]}`, []string{"(root): 'const' failed"}},
	}},
	{"minimum maximum", `{"minimum": 1.5, "maximum": 1000000}`, []keywordCase{
		{`1.5`, nil}, {`1000000`, nil}, {`"x"`, nil},
		{`1.4999999999999999999999`, []string{"(root): minimum: got 1.5, want 1.5"}},
		{`-2`, []string{"(root): minimum: got -2, want 1.5"}},
		{`1000000.0000001`, []string{"(root): maximum: got 1.0000000000001×10⁰⁶, want 1×10⁰⁶"}},
		{`123456789`, []string{"(root): maximum: got 1.23456789×10⁰⁸, want 1×10⁰⁶"}},
		{`1e999999999`, []string{"(root): maximum: got ∞, want 1×10⁰⁶"}},
		{`-1e999999999`, []string{"(root): minimum: got -∞, want 1.5"}},
		{`1e-999999999`, []string{"(root): minimum: got 0, want 1.5"}},
	}},
	{"exclusive bounds", `{"exclusiveMinimum": 0, "exclusiveMaximum": 123456.5}`, []keywordCase{
		{`0.0001`, nil}, {`123456.49`, nil},
		{`0`, []string{"(root): exclusiveMinimum: got 0, want 0"}},
		{`-0.00001`, []string{"(root): exclusiveMinimum: got -1×10⁻⁰⁵, want 0"}},
		{`123456.5`, []string{"(root): exclusiveMaximum: got 123,456.5, want 123,456.5"}},
	}},
	{"multipleOf", `{"multipleOf": 0.01}`, []keywordCase{
		{`0`, nil}, {`1`, nil}, {`12.34`, nil}, {`-0.07`, nil}, {`1e30`, nil}, {`1e999999999`, nil},
		{`0.001`, []string{"(root): multipleOf: got 0.001, want 0.01"}},
		{`12.345`, []string{"(root): multipleOf: got 12.345, want 0.01"}},
		{`1e-999999999`, []string{"(root): multipleOf: got 0, want 0.01"}},
	}},
	{"multipleOf integer", `{"multipleOf": 12}`, []keywordCase{
		{`24`, nil}, {`-36`, nil}, {`1.2e2`, nil},
		{`1e3`, []string{"(root): multipleOf: got 1,000, want 12"}},
		{`6`, []string{"(root): multipleOf: got 6, want 12"}},
	}},
	{"minLength maxLength", `{"minLength": 2, "maxLength": 3}`, []keywordCase{
		{`"ab"`, nil}, {`"äöü"`, nil}, {`"😀😀"`, nil}, {`1`, nil},
		{`"a"`, []string{"(root): minLength: got 1, want 2"}},
		{`"abcd"`, []string{"(root): maxLength: got 4, want 3"}},
		{`"😀😀😀😀"`, []string{"(root): maxLength: got 4, want 3"}},
	}},
	{"pattern", `{"pattern": "[0-9]{3}"}`, []keywordCase{
		{`"abc123def"`, nil}, {`123`, nil},
		{`"12a"`, []string{"(root): '12a' does not match pattern '[0-9]{3}'"}},
		{`"it's \"x\"\n"`, []string{`(root): 'it\'s "x"\n' does not match pattern '[0-9]{3}'`}},
	}},
	{"type stops the checks of its level", `{"type": "string", "minLength": 5, "enum": ["abcdef"]}`, []keywordCase{
		{`5`, []string{"(root): got number, want string"}},
		{`"abc"`, []string{"(root): value must be 'abcdef'"}},
	}},
	{"const stops the checks of its level", `{"const": "a", "minLength": 5}`, []keywordCase{
		{`"b"`, []string{"(root): value must be 'a'"}},
	}},
	{"ref", `{"$ref": "#/$defs/Short", "maxLength": 3, "$defs": {"Short": {"type": "string", "minLength": 2}}}`, []keywordCase{
		{`"ab"`, nil},
		{`"a"`, []string{"(root): minLength: got 1, want 2"}},
		{`"abcd"`, []string{"(root): maxLength: got 4, want 3"}},
		{`1`, []string{"(root): got number, want string"}},
	}},
	{"recursive ref", `{"type": "object", "required": ["v"], "properties": {"v": {"type": "integer"}, "kids": {"type": "array", "items": {"$ref": "#"}}}}`, []keywordCase{
		{`{"v": 1, "kids": [{"v": 2}, {"v": 3, "kids": []}]}`, nil},
		{`{"v": 1, "kids": [{"v": 2, "kids": [{}]}, {"v": "3"}]}`, []string{
			"kids/0/kids/0: missing property 'v'", "kids/1/v: got string, want integer"}},
	}},
	{"ref forms", `{"$id": "https://example.com/schemas/other.json", "properties": {
		"a": {"$ref": "#/definitions/a~1b"},
		"b": {"$ref": "#/$defs/with%20space"},
		"c": {"$ref": "https://example.com/schemas/other.json#/properties/a"},
		"d": {"$ref": "https://example.com/schemas/test.json#/$defs/t~0"}},
		"definitions": {"a/b": {"type": "integer"}},
		"$defs": {"with space": {"type": "boolean"}, "t~": {"type": "null"}}}`, []keywordCase{
		{`{"a": 1, "b": true, "c": 2, "d": null}`, nil},
		{`{"a": "1", "b": 1, "c": "2", "d": 0}`, []string{
			"a: got string, want integer", "b: got number, want boolean",
			"c: got string, want integer", "d: got number, want null"}},
	}},
	{"annotations", `{"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "t", "description": "d",
		"$comment": "c", "examples": [1], "default": {"x": 1}, "deprecated": true, "readOnly": false,
		"writeOnly": false, "format": "date-time", "contentMediaType": "application/json",
		"contentEncoding": "base64", "x-unknown": {"oneOf": 7}}`, []keywordCase{
		{`"not a date"`, nil}, {`"!!"`, nil},
	}},
}

type keywordCase struct {
	data string
	want []string
}

func TestKeywords(t *testing.T) {
	for _, tt := range keywordTests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustCompile(t, tt.schema)
			for _, c := range tt.cases {
				got, err := s.Validate([]byte(c.data))
				if err != nil {
					t.Errorf("Validate(%s): %v", c.data, err)
					continue
				}
				if !slices.Equal(got, c.want) {
					t.Errorf("Validate(%s)\n got %q\nwant %q", c.data, got, c.want)
				}
			}
		})
	}
}

func TestMalformedData(t *testing.T) {
	s := mustCompile(t, `{"type": "object"}`)
	for _, data := range []string{``, ` `, `{`, `{"a":}`, `{} {}`, `{}x`, `[1,]`, `nul`, `"\x"`, `01`} {
		if problems, err := s.Validate([]byte(data)); err == nil {
			t.Errorf("Validate(%q) = %q, nil; want an error", data, problems)
		}
	}
	for _, data := range []string{"{}", " {} \n\t", "{}\r\n"} {
		if problems, err := s.Validate([]byte(data)); err != nil || problems != nil {
			t.Errorf("Validate(%q) = %q, %v; want valid", data, problems, err)
		}
	}
}

func TestDeepData(t *testing.T) {
	s := mustCompile(t, `{"items": {"$ref": "#"}, "additionalProperties": {"$ref": "#"}, "uniqueItems": true}`)
	ok := strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth)
	if problems, err := s.Validate([]byte(ok)); err != nil || problems != nil {
		t.Errorf("%d levels: %q, %v; want valid", MaxDepth, problems, err)
	}
	// Brackets inside strings do not count.
	inString := `["` + strings.Repeat(`[{\"`, 2*MaxDepth) + `"]`
	if problems, err := s.Validate([]byte(inString)); err != nil || problems != nil {
		t.Errorf("brackets in a string: %q, %v; want valid", problems, err)
	}
	for _, deep := range []string{
		strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1),
		strings.Repeat(`{"a":`, MaxDepth+1) + "1" + strings.Repeat("}", MaxDepth+1),
		strings.Repeat("[", 100000), // malformed too
	} {
		if _, err := s.Validate([]byte(deep)); !errors.Is(err, ErrTooDeep) {
			t.Errorf("%.20s…: err = %v, want ErrTooDeep", deep, err)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct{ schema, want string }{
		// Not a schema.
		{`{`, "schema is not JSON"},
		{`{} {}`, "schema is not JSON"},
		{`[]`, "schema at (root): must be an object or a boolean, not array"},
		{`{"properties": {"a": 7}}`, "schema at /properties/a: must be an object or a boolean, not number"},
		// Other drafts.
		{`{"$schema": "http://json-schema.org/draft-07/schema#"}`, `schema keyword "$schema" at (root): 'http://json-schema.org/draft-07/schema#' is not supported, only "https://json-schema.org/draft/2020-12/schema"`},
		{`{"$schema": "https://json-schema.org/draft/2019-09/schema"}`, `schema keyword "$schema" at (root)`},
		{`{"$schema": 7}`, `schema keyword "$schema" at (root): 7 is not supported`},
		// Invalid values.
		{`{"type": 7}`, `schema keyword "type" at (root): must be a type name or a non-empty array of distinct type names`},
		{`{"type": "int"}`, `schema keyword "type" at (root): must be a type name`},
		{`{"type": []}`, `schema keyword "type" at (root): must be a type name`},
		{`{"type": ["string", "string"]}`, `schema keyword "type" at (root): must be a type name`},
		{`{"items": {"type": [null]}}`, `schema keyword "type" at /items: must be a type name`},
		{`{"required": "a"}`, `schema keyword "required" at (root): must be an array of distinct strings`},
		{`{"required": [1]}`, `schema keyword "required" at (root): must be an array of distinct strings`},
		{`{"required": ["a", "a"]}`, `schema keyword "required" at (root): must be an array of distinct strings`},
		{`{"properties": []}`, `schema keyword "properties" at (root): must be an object of schemas`},
		{`{"$defs": {"a": {"minLength": -1}}}`, `schema keyword "minLength" at /$defs/a: must be a non-negative integer`},
		{`{"maxLength": 1.5}`, `schema keyword "maxLength" at (root): must be a non-negative integer`},
		{`{"minItems": "1"}`, `schema keyword "minItems" at (root): must be a non-negative integer`},
		{`{"maxItems": 1e10}`, `schema keyword "maxItems" at (root): 1e10 is too large`},
		{`{"minProperties": true}`, `schema keyword "minProperties" at (root): must be a non-negative integer`},
		{`{"maxProperties": 99999999999999999999}`, `schema keyword "maxProperties" at (root): 99999999999999999999 is too large`},
		{`{"uniqueItems": 1}`, `schema keyword "uniqueItems" at (root): must be a boolean`},
		{`{"enum": "a"}`, `schema keyword "enum" at (root): must be an array`},
		{`{"minimum": "1"}`, `schema keyword "minimum" at (root): must be a number`},
		{`{"exclusiveMaximum": true}`, `schema keyword "exclusiveMaximum" at (root): must be a number`},
		{`{"multipleOf": 0}`, `schema keyword "multipleOf" at (root): must be greater than 0`},
		{`{"multipleOf": -0.5}`, `schema keyword "multipleOf" at (root): must be greater than 0`},
		{`{"pattern": "a("}`, `schema keyword "pattern" at (root): error parsing regexp`},
		{`{"pattern": 1}`, `schema keyword "pattern" at (root): must be a string`},
		{`{"additionalProperties": "no"}`, `schema at /additionalProperties: must be an object or a boolean, not string`},
		{`{"items": [{}]}`, `schema at /items: must be an object or a boolean, not array`},
		{`{"format": 1}`, `schema keyword "format" at (root): must be a string`},
		{`{"title": null}`, `schema keyword "title" at (root): must be a string`},
		{`{"deprecated": "yes"}`, `schema keyword "deprecated" at (root): must be a boolean`},
		{`{"examples": {}}`, `schema keyword "examples" at (root): must be an array`},
		{`{"$id": 1}`, `schema keyword "$id" at (root): must be a URI without a fragment`},
		{`{"$id": "https://example.com/s.json#frag"}`, `schema keyword "$id" at (root): must be a URI without a fragment`},
		{`{"properties": {"a": {"$id": "https://example.com/a.json"}}}`, `schema keyword "$id" at /properties/a is not supported by the events runtime validator (only at the root)`},
		// References.
		{`{"$ref": 1}`, `schema keyword "$ref" at (root): must be a string`},
		{`{"$ref": "#/$defs/Nope"}`, `schema keyword "$ref" at (root): "#/$defs/Nope" does not resolve to a schema in the document`},
		{`{"$ref": "#/required", "required": []}`, `"#/required" does not resolve to a schema in the document`},
		{`{"$ref": "#/$defs/a~2"}`, `"#/$defs/a~2" is not a valid JSON pointer`},
		{`{"$ref": "#/$defs/a%zz"}`, `"#/$defs/a%zz" is not a valid URI fragment`},
		{`{"$ref": "#anchor"}`, `schema keyword "$ref" at (root): "#anchor" is not supported by the events runtime validator (a JSON pointer, not an anchor)`},
		{`{"properties": {"a": {"$ref": "other.json#/$defs/a"}}}`, `schema keyword "$ref" at /properties/a: "other.json#/$defs/a" is not supported by the events runtime validator (only references within the document)`},
		{`{"$ref": "https://example.com/schemas/elsewhere.json"}`, `only references within the document`},
		{`{"$ref": "#"}`, `schema keyword "$ref" at (root): reference cycle (root) -> (root) never descends into the instance`},
		{`{"properties": {"a": {"$ref": "#/$defs/b"}}, "$defs": {"b": {"$ref": "#/$defs/c"}, "c": {"type": "string", "$ref": "#/$defs/b"}}}`,
			`reference cycle /$defs/b -> /$defs/c -> /$defs/b never descends into the instance`},
	}
	for kw := range unsupported {
		tests = append(tests, struct{ schema, want string }{
			`{"properties": {"status": {"` + kw + `": {}}}}`,
			`schema keyword "` + kw + `" at /properties/status is not supported by the events runtime validator`,
		})
	}
	for _, tt := range tests {
		s, err := Compile([]byte(tt.schema), testURI)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Compile(%s) = %v, %v\nwant an error containing %s", tt.schema, s, err, tt.want)
		}
	}
}

func TestCompileAccepts(t *testing.T) {
	for _, schema := range []string{
		`true`, `false`, `{}`,
		`{"$schema": "https://json-schema.org/draft/2020-12/schema"}`,
		`{"$id": "https://example.com/schemas/test.json#"}`,
		`{"x-vendor": {"oneOf": []}, "anyOfThese": 1}`,               // unknown keywords
		`{"properties": {"oneOf": {"type": "string"}, "$id": true}}`, // names, not keywords
		`{"minLength": 2.0, "maxItems": 0, "minimum": -1e400, "maximum": 1e400}`,
		`{"$ref": "#/$defs/a", "$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"properties": {"x": {"$ref": "#"}}}}}`,
		`{"$ref": "#/additionalProperties", "additionalProperties": false}`,
		`{"properties": {"a": {"$ref": "https://example.com/schemas/test.json"}}}`, // by baseURI
	} {
		if _, err := Compile([]byte(schema), testURI); err != nil {
			t.Errorf("Compile(%s): %v", schema, err)
		}
	}
}
