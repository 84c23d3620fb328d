package warehouse

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Field is one column of a table schema, in the JSON form the bq tool and
// Terraform's google_bigquery_table.schema use.
type Field struct {
	Name        string  `json:"name"`
	Type        string  `json:"type"`
	Mode        string  `json:"mode,omitempty"` // NULLABLE (default), REQUIRED or REPEATED
	Description string  `json:"description,omitempty"`
	Fields      []Field `json:"fields,omitempty"` // RECORD columns
}

// Schema is a table schema. It is immutable once parsed and safe for
// concurrent use.
type Schema []Field

// ParseSchema parses a schema file (a JSON array of fields) and checks
// that every field has a name and a known type and that names are unique.
func ParseSchema(b []byte) (Schema, error) {
	var s Schema
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("parse schema: %w", err)
	}
	if err := s.check(""); err != nil {
		return nil, fmt.Errorf("parse schema: %w", err)
	}
	return s, nil
}

// MustParseSchema is ParseSchema for schemas embedded in a program: it
// panics on error.
func MustParseSchema(b []byte) Schema {
	s, err := ParseSchema(b)
	if err != nil {
		panic(err)
	}
	return s
}

var knownTypes = map[string]bool{
	"STRING": true, "INTEGER": true, "INT64": true, "FLOAT": true, "FLOAT64": true,
	"NUMERIC": true, "BIGNUMERIC": true, "BOOLEAN": true, "BOOL": true, "TIMESTAMP": true,
	"DATE": true, "JSON": true, "BYTES": true, "RECORD": true, "STRUCT": true,
}

func (s Schema) check(prefix string) error {
	if len(s) == 0 {
		return fmt.Errorf("%sno fields", prefix)
	}
	seen := map[string]bool{}
	for _, f := range s {
		switch {
		case f.Name == "":
			return fmt.Errorf("%sfield without a name", prefix)
		case seen[strings.ToLower(f.Name)]:
			return fmt.Errorf("duplicate field %s%s", prefix, f.Name)
		case !knownTypes[strings.ToUpper(f.Type)]:
			return fmt.Errorf("field %s%s: unknown type %q", prefix, f.Name, f.Type)
		}
		switch strings.ToUpper(f.Mode) {
		case "", "NULLABLE", "REQUIRED", "REPEATED":
		default:
			return fmt.Errorf("field %s%s: unknown mode %q", prefix, f.Name, f.Mode)
		}
		seen[strings.ToLower(f.Name)] = true
		if f.isRecord() {
			if err := Schema(f.Fields).check(prefix + f.Name + "."); err != nil {
				return err
			}
		}
	}
	return nil
}

// Names returns the column names in schema order.
func (s Schema) Names() []string {
	out := make([]string, len(s))
	for i, f := range s {
		out[i] = f.Name
	}
	return out
}

// Field returns the column named name (case-insensitive, as in BigQuery).
func (s Schema) Field(name string) (Field, bool) {
	for _, f := range s {
		if strings.EqualFold(f.Name, name) {
			return f, true
		}
	}
	return Field{}, false
}

func (f Field) isRecord() bool {
	t := strings.ToUpper(f.Type)
	return t == "RECORD" || t == "STRUCT"
}

func (f Field) required() bool { return strings.EqualFold(f.Mode, "REQUIRED") }
func (f Field) repeated() bool { return strings.EqualFold(f.Mode, "REPEATED") }

// TimestampLayout is how Encode writes a time.Time: UTC with microseconds,
// BigQuery's TIMESTAMP precision.
const TimestampLayout = "2006-01-02T15:04:05.000000Z"

// Encode converts row values to their insertAll JSON form (see the package
// documentation). An unsupported Go type is an error naming the column.
func Encode(values map[string]any) (map[string]any, error) {
	out := make(map[string]any, len(values))
	for k, v := range values {
		ev, err := encodeValue(v)
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", k, err)
		}
		out[k] = ev
	}
	return out, nil
}

func encodeValue(v any) (any, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case string, bool, int64, float64:
		return x, nil
	case int:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case time.Time:
		return x.UTC().Format(TimestampLayout), nil
	case json.RawMessage:
		if x == nil {
			return nil, nil
		}
		return string(x), nil
	case []byte:
		return base64.StdEncoding.EncodeToString(x), nil
	case map[string]any:
		return Encode(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			ev, err := encodeValue(e)
			if err != nil {
				return nil, err
			}
			out[i] = ev
		}
		return out, nil
	default:
		return nil, fmt.Errorf("unsupported value type %T", v)
	}
}

// wireRow encodes values and passes them through JSON, so validation sees
// exactly what a BigQuery server decodes from the request.
func wireRow(values map[string]any) (map[string]any, error) {
	enc, err := Encode(values)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(enc)
	if err != nil {
		return nil, err
	}
	return DecodeJSONRow(b)
}

// DecodeJSONRow decodes one row's JSON object keeping numbers exact
// (json.Number), as a BigQuery server reads it.
func DecodeJSONRow(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	return m, nil
}

// FieldError is why one row does not match a schema, with BigQuery's
// wording: the location is the column, the message what is wrong.
type FieldError struct {
	Location string
	Message  string
}

func (e *FieldError) Error() string { return e.Location + ": " + e.Message }

// Validate checks a row in insertAll JSON form (as decoded by
// DecodeJSONRow) against s the way BigQuery does with
// ignoreUnknownValues=false: every REQUIRED column present and not null,
// no unknown column, every value convertible to its column's type (a
// TIMESTAMP as text or epoch seconds, a JSON column as a string holding
// valid JSON, an INTEGER as an integral number or its text). It returns
// the first problem, or nil.
func (s Schema) Validate(row map[string]any) *FieldError {
	return s.validate(row, "")
}

func (s Schema) validate(row map[string]any, prefix string) *FieldError {
	for _, k := range slices.Sorted(maps.Keys(row)) {
		if _, ok := s.Field(k); !ok {
			return &FieldError{Location: prefix + k, Message: "no such field: " + prefix + k + "."}
		}
	}
	for _, f := range s {
		v, present := lookupFold(row, f.Name)
		loc := prefix + f.Name
		if !present || v == nil {
			if f.required() {
				return &FieldError{Location: loc, Message: "Missing required field: " + loc + "."}
			}
			continue
		}
		if f.repeated() {
			arr, ok := v.([]any)
			if !ok {
				return &FieldError{Location: loc, Message: "Array specified for non-repeated field: " + loc + "."}
			}
			for i, e := range arr {
				if e == nil {
					return &FieldError{Location: fmt.Sprintf("%s[%d]", loc, i), Message: "Null value in repeated field: " + loc + "."}
				}
				if fe := f.validateValue(e, loc); fe != nil {
					return fe
				}
			}
			continue
		}
		if fe := f.validateValue(v, loc); fe != nil {
			return fe
		}
	}
	return nil
}

func lookupFold(m map[string]any, name string) (any, bool) {
	if v, ok := m[name]; ok {
		return v, true
	}
	for k, v := range m {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return nil, false
}

func (f Field) validateValue(v any, loc string) *FieldError {
	bad := func(what string) *FieldError {
		return &FieldError{Location: loc, Message: fmt.Sprintf("Cannot convert value to %s (bad value): %s", what, describe(v))}
	}
	switch strings.ToUpper(f.Type) {
	case "STRING":
		if _, ok := v.(string); !ok {
			return bad("string")
		}
	case "INTEGER", "INT64":
		if _, ok := parseInt(v); !ok {
			return bad("integer")
		}
	case "FLOAT", "FLOAT64", "NUMERIC", "BIGNUMERIC":
		if _, ok := parseFloat(v); !ok {
			return bad("float")
		}
	case "BOOLEAN", "BOOL":
		if _, ok := parseBool(v); !ok {
			return bad("boolean")
		}
	case "TIMESTAMP":
		if _, ok := ParseTimestamp(v); !ok {
			return &FieldError{Location: loc, Message: fmt.Sprintf("Could not parse %s as a timestamp. Required format is YYYY-MM-DD HH:MM[:SS[.SSSSSS]] or YYYY/MM/DD HH:MM[:SS[.SSSSSS]]", describe(v))}
		}
	case "DATE":
		s, ok := v.(string)
		if _, err := time.Parse(time.DateOnly, s); !ok || err != nil {
			return bad("date")
		}
	case "JSON":
		s, ok := v.(string)
		if !ok || !json.Valid([]byte(s)) {
			return &FieldError{Location: loc, Message: fmt.Sprintf("Invalid JSON value for field %s: %s", loc, describe(v))}
		}
	case "BYTES":
		s, ok := v.(string)
		if _, err := base64.StdEncoding.DecodeString(s); !ok || err != nil {
			return bad("bytes")
		}
	case "RECORD", "STRUCT":
		m, ok := v.(map[string]any)
		if !ok {
			return bad("record")
		}
		return Schema(f.Fields).validate(m, loc+".")
	}
	return nil
}

func describe(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	s := string(b)
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return s
}

func parseInt(v any) (int64, bool) {
	switch x := v.(type) {
	case json.Number:
		n, err := strconv.ParseInt(string(x), 10, 64)
		return n, err == nil
	case string:
		n, err := strconv.ParseInt(x, 10, 64)
		return n, err == nil
	case int64:
		return x, true
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x), true
		}
	}
	return 0, false
}

func parseFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	case string:
		f, err := strconv.ParseFloat(x, 64)
		return f, err == nil
	case float64:
		return x, true
	case int64:
		return float64(x), true
	}
	return 0, false
}

func parseBool(v any) (bool, bool) {
	switch x := v.(type) {
	case bool:
		return x, true
	case string:
		switch strings.ToLower(x) {
		case "true":
			return true, true
		case "false":
			return false, true
		}
	}
	return false, false
}

var timestampLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02 15:04:05.999999999 MST",
	"2006-01-02T15:04",
	"2006-01-02 15:04",
}

// ParseTimestamp reads a TIMESTAMP value as BigQuery accepts it in
// insertAll: text (RFC 3339, or with a space instead of T, zone optional
// meaning UTC) or a number of seconds since the epoch. The result is UTC,
// truncated to microseconds.
func ParseTimestamp(v any) (time.Time, bool) {
	switch x := v.(type) {
	case time.Time:
		return x.UTC().Truncate(time.Microsecond), true
	case string:
		for _, l := range timestampLayouts {
			if t, err := time.Parse(l, x); err == nil {
				if t.Year() < 1 || t.Year() > 9999 {
					return time.Time{}, false
				}
				return t.UTC().Truncate(time.Microsecond), true
			}
		}
	case json.Number, float64:
		f, ok := parseFloat(x)
		if !ok {
			return time.Time{}, false
		}
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(math.Round(frac*1e6))*1e3).UTC(), true
	}
	return time.Time{}, false
}

// Normalize converts a row to canonical Go values by s so rows read back
// from different sinks compare equal: STRING string, INTEGER int64, FLOAT
// float64, BOOLEAN bool, TIMESTAMP time.Time (UTC, microseconds), JSON the
// compact text with sorted keys as a string, BYTES []byte, NULL and absent
// columns left out. Values that do not convert are kept as they are.
func (s Schema) Normalize(row map[string]any) map[string]any {
	out := map[string]any{}
	for _, f := range s {
		v, ok := lookupFold(row, f.Name)
		if !ok || v == nil {
			continue
		}
		out[f.Name] = f.normalize(v)
	}
	return out
}

func (f Field) normalize(v any) any {
	switch strings.ToUpper(f.Type) {
	case "INTEGER", "INT64":
		if n, ok := parseInt(v); ok {
			return n
		}
	case "FLOAT", "FLOAT64", "NUMERIC", "BIGNUMERIC":
		if n, ok := parseFloat(v); ok {
			return n
		}
	case "BOOLEAN", "BOOL":
		if b, ok := parseBool(v); ok {
			return b
		}
	case "TIMESTAMP":
		if t, ok := ParseTimestamp(v); ok {
			return t
		}
	case "JSON":
		var s string
		switch x := v.(type) {
		case string:
			s = x
		case json.RawMessage:
			s = string(x)
		default:
			return v
		}
		var a any
		if err := json.Unmarshal([]byte(s), &a); err == nil {
			b, _ := json.Marshal(a)
			return string(b)
		}
	case "BYTES":
		if s, ok := v.(string); ok {
			if b, err := base64.StdEncoding.DecodeString(s); err == nil {
				return b
			}
		}
	}
	return v
}
