package schemacheck

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// Draft is the only dialect Compile accepts in "$schema" (which may also
// be absent).
const Draft = "https://json-schema.org/draft/2020-12/schema"

// A Schema is a compiled schema document. It is immutable and safe for
// concurrent use.
type Schema struct {
	root *node
}

// A node is one compiled schema: the document itself or one of its
// subschemas.
type node struct {
	loc string // JSON pointer of the schema in its document; "" for the root

	// isBool marks the boolean schemas: true accepts every instance,
	// false none.
	isBool, boolVal bool

	types    typeSet // 0 when there is no "type"
	typeWant string  // the types, as the message names them

	constVal any // with hasConst
	hasConst bool
	constMsg string

	enum    []any // non-nil when there is an "enum" (empty when it is [])
	enumMsg string

	ref    *node // the resolved "$ref"
	refStr string

	properties    map[string]*node
	required      []string
	additional    *node // nil when there is no "additionalProperties"
	minProperties int   // -1 when absent, as for every bound below
	maxProperties int

	items       *node
	minItems    int
	maxItems    int
	uniqueItems bool

	minimum, maximum, exclusiveMinimum, exclusiveMaximum, multipleOf *bound

	minLength int
	maxLength int
	pattern   *regexp.Regexp
}

// A bound is the number of a numeric keyword.
type bound struct {
	value decimal
	text  string // as the messages print it
}

// A typeSet is a set of JSON types, one bit each, in the order the
// messages list them.
type typeSet uint8

const (
	typeNull typeSet = 1 << iota
	typeBoolean
	typeNumber
	typeInteger
	typeString
	typeArray
	typeObject
)

var typeNames = [...]string{"null", "boolean", "number", "integer", "string", "array", "object"}

func typeNamed(name string) typeSet {
	if i := slices.Index(typeNames[:], name); i >= 0 {
		return 1 << i
	}
	return 0
}

// String lists the types joined by " or ", as in "got string, want null
// or integer".
func (ts typeSet) String() string {
	var names []string
	for i, name := range typeNames {
		if ts&(1<<i) != 0 {
			names = append(names, name)
		}
	}
	return strings.Join(names, " or ")
}

// Keywords outside the subset. Compile refuses a schema that uses one
// rather than silently accept data the schema author meant to reject.
var unsupported = map[string]bool{
	"allOf": true, "anyOf": true, "oneOf": true, "not": true,
	"if": true, "then": true, "else": true,
	"dependentRequired": true, "dependentSchemas": true, "dependencies": true,
	"prefixItems": true, "contains": true, "minContains": true, "maxContains": true,
	"additionalItems": true, "unevaluatedItems": true, "unevaluatedProperties": true,
	"patternProperties": true, "propertyNames": true,
	"$anchor": true, "$dynamicRef": true, "$dynamicAnchor": true,
	"$recursiveRef": true, "$recursiveAnchor": true, "$vocabulary": true,
	"contentSchema": true,
}

// Compile parses a schema document and checks that it is a valid schema
// within the supported subset of draft 2020-12 (see the package
// documentation), resolving its $refs. baseURI is the document's URI: a
// $ref may name the document by it (or by its $id) as well as by a bare
// fragment.
func Compile(doc []byte, baseURI string) (*Schema, error) {
	if err := checkDepth(doc); err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	v, err := decode(doc)
	if err != nil {
		return nil, fmt.Errorf("schema is not JSON: %w", err)
	}
	c := compiler{self: []string{baseURI}, nodes: map[string]*node{}}
	if obj, ok := v.(map[string]any); ok {
		if id, ok := obj["$id"].(string); ok {
			c.self = append(c.self, strings.TrimSuffix(id, "#"))
		}
	}
	root, err := c.compile(v, "")
	if err != nil {
		return nil, err
	}
	for _, n := range c.refs {
		if n.ref, err = c.resolve(n); err != nil {
			return nil, err
		}
	}
	if err := checkCycles(c.refs); err != nil {
		return nil, err
	}
	return &Schema{root: root}, nil
}

// A compiler holds the state of one Compile.
type compiler struct {
	self  []string         // the URIs that name the document
	nodes map[string]*node // every schema, by JSON pointer
	refs  []*node          // the schemas with a $ref, in document order
}

// compile compiles the schema v found at the JSON pointer loc.
func (c *compiler) compile(v any, loc string) (*node, error) {
	n := &node{
		loc:           loc,
		minProperties: -1, maxProperties: -1,
		minItems: -1, maxItems: -1,
		minLength: -1, maxLength: -1,
	}
	c.nodes[loc] = n
	switch v := v.(type) {
	case bool:
		n.isBool, n.boolVal = true, v
		return n, nil
	case map[string]any:
		// Sorted, so that the error for a schema with several problems
		// does not depend on map order.
		for _, kw := range slices.Sorted(maps.Keys(v)) {
			if err := c.keyword(n, kw, v[kw]); err != nil {
				return nil, err
			}
		}
		return n, nil
	}
	return nil, fmt.Errorf("schema at %s: must be an object or a boolean, not %s", where(loc), jsonType(v))
}

// keyword compiles the keyword kw of value v into n.
func (c *compiler) keyword(n *node, kw string, v any) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("schema keyword %q at %s: %s", kw, where(n.loc), fmt.Sprintf(format, args...))
	}
	var err error
	switch kw {
	case "$schema":
		if v != Draft {
			return bad("%s is not supported, only %q", display(v), Draft)
		}
	case "$id":
		if n.loc != "" {
			return fmt.Errorf("schema keyword %q at %s is not supported by the events runtime validator (only at the root)", kw, where(n.loc))
		}
		if s, ok := v.(string); !ok || strings.Contains(strings.TrimSuffix(s, "#"), "#") {
			return bad("must be a URI without a fragment")
		}
	case "$defs", "definitions", "properties":
		m, ok := v.(map[string]any)
		if !ok {
			return bad("must be an object of schemas")
		}
		subs := make(map[string]*node, len(m))
		for _, name := range slices.Sorted(maps.Keys(m)) {
			if subs[name], err = c.compile(m[name], n.loc+"/"+kw+"/"+escape(name)); err != nil {
				return err
			}
		}
		if kw == "properties" {
			n.properties = subs
		}
	case "$ref":
		s, ok := v.(string)
		if !ok {
			return bad("must be a string")
		}
		n.refStr = s
		c.refs = append(c.refs, n)
	case "type":
		if n.types, err = parseTypes(v); err != nil {
			return bad("%v", err)
		}
		n.typeWant = n.types.String()
	case "required":
		if n.required, err = stringSet(v); err != nil {
			return bad("%v", err)
		}
	case "additionalProperties":
		n.additional, err = c.compile(v, n.loc+"/"+kw)
		return err
	case "items":
		n.items, err = c.compile(v, n.loc+"/"+kw)
		return err
	case "minProperties":
		n.minProperties, err = count(v)
	case "maxProperties":
		n.maxProperties, err = count(v)
	case "minItems":
		n.minItems, err = count(v)
	case "maxItems":
		n.maxItems, err = count(v)
	case "minLength":
		n.minLength, err = count(v)
	case "maxLength":
		n.maxLength, err = count(v)
	case "uniqueItems":
		b, ok := v.(bool)
		if !ok {
			return bad("must be a boolean")
		}
		n.uniqueItems = b
	case "enum":
		arr, ok := v.([]any)
		if !ok {
			return bad("must be an array")
		}
		n.enum = arr
		n.enumMsg = enumMessage(arr)
	case "const":
		n.constVal, n.hasConst = v, true
		n.constMsg = constMessage(v)
	case "minimum":
		n.minimum, err = number(v)
	case "maximum":
		n.maximum, err = number(v)
	case "exclusiveMinimum":
		n.exclusiveMinimum, err = number(v)
	case "exclusiveMaximum":
		n.exclusiveMaximum, err = number(v)
	case "multipleOf":
		if n.multipleOf, err = number(v); err == nil && n.multipleOf.value.sign() <= 0 {
			err = errors.New("must be greater than 0")
		}
	case "pattern":
		s, ok := v.(string)
		if !ok {
			return bad("must be a string")
		}
		if n.pattern, err = regexp.Compile(s); err != nil {
			return bad("%v", err)
		}
	case "title", "description", "$comment", "format", "contentMediaType", "contentEncoding":
		if _, ok := v.(string); !ok {
			return bad("must be a string")
		}
	case "deprecated", "readOnly", "writeOnly":
		if _, ok := v.(bool); !ok {
			return bad("must be a boolean")
		}
	case "examples":
		if _, ok := v.([]any); !ok {
			return bad("must be an array")
		}
	case "default":
		// Any value.
	default:
		if unsupported[kw] {
			return fmt.Errorf("schema keyword %q at %s is not supported by the events runtime validator", kw, where(n.loc))
		}
		// Unknown keywords are ignored, as the specification says.
	}
	if err != nil {
		return bad("%v", err)
	}
	return nil
}

// parseTypes reads the value of "type".
func parseTypes(v any) (typeSet, error) {
	const want = "must be a type name or a non-empty array of distinct type names"
	names := []any{v}
	if arr, ok := v.([]any); ok {
		if len(arr) == 0 {
			return 0, errors.New(want)
		}
		names = arr
	}
	var ts typeSet
	for _, name := range names {
		s, _ := name.(string)
		t := typeNamed(s)
		if t == 0 || ts&t != 0 {
			return 0, errors.New(want)
		}
		ts |= t
	}
	return ts, nil
}

// stringSet reads an array of distinct strings.
func stringSet(v any) ([]string, error) {
	const want = "must be an array of distinct strings"
	arr, ok := v.([]any)
	if !ok {
		return nil, errors.New(want)
	}
	out := make([]string, 0, len(arr))
	for _, item := range arr {
		s, ok := item.(string)
		if !ok || slices.Contains(out, s) {
			return nil, errors.New(want)
		}
		out = append(out, s)
	}
	return out, nil
}

// count reads a non-negative integer (2.0 is one).
func count(v any) (int, error) {
	num, ok := v.(json.Number)
	d, dok := parseDecimal(string(num))
	if !ok || !dok || !d.isInt() || d.neg {
		return 0, errors.New("must be a non-negative integer")
	}
	if d.point > 10 {
		return 0, fmt.Errorf("%s is too large", num)
	}
	n := 0
	for i := range int(d.point) {
		n *= 10
		if i < len(d.digits) {
			n += int(d.digits[i] - '0')
		}
	}
	if n > math.MaxInt32 {
		return 0, fmt.Errorf("%s is too large", num)
	}
	return n, nil
}

// number reads the value of a numeric keyword.
func number(v any) (*bound, error) {
	num, ok := v.(json.Number)
	d, dok := parseDecimal(string(num))
	if !ok || !dok {
		return nil, errors.New("must be a number")
	}
	return &bound{value: d, text: formatNumber(string(num))}, nil
}

// resolve returns the schema n's $ref names.
func (c *compiler) resolve(n *node) (*node, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("schema keyword \"$ref\" at %s: %q %s", where(n.loc), n.refStr, fmt.Sprintf(format, args...))
	}
	uri, frag, _ := strings.Cut(n.refStr, "#")
	if uri != "" && !slices.Contains(c.self, uri) {
		return nil, bad("is not supported by the events runtime validator (only references within the document)")
	}
	frag, err := url.PathUnescape(frag)
	if err != nil {
		return nil, bad("is not a valid URI fragment")
	}
	if frag != "" && !strings.HasPrefix(frag, "/") {
		return nil, bad("is not supported by the events runtime validator (a JSON pointer, not an anchor)")
	}
	// Re-escape each token the way the schemas' pointers are written.
	var ptr strings.Builder
	for _, tok := range strings.Split(frag, "/")[1:] {
		tok, ok := unescape(tok)
		if !ok {
			return nil, bad("is not a valid JSON pointer")
		}
		ptr.WriteString("/" + escape(tok))
	}
	target, ok := c.nodes[ptr.String()]
	if !ok {
		return nil, bad("does not resolve to a schema in the document")
	}
	return target, nil
}

// checkCycles refuses a chain of $refs that leads back to where it
// started: it would apply a schema to the same value forever.
func checkCycles(refs []*node) error {
	const (
		visiting = 1
		done     = 2
	)
	state := map[*node]int{}
	for _, n := range refs {
		var chain []*node
		m := n
		for m != nil && state[m] == 0 {
			state[m] = visiting
			chain = append(chain, m)
			m = m.ref
		}
		if m != nil && state[m] == visiting {
			i := slices.Index(chain, m)
			locs := make([]string, 0, len(chain)-i+1)
			for _, s := range append(chain[i:], m) {
				locs = append(locs, where(s.loc))
			}
			return fmt.Errorf("schema keyword \"$ref\" at %s: reference cycle %s never descends into the instance",
				where(m.loc), strings.Join(locs, " -> "))
		}
		for _, s := range chain {
			state[s] = done
		}
	}
	return nil
}

// where names the schema at the JSON pointer loc in an error.
func where(loc string) string {
	if loc == "" {
		return "(root)"
	}
	return loc
}

// escape escapes a JSON pointer token (RFC 6901).
func escape(tok string) string {
	if !strings.ContainsAny(tok, "~/") {
		return tok
	}
	return strings.ReplaceAll(strings.ReplaceAll(tok, "~", "~0"), "/", "~1")
}

// unescape undoes escape; it reports false for a "~" followed by
// anything but 0 or 1.
func unescape(tok string) (string, bool) {
	if !strings.Contains(tok, "~") {
		return tok, true
	}
	var b strings.Builder
	for i := 0; i < len(tok); i++ {
		if tok[i] != '~' {
			b.WriteByte(tok[i])
			continue
		}
		if i+1 == len(tok) || (tok[i+1] != '0' && tok[i+1] != '1') {
			return "", false
		}
		b.WriteByte("~/"[tok[i+1]-'0'])
		i++
	}
	return b.String(), true
}
