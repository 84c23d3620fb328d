package schemacheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxDepth is how deeply Validate and Compile let arrays and objects nest
// in a document.
const MaxDepth = 1000

// ErrTooDeep is the error (matched with errors.Is) for a document nested
// more deeply than MaxDepth.
var ErrTooDeep = fmt.Errorf("JSON nested more than %d levels deep", MaxDepth)

// Validate checks the JSON document data against the schema. It returns
// an error only when data is not one JSON value (or nests more than
// MaxDepth levels); otherwise it returns nil when data is valid, or every
// problem found as "<location>: <message>", sorted and without
// duplicates. The location is the JSON pointer of the offending value
// without its leading slash ("items/0/quantity"), or "(root)" for the
// document itself; the message is worded as the reference
// implementation (github.com/santhosh-tekuri/jsonschema/v6) words it
// ("got string, want integer", "missing property 'name'").
func (s *Schema) Validate(data []byte) (problems []string, err error) {
	if err := checkDepth(data); err != nil {
		return nil, err
	}
	v, err := decode(data)
	if err != nil {
		return nil, err
	}
	var vd validator
	vd.validate(s.root, v)
	if len(vd.problems) == 0 {
		return nil, nil
	}
	slices.Sort(vd.problems)
	return slices.Compact(vd.problems), nil
}

// decode decodes one JSON value, numbers as json.Number, as the reference
// implementation does (a repeated member name keeps its last value).
func decode(data []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, errors.New("invalid character after top-level value")
	}
	return v, nil
}

// checkDepth returns ErrTooDeep when arrays and objects nest more than
// MaxDepth levels in data, before anything is decoded. It does not check
// the syntax otherwise.
func checkDepth(data []byte) error {
	depth := 0
	for i := 0; i < len(data); i++ {
		switch data[i] {
		case '"':
			// Skip the string, escapes included.
			for i++; i < len(data) && data[i] != '"'; i++ {
				if data[i] == '\\' {
					i++
				}
			}
		case '[', '{':
			if depth++; depth > MaxDepth {
				return ErrTooDeep
			}
		case ']', '}':
			depth--
		}
	}
	return nil
}

// A validator collects the problems of one Validate.
type validator struct {
	path     []pathElem // of the value being validated
	problems []string
}

// A pathElem is one step from a value to one of its elements: a member
// name, or an index when index >= 0.
type pathElem struct {
	name  string
	index int
}

// report adds a problem with the value being validated.
func (vd *validator) report(msg string) {
	var b strings.Builder
	for i, e := range vd.path {
		if i > 0 {
			b.WriteByte('/')
		}
		if e.index >= 0 {
			b.WriteString(strconv.Itoa(e.index))
		} else {
			b.WriteString(escape(e.name))
		}
	}
	if b.Len() == 0 { // the root, or a member named "" of the root
		b.WriteString("(root)")
	}
	b.WriteString(": ")
	b.WriteString(msg)
	vd.problems = append(vd.problems, b.String())
}

// validate checks v against n, in the order of the reference
// implementation: a failed "type", "const" or "enum" is the only problem
// reported at that level; "$ref" and the keywords of v's type are all
// checked.
func (vd *validator) validate(n *node, v any) {
	if n.isBool {
		if !n.boolVal {
			vd.report("false schema")
		}
		return
	}
	if n.types != 0 && !n.types.accepts(v) {
		vd.report("got " + jsonType(v) + ", want " + n.typeWant)
		return
	}
	if n.hasConst && !equal(v, n.constVal) {
		vd.report(n.constMsg)
		return
	}
	if n.enum != nil && !slices.ContainsFunc(n.enum, func(e any) bool { return equal(v, e) }) {
		vd.report(n.enumMsg)
		return
	}
	if n.ref != nil {
		vd.validate(n.ref, v)
	}
	switch v := v.(type) {
	case map[string]any:
		vd.object(n, v)
	case []any:
		vd.array(n, v)
	case string:
		vd.string(n, v)
	case json.Number:
		vd.number(n, v)
	}
}

// descend validates the element e of the value being validated against n.
func (vd *validator) descend(n *node, e pathElem, v any) {
	vd.path = append(vd.path, e)
	vd.validate(n, v)
	vd.path = vd.path[:len(vd.path)-1]
}

func (vd *validator) object(n *node, obj map[string]any) {
	if n.minProperties >= 0 && len(obj) < n.minProperties {
		vd.report("minProperties: got " + formatInt(len(obj)) + ", want " + formatInt(n.minProperties))
	}
	if n.maxProperties >= 0 && len(obj) > n.maxProperties {
		vd.report("maxProperties: got " + formatInt(len(obj)) + ", want " + formatInt(n.maxProperties))
	}
	var missing []string
	for _, name := range n.required {
		if _, ok := obj[name]; !ok {
			missing = append(missing, name)
		}
	}
	switch len(missing) {
	case 0:
	case 1:
		vd.report("missing property " + quote(missing[0]))
	default:
		vd.report("missing properties " + joinQuoted(missing))
	}
	var extra []string
	for name, value := range obj {
		if sub, ok := n.properties[name]; ok {
			vd.descend(sub, pathElem{name: name, index: -1}, value)
		} else if a := n.additional; a != nil {
			if a.isBool && !a.boolVal {
				extra = append(extra, name)
			} else {
				vd.descend(a, pathElem{name: name, index: -1}, value)
			}
		}
	}
	if extra != nil {
		// The reference lists them in map order; sorted is stable.
		slices.Sort(extra)
		vd.report("additional properties " + joinQuoted(extra) + " not allowed")
	}
}

func (vd *validator) array(n *node, arr []any) {
	if n.minItems >= 0 && len(arr) < n.minItems {
		vd.report("minItems: got " + formatInt(len(arr)) + ", want " + formatInt(n.minItems))
	}
	if n.maxItems >= 0 && len(arr) > n.maxItems {
		vd.report("maxItems: got " + formatInt(len(arr)) + ", want " + formatInt(n.maxItems))
	}
	if n.uniqueItems {
		if i, j, ok := duplicate(arr); ok {
			vd.report("items at " + formatInt(i) + " and " + formatInt(j) + " are equal")
		}
	}
	if n.items != nil {
		for i, item := range arr {
			vd.descend(n.items, pathElem{index: i}, item)
		}
	}
}

func (vd *validator) string(n *node, s string) {
	if n.minLength >= 0 || n.maxLength >= 0 {
		length := utf8.RuneCountInString(s)
		if n.minLength >= 0 && length < n.minLength {
			vd.report("minLength: got " + formatInt(length) + ", want " + formatInt(n.minLength))
		}
		if n.maxLength >= 0 && length > n.maxLength {
			vd.report("maxLength: got " + formatInt(length) + ", want " + formatInt(n.maxLength))
		}
	}
	if n.pattern != nil && !n.pattern.MatchString(s) {
		vd.report(quote(s) + " does not match pattern " + quote(n.pattern.String()))
	}
}

func (vd *validator) number(n *node, num json.Number) {
	if n.minimum == nil && n.maximum == nil && n.exclusiveMinimum == nil &&
		n.exclusiveMaximum == nil && n.multipleOf == nil {
		return
	}
	d, _ := parseDecimal(string(num))
	check := func(kw string, b *bound, ok func(cmp int) bool) {
		if b != nil && !ok(d.cmp(b.value)) {
			vd.report(kw + ": got " + formatNumber(string(num)) + ", want " + b.text)
		}
	}
	check("minimum", n.minimum, func(c int) bool { return c >= 0 })
	check("maximum", n.maximum, func(c int) bool { return c <= 0 })
	check("exclusiveMinimum", n.exclusiveMinimum, func(c int) bool { return c > 0 })
	check("exclusiveMaximum", n.exclusiveMaximum, func(c int) bool { return c < 0 })
	if n.multipleOf != nil && !d.isMultipleOf(n.multipleOf.value) {
		vd.report("multipleOf: got " + formatNumber(string(num)) + ", want " + n.multipleOf.text)
	}
}

// accepts reports whether v is of one of the types; an integer is a
// number without a fractional part (1.0 is one).
func (ts typeSet) accepts(v any) bool {
	t := typeOf(v)
	if ts&t != 0 {
		return true
	}
	if ts&typeInteger != 0 && t == typeNumber {
		d, _ := parseDecimal(string(v.(json.Number)))
		return d.isInt()
	}
	return false
}

// typeOf returns the type of a decoded JSON value: never typeInteger.
func typeOf(v any) typeSet {
	switch v.(type) {
	case nil:
		return typeNull
	case bool:
		return typeBoolean
	case json.Number:
		return typeNumber
	case string:
		return typeString
	case []any:
		return typeArray
	case map[string]any:
		return typeObject
	}
	return 0
}

// jsonType names the type of a decoded JSON value.
func jsonType(v any) string { return typeOf(v).String() }

// equal reports whether two decoded JSON values are equal; numbers are
// equal when their values are (1, 1.0 and 1e0 are).
func equal(a, b any) bool {
	switch a := a.(type) {
	case map[string]any:
		b, ok := b.(map[string]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for k, av := range a {
			bv, ok := b[k]
			if !ok || !equal(av, bv) {
				return false
			}
		}
		return true
	case []any:
		b, ok := b.([]any)
		return ok && slices.EqualFunc(a, b, equal)
	case json.Number:
		b, ok := b.(json.Number)
		if !ok {
			return false
		}
		da, _ := parseDecimal(string(a))
		db, _ := parseDecimal(string(b))
		return da == db
	}
	return a == b // nil, bool or string
}

// duplicate returns the first two equal items of arr, i < j, for the
// smallest j that has an equal item before it and the first such i.
func duplicate(arr []any) (i, j int, ok bool) {
	if len(arr) <= 20 {
		for j := 1; j < len(arr); j++ {
			for i := range j {
				if equal(arr[i], arr[j]) {
					return i, j, true
				}
			}
		}
		return 0, 0, false
	}
	first := make(map[string]int, len(arr))
	var b strings.Builder
	for j, item := range arr {
		b.Reset()
		writeKey(&b, item)
		if i, ok := first[b.String()]; ok {
			return i, j, true
		}
		first[b.String()] = j
	}
	return 0, 0, false
}

// writeKey writes a canonical encoding of a decoded JSON value: two
// values have the same key exactly when they are equal.
func writeKey(b *strings.Builder, v any) {
	switch v := v.(type) {
	case nil:
		b.WriteByte('n')
	case bool:
		b.WriteString(strconv.FormatBool(v))
	case string:
		b.WriteString(strconv.Quote(v))
	case json.Number:
		d, _ := parseDecimal(string(v))
		fmt.Fprintf(b, "%t:%s:%d", d.neg, d.digits, d.point)
	case []any:
		b.WriteByte('[')
		for _, item := range v {
			writeKey(b, item)
			b.WriteByte(',')
		}
		b.WriteByte(']')
	case map[string]any:
		b.WriteByte('{')
		for _, k := range slices.Sorted(maps.Keys(v)) {
			b.WriteString(strconv.Quote(k))
			b.WriteByte(':')
			writeKey(b, v[k])
			b.WriteByte(',')
		}
		b.WriteByte('}')
	}
}
