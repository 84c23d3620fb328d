package contract

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Change is one difference between the committed schema of an event type
// and version and the schema its Go type generates now, for one field.
type Change struct {
	// Type is the versioned event type.
	Type string
	// Field is the field's path: "items[].quantity" (a property of the
	// objects of an array), "attributes.*" (the values of a map); "" is
	// the payload itself.
	Field string
	// Problem says what changed; several problems of one field are joined
	// with "; ".
	Problem string
	// Breaking is true when a consumer of the version could reject or
	// misread data because of the change: it must be published as a new
	// version instead (see NextVersion).
	Breaking bool
	// Fix says what to do about a breaking change; empty means "publish
	// it as" the next version.
	Fix string
}

// String renders the change as one line, e.g.
//
//	com.example.orders.order.created.v1: field items[].quantity: type changed from integer to string: publish it as com.example.orders.order.created.v2
func (c Change) String() string {
	field := "field " + c.Field
	if c.Field == "" {
		field = "payload"
	}
	s := c.Type + ": " + field + ": " + c.Problem
	switch {
	case c.Breaking && c.Fix != "":
		s += ": " + c.Fix
	case c.Breaking:
		s += ": publish it as " + NextVersion(c.Type)
	}
	return s
}

// BreakingError lists the breaking changes that a generator refused to
// write, one line per field.
type BreakingError struct {
	Changes []Change
}

func (e *BreakingError) Error() string {
	lines := make([]string, len(e.Changes))
	for i, c := range e.Changes {
		lines[i] = c.String()
	}
	return "breaking changes to published event versions (a consumer of the version would break; " +
		"keep the old type and add the change as a new version beside it):\n" + strings.Join(lines, "\n")
}

// NextVersion returns typ with its version suffix incremented
// ("...created.v1" -> "...created.v2"); typ + ".v2" when it has none.
func NextVersion(typ string) string {
	i := strings.LastIndexByte(typ, '.')
	if i >= 0 && len(typ) > i+2 && typ[i+1] == 'v' {
		if n, err := strconv.Atoi(typ[i+2:]); err == nil {
			return typ[:i+1] + "v" + strconv.Itoa(n+1)
		}
	}
	return typ + ".v2"
}

// Breaking returns the breaking changes of changes.
func Breaking(changes []Change) []Change {
	return slices.DeleteFunc(slices.Clone(changes), func(c Change) bool { return !c.Breaking })
}

// Compare classifies every difference between old, the committed schema
// of the event type typ, and new, the schema generated now. Consumers of a
// version validate against the schema they were built with and may receive
// data written by an older or a newer producer, so a change is breaking
// when data valid under one schema could be invalid, or mean something
// else, under the other:
//
//   - a removed property (a rename is a removal and an addition);
//   - a changed type or format, or a property that is no longer an object
//     or an array;
//   - a new required property, or an existing one that becomes required
//     or stops being required;
//   - a narrowed enum or const, a raised minimum, a lowered maximum, a
//     shorter maximum length or item count, a new or changed pattern or
//     multipleOf, unknown properties no longer allowed;
//   - any other validation keyword that changed (composition keywords
//     such as oneOf are compared as a whole).
//
// Compatible changes are a new optional property, a widened enum or range
// (an older consumer is expected to be deployed before producers send the
// new values) and documentation (title, description, examples).
// Local $refs ("#/$defs/X") are resolved, so moving a definition is not a
// change. The result is sorted by field, one Change per field and kind.
func Compare(typ string, old, new []byte) ([]Change, error) {
	o, err := decodeSchema(old)
	if err != nil {
		return nil, fmt.Errorf("contract: committed schema of %s: %w", typ, err)
	}
	n, err := decodeSchema(new)
	if err != nil {
		return nil, fmt.Errorf("contract: new schema of %s: %w", typ, err)
	}
	c := &comparer{typ: typ, oldRoot: o, newRoot: n, seen: map[[2]string]bool{}, problems: map[key][]string{}}
	c.compare("", o, n)
	keys := slices.SortedFunc(maps.Keys(c.problems), func(a, b key) int {
		if a.field != b.field {
			return strings.Compare(a.field, b.field)
		}
		if a.breaking != b.breaking {
			if a.breaking {
				return -1
			}
			return 1
		}
		return 0
	})
	out := make([]Change, 0, len(keys))
	for _, k := range keys {
		out = append(out, Change{Type: typ, Field: k.field, Problem: strings.Join(c.problems[k], "; "), Breaking: k.breaking})
	}
	return out, nil
}

func decodeSchema(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("not a JSON object")
	}
	return m, nil
}

type key struct {
	field    string
	breaking bool
}

type comparer struct {
	typ              string
	oldRoot, newRoot map[string]any
	seen             map[[2]string]bool // pairs of $refs already compared (recursive types)
	problems         map[key][]string
}

func (c *comparer) add(field string, breaking bool, format string, args ...any) {
	k := key{field, breaking}
	c.problems[k] = append(c.problems[k], fmt.Sprintf(format, args...))
}

// docKeywords never change what validates.
var docKeywords = map[string]bool{
	"title": true, "description": true, "$comment": true, "examples": true, "default": true,
	"deprecated": true, "readOnly": true, "writeOnly": true, "$id": true, "$schema": true,
	"$defs": true, "definitions": true, "$anchor": true,
}

// lowerBounds narrow the accepted values when they grow; upperBounds when
// they shrink.
var (
	lowerBounds = []string{"minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties", "minContains"}
	upperBounds = []string{"maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties", "maxContains"}
)

// handled are the keywords compare treats one by one.
var handled = func() map[string]bool {
	m := map[string]bool{"$ref": true, "type": true, "format": true, "enum": true, "const": true,
		"properties": true, "required": true, "additionalProperties": true, "items": true,
		"pattern": true, "multipleOf": true, "uniqueItems": true}
	for _, k := range append(slices.Clone(lowerBounds), upperBounds...) {
		m[k] = true
	}
	return m
}()

func (c *comparer) compare(field string, old, new map[string]any) {
	old, oldRef := resolve(c.oldRoot, old)
	new, newRef := resolve(c.newRoot, new)
	if oldRef != "" || newRef != "" {
		pair := [2]string{oldRef, newRef}
		if c.seen[pair] {
			return
		}
		c.seen[pair] = true
		defer delete(c.seen, pair)
	}
	if old == nil || new == nil {
		if old == nil && new != nil {
			c.add(field, true, "schema narrowed from anything to %s", describeType(new))
		} else if old != nil && new == nil {
			c.add(field, true, "schema widened from %s to anything", describeType(old))
		}
		return
	}

	if ot, nt := types(old), types(new); !slices.Equal(ot, nt) {
		c.add(field, true, "type changed from %s to %s", typeText(ot), typeText(nt))
	}
	if of, nf := str(old["format"]), str(new["format"]); of != nf {
		c.add(field, true, "format changed from %s to %s", orNone(of), orNone(nf))
	}
	c.compareEnum(field, old, new)
	c.compareBounds(field, old, new)
	for _, kw := range []string{"pattern", "multipleOf"} {
		ov, oHas := old[kw]
		nv, nHas := new[kw]
		switch {
		case nHas && !oHas:
			c.add(field, true, "%s %s added", kw, canonical(nv))
		case oHas && !nHas:
			c.add(field, false, "%s %s removed", kw, canonical(ov))
		case oHas && canonical(ov) != canonical(nv):
			c.add(field, true, "%s changed from %s to %s", kw, canonical(ov), canonical(nv))
		}
	}
	if old["uniqueItems"] != true && new["uniqueItems"] == true {
		c.add(field, true, "items must now be unique")
	}
	c.compareObject(field, old, new)
	if oi, ok := old["items"].(map[string]any); ok {
		if ni, ok := new["items"].(map[string]any); ok {
			c.compare(field+"[]", oi, ni)
		} else {
			c.add(field, true, "items schema removed")
		}
	} else if ni, ok := new["items"].(map[string]any); ok {
		c.compare(field+"[]", map[string]any{}, ni)
	}
	for _, kw := range slices.Sorted(maps.Keys(old)) {
		if handled[kw] || docKeywords[kw] {
			continue
		}
		if nv, ok := new[kw]; !ok || canonical(nv) != canonical(old[kw]) {
			c.add(field, true, "%s changed", kw)
		}
	}
	for _, kw := range slices.Sorted(maps.Keys(new)) {
		if _, ok := old[kw]; !ok && !handled[kw] && !docKeywords[kw] {
			c.add(field, true, "%s added", kw)
		}
	}
}

func (c *comparer) compareEnum(field string, old, new map[string]any) {
	ov, oHas := enumValues(old)
	nv, nHas := enumValues(new)
	switch {
	case !oHas && !nHas:
	case !oHas:
		c.add(field, true, "enum narrowed to %s", strings.Join(nv, ", "))
	case !nHas:
		c.add(field, false, "enum widened to any value")
	default:
		var removed, added []string
		for _, v := range ov {
			if !slices.Contains(nv, v) {
				removed = append(removed, v)
			}
		}
		for _, v := range nv {
			if !slices.Contains(ov, v) {
				added = append(added, v)
			}
		}
		if len(removed) > 0 {
			c.add(field, true, "enum narrowed: %s removed", strings.Join(removed, ", "))
		}
		if len(added) > 0 {
			c.add(field, false, "enum widened: %s added", strings.Join(added, ", "))
		}
	}
}

func (c *comparer) compareBounds(field string, old, new map[string]any) {
	for _, b := range []struct {
		kws    []string
		narrow func(o, n float64) bool
		verb   string
	}{
		{lowerBounds, func(o, n float64) bool { return n > o }, "raised"},
		{upperBounds, func(o, n float64) bool { return n < o }, "lowered"},
	} {
		for _, kw := range b.kws {
			ov, oHas := number(old[kw])
			nv, nHas := number(new[kw])
			switch {
			case !oHas && !nHas:
			case !oHas:
				c.add(field, true, "range narrowed: %s %s added", kw, canonical(new[kw]))
			case !nHas:
				c.add(field, false, "range widened: %s %s removed", kw, canonical(old[kw]))
			case ov == nv:
			case b.narrow(ov, nv):
				c.add(field, true, "range narrowed: %s %s from %s to %s", kw, b.verb, canonical(old[kw]), canonical(new[kw]))
			default:
				c.add(field, false, "range widened: %s from %s to %s", kw, canonical(old[kw]), canonical(new[kw]))
			}
		}
	}
}

func (c *comparer) compareObject(field string, old, new map[string]any) {
	op, _ := old["properties"].(map[string]any)
	np, _ := new["properties"].(map[string]any)
	oreq, nreq := stringSet(old["required"]), stringSet(new["required"])
	join := func(name string) string {
		if field == "" {
			return name
		}
		return field + "." + name
	}
	for _, name := range slices.Sorted(maps.Keys(op)) {
		f := join(name)
		ns, ok := np[name]
		if !ok {
			c.add(f, true, "removed (a renamed field is a removed one)")
			continue
		}
		os, _ := op[name].(map[string]any)
		nsm, _ := ns.(map[string]any)
		c.compare(f, os, nsm)
	}
	for _, name := range slices.Sorted(maps.Keys(np)) {
		if _, ok := op[name]; ok {
			continue
		}
		if nreq[name] {
			c.add(join(name), true, "new required field: data of older producers lacks it")
		} else {
			c.add(join(name), false, "new optional field")
		}
	}
	for _, name := range slices.Sorted(maps.Keys(nreq)) {
		if _, inOld := op[name]; !inOld && np[name] != nil {
			continue // a new field, reported above
		}
		if !oreq[name] {
			c.add(join(name), true, "now required: data of older producers may lack it")
		}
	}
	for _, name := range slices.Sorted(maps.Keys(oreq)) {
		if _, inNew := np[name]; !inNew && op[name] != nil {
			continue // reported as removed
		}
		if !nreq[name] {
			c.add(join(name), true, "no longer required: consumers of the version expect it")
		}
	}
	oa, oOpen := additional(old)
	na, nOpen := additional(new)
	switch {
	case oOpen && !nOpen && na == nil:
		c.add(field, true, "unknown properties no longer allowed")
	case !oOpen && nOpen && oa == nil:
		c.add(field, false, "unknown properties now allowed")
	case oa != nil || na != nil:
		if oa == nil {
			oa = map[string]any{}
		}
		if na == nil {
			na = map[string]any{}
		}
		c.compare(field+".*", oa, na)
	}
}

// additional returns the additionalProperties schema (nil when absent or
// boolean) and whether unknown properties are accepted at all.
func additional(s map[string]any) (map[string]any, bool) {
	switch v := s["additionalProperties"].(type) {
	case bool:
		return nil, v
	case map[string]any:
		return v, true
	default:
		return nil, true
	}
}

// resolve follows local $refs ("#/$defs/X", "#/definitions/X"); it
// returns the schema and the last $ref followed.
func resolve(root, s map[string]any) (map[string]any, string) {
	var last string
	for i := 0; s != nil && i < 32; i++ {
		ref, ok := s["$ref"].(string)
		if !ok {
			return s, last
		}
		last = ref
		target := lookupPointer(root, ref)
		if target == nil {
			return s, last
		}
		if len(s) > 1 { // siblings of $ref apply too (2020-12)
			merged := maps.Clone(target)
			for k, v := range s {
				if k != "$ref" {
					merged[k] = v
				}
			}
			target = merged
		}
		s = target
	}
	return s, last
}

func lookupPointer(root map[string]any, ref string) map[string]any {
	if !strings.HasPrefix(ref, "#") {
		return nil
	}
	var cur any = root
	for _, tok := range strings.Split(strings.TrimPrefix(ref, "#"), "/")[1:] {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[tok]
	}
	m, _ := cur.(map[string]any)
	return m
}

func types(s map[string]any) []string {
	var ts []string
	switch v := s["type"].(type) {
	case string:
		ts = []string{v}
	case []any:
		for _, t := range v {
			ts = append(ts, str(t))
		}
	}
	slices.Sort(ts)
	return ts
}

func typeText(ts []string) string {
	if len(ts) == 0 {
		return "any"
	}
	return strings.Join(ts, " or ")
}

func describeType(s map[string]any) string { return typeText(types(s)) }

func enumValues(s map[string]any) ([]string, bool) {
	if v, ok := s["const"]; ok {
		return []string{canonical(v)}, true
	}
	vs, ok := s["enum"].([]any)
	if !ok {
		return nil, false
	}
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = canonical(v)
	}
	return out, true
}

func number(v any) (float64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	f, err := n.Float64()
	return f, err == nil
}

func stringSet(v any) map[string]bool {
	m := map[string]bool{}
	if vs, ok := v.([]any); ok {
		for _, s := range vs {
			m[str(s)] = true
		}
	}
	return m
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// canonical renders a JSON value deterministically (object keys sorted).
func canonical(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
