// Package schemacheck validates JSON documents against the subset of JSON
// Schema draft 2020-12 that the event contracts use, with no dependency
// beyond the standard library.
//
// It replaces github.com/santhosh-tekuri/jsonschema/v6 in the programs:
// that library compiles the five draft metaschemas in its package init,
// 8.8 ms of every function's cold start, to support far more than the
// contracts need. The library stays the reference in this package's
// tests, which check that both agree on every contract, on hand-written
// schemas using every supported keyword and under fuzzing: same verdict,
// same problems, same wording.
//
// # The subset
//
// A schema is a boolean or an object of these keywords:
//
//   - $schema (absent, or https://json-schema.org/draft/2020-12/schema),
//     $id (at the root only), $defs and definitions;
//   - $ref, to the document itself: "#" or a JSON pointer fragment naming
//     a schema of the document ("#/$defs/LineItem"), possibly after the
//     document's URI or $id; it may recurse, but not back to itself
//     without descending into the instance;
//   - type, const, enum;
//   - properties, required, additionalProperties, minProperties,
//     maxProperties;
//   - items (a schema, as in 2020-12), minItems, maxItems, uniqueItems;
//   - minimum, maximum, exclusiveMinimum, exclusiveMaximum, multipleOf,
//     compared exactly (numbers are never rounded to float64);
//   - minLength, maxLength (in code points), pattern (a Go regexp,
//     unanchored);
//   - the annotations title, description, $comment, examples, default,
//     deprecated, readOnly, writeOnly, contentMediaType, contentEncoding
//     and format, which is an annotation only, as by default in 2020-12.
//
// Compile refuses every other keyword of the specification (allOf, oneOf,
// if, patternProperties, $anchor, …) with an error naming it and where it
// is, rather than silently accept data the schema would reject; it ignores
// unknown keywords (x-foo), as the specification says.
//
// # Problems
//
// Validate reports each problem as the reference implementation's
// detailed output reports its leaf errors: at the location of the
// offending value, worded as that library words it in English. Where the
// library returns only the first failure at a location (a wrong type, a
// const or enum mismatch), so does Validate. The differences: the
// additional properties of one object are listed sorted (the library
// lists them in map order); a document nested more than MaxDepth levels
// is refused as an error; and a number whose exponent exceeds a million
// is compared exactly, where the library, which cannot convert it to a
// big.Rat, calls 1e1000001 no integer and panics comparing it with a
// minimum.
package schemacheck
