package schemacheck

import (
	"encoding/json"
	"strconv"
	"strings"
)

// The messages copy the wording of github.com/santhosh-tekuri/jsonschema/v6
// (package kind, printed in English), so that a problem reads the same as
// it did when that library validated the events.

// enumMessage is the message for a value not in the enum values.
func enumMessage(values []any) string {
	for _, v := range values {
		if !primitive(v) {
			return "'enum' failed"
		}
	}
	if len(values) == 1 {
		return "value must be " + display(values[0])
	}
	shown := make([]string, len(values))
	for i, v := range values {
		shown[i] = display(v)
	}
	return "value must be one of " + strings.Join(shown, ", ")
}

// constMessage is the message for a value other than the const value v.
func constMessage(v any) string {
	if !primitive(v) {
		return "'const' failed"
	}
	return "value must be " + display(v)
}

// primitive reports whether a decoded JSON value is neither an array nor
// an object.
func primitive(v any) bool {
	switch v.(type) {
	case []any, map[string]any:
		return false
	}
	return true
}

// display shows a primitive JSON value in a message: a string quoted, a
// number as the schema writes it, null as "<nil>".
func display(v any) string {
	switch v := v.(type) {
	case nil:
		return "<nil>"
	case bool:
		return strconv.FormatBool(v)
	case json.Number:
		return string(v)
	case string:
		return quote(v)
	}
	return "value"
}

// quote single-quotes s, escaping it as Go would double-quote it but with
// double quotes left alone and single quotes escaped.
func quote(s string) string {
	q := strconv.Quote(s)
	q = strings.ReplaceAll(q, `\"`, `"`)
	q = strings.ReplaceAll(q, `'`, `\'`)
	return "'" + q[1:len(q)-1] + "'"
}

// joinQuoted quotes each name and joins them with ", ".
func joinQuoted(names []string) string {
	quoted := make([]string, len(names))
	for i, name := range names {
		quoted[i] = quote(name)
	}
	return strings.Join(quoted, ", ")
}
