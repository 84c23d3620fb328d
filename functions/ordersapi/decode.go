package ordersapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"example.com/platform/shared/domain"
)

// Request limits of POST /v1/orders.
const (
	MaxBodyBytes          = 64 << 10
	MaxLineItems          = domain.MaxLineItems // 100
	MaxQuantity           = domain.MaxQuantity  // 10000
	MaxUnitPrice          = 1_000_000_000_000   // minor units; keeps every total below 2^63
	MaxCustomerIDBytes    = domain.MaxTextLength
	MaxIdempotencyKeyLen  = 255
	MaxSKULen             = 64
	idempotencyKeyPattern = "1 to 255 visible ASCII characters"
)

// Request limits of POST /v1/orders/{id}:cancel.
const (
	// MaxCancelBodyBytes holds a reason of MaxReasonBytes, escaped.
	MaxCancelBodyBytes = 8 << 10
	// MaxReasonBytes bounds the reason (after trimming): 1024.
	MaxReasonBytes = domain.MaxReasonBytes
)

var skuRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]*$`)

// FieldError names one invalid part of a request: a JSON path into the body
// such as "items[2].quantity", a header name such as "Idempotency-Key" or
// "Content-Type", or "body" for the body as a whole.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// checkIdempotencyKey validates the Idempotency-Key header value ("" when
// absent).
func checkIdempotencyKey(k string) *FieldError {
	if len(k) > MaxIdempotencyKeyLen {
		return &FieldError{"Idempotency-Key", fmt.Sprintf("must be %s, got %d bytes", idempotencyKeyPattern, len(k))}
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return &FieldError{"Idempotency-Key", "must be " + idempotencyKeyPattern}
		}
	}
	return nil
}

// decodeCreate decodes and validates a POST /v1/orders body strictly: one
// JSON object, UTF-8, no unknown or duplicate members, no trailing data,
// every member of the right JSON type, integers without fraction or
// exponent, and the business limits. It reports every problem it finds,
// each naming its field; malformed JSON stops at the first syntax error.
func decodeCreate(body []byte) (CreateRequest, []FieldError) {
	var req CreateRequest
	raw, errs := decodeValue(body)
	if errs != nil {
		return req, errs
	}
	d := &decoder{}
	top := d.object("", raw, map[string]bool{"customer_id": true, "currency": true, "items": true})
	if top == nil {
		return req, d.errs
	}
	if v, ok := d.member(top, "", "customer_id"); ok {
		if s, ok := d.str("customer_id", v); ok {
			req.CustomerID = s
			switch {
			case strings.TrimSpace(s) == "":
				d.add("customer_id", "must not be blank")
			case len(s) > MaxCustomerIDBytes:
				d.add("customer_id", fmt.Sprintf("must be at most %d bytes, got %d", MaxCustomerIDBytes, len(s)))
			case strings.IndexFunc(s, unicode.IsControl) >= 0:
				d.add("customer_id", "must not contain control characters")
			}
		}
	}
	if v, ok := d.member(top, "", "currency"); ok {
		if s, ok := d.str("currency", v); ok {
			req.Currency = s
			if !domain.IsCurrency(s) {
				d.add("currency", fmt.Sprintf("must be an upper-case ISO 4217 currency code such as EUR, got %q", truncate(s, 16)))
			}
		}
	}
	if v, ok := d.member(top, "", "items"); ok {
		req.Items = d.items(v)
	}
	return req, d.errs
}

// decodeValue checks that body is one UTF-8 JSON value with nothing after
// it and returns it.
func decodeValue(body []byte) (json.RawMessage, []FieldError) {
	if !utf8.Valid(body) {
		return nil, []FieldError{{"body", "must be UTF-8 encoded JSON"}}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, []FieldError{{"body", "is empty; want a JSON object"}}
		}
		return nil, []FieldError{{"body", "malformed JSON: " + syntaxMessage(err)}}
	}
	end := dec.InputOffset()
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, []FieldError{{"body", fmt.Sprintf("must be a single JSON value; unexpected data after offset %d", end)}}
	}
	return raw, nil
}

// decodeCancel decodes and validates a POST /v1/orders/{id}:cancel body as
// strictly as decodeCreate: empty (only white space), or one JSON object
// whose only member is an optional "reason" string of at most
// MaxReasonBytes bytes without control characters other than tab and line
// breaks. The reason is trimmed of surrounding white space.
func decodeCancel(body []byte) (CancelRequest, []FieldError) {
	var req CancelRequest
	if len(bytes.TrimSpace(body)) == 0 {
		return req, nil
	}
	raw, errs := decodeValue(body)
	if errs != nil {
		return req, errs
	}
	d := &decoder{}
	top := d.object("", raw, map[string]bool{"reason": true})
	if v, ok := top["reason"]; ok {
		if s, ok := d.str("reason", v); ok {
			req.Reason = strings.TrimSpace(s)
			switch {
			case len(req.Reason) > MaxReasonBytes:
				d.add("reason", fmt.Sprintf("must be at most %d bytes, got %d", MaxReasonBytes, len(req.Reason)))
			case strings.IndexFunc(req.Reason, func(r rune) bool { return unicode.IsControl(r) && !strings.ContainsRune("\t\n\r", r) }) >= 0:
				d.add("reason", "must not contain control characters other than tab and line breaks")
			}
		}
	}
	return req, d.errs
}

func (d *decoder) items(v json.RawMessage) []domain.LineItem {
	if v[0] != '[' {
		d.add("items", "must be an array of line items, got "+jsonKind(v))
		return nil
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(v, &elems); err != nil {
		d.add("items", "malformed: "+err.Error())
		return nil
	}
	switch {
	case len(elems) == 0:
		d.add("items", "must contain at least 1 line item")
		return nil
	case len(elems) > MaxLineItems:
		d.add("items", fmt.Sprintf("must contain at most %d line items, got %d", MaxLineItems, len(elems)))
		return nil
	}
	out := make([]domain.LineItem, len(elems))
	allowed := map[string]bool{"sku": true, "quantity": true, "unit_price": true}
	for i, e := range elems {
		p := fmt.Sprintf("items[%d]", i)
		m := d.object(p, e, allowed)
		if m == nil {
			continue
		}
		it := &out[i]
		if v, ok := d.member(m, p, "sku"); ok {
			if s, ok := d.str(p+".sku", v); ok {
				it.SKU = s
				switch {
				case s == "" || len(s) > MaxSKULen || !skuRE.MatchString(s):
					d.add(p+".sku", fmt.Sprintf("must be 1 to %d letters, digits, '.', '_', '/' or '-', starting with a letter or digit, got %q", MaxSKULen, truncate(s, 80)))
				}
			}
		}
		if v, ok := d.member(m, p, "quantity"); ok {
			if n, ok := d.integer(p+".quantity", v); ok {
				it.Quantity = n
				if n < 1 || n > MaxQuantity {
					d.add(p+".quantity", fmt.Sprintf("must be between 1 and %d, got %d", MaxQuantity, n))
				}
			}
		}
		if v, ok := d.member(m, p, "unit_price"); ok {
			if n, ok := d.integer(p+".unit_price", v); ok {
				it.UnitPrice = n
				if n < 0 || n > MaxUnitPrice {
					d.add(p+".unit_price", fmt.Sprintf("must be between 0 and %d minor units, got %d", int64(MaxUnitPrice), n))
				}
			}
		}
	}
	return out
}

// decoder collects field errors.
type decoder struct{ errs []FieldError }

func (d *decoder) add(field, msg string) { d.errs = append(d.errs, FieldError{field, msg}) }

// object decodes raw as a JSON object with members of allowed only, each
// once. It reports unknown and duplicate members (and a value that is not
// an object) and returns nil in the latter case.
func (d *decoder) object(path string, raw json.RawMessage, allowed map[string]bool) map[string]json.RawMessage {
	name := path
	if name == "" {
		name = "body"
	}
	if len(raw) == 0 || raw[0] != '{' {
		d.add(name, "must be a JSON object, got "+jsonKind(raw))
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if _, err := dec.Token(); err != nil { // {
		d.add(name, "malformed: "+err.Error())
		return nil
	}
	out := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			d.add(name, "malformed: "+err.Error())
			return nil
		}
		key, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			d.add(name, "malformed: "+err.Error())
			return nil
		}
		field := join(path, key)
		switch {
		case !allowed[key]:
			d.add(field, "unknown field")
		case out[key] != nil:
			d.add(field, "duplicate field")
		default:
			out[key] = v
		}
	}
	return out
}

// member returns m[key], reporting it as required when absent.
func (d *decoder) member(m map[string]json.RawMessage, path, key string) (json.RawMessage, bool) {
	v, ok := m[key]
	if !ok {
		d.add(join(path, key), "is required")
	}
	return v, ok
}

func (d *decoder) str(field string, v json.RawMessage) (string, bool) {
	if v[0] != '"' {
		d.add(field, "must be a string, got "+jsonKind(v))
		return "", false
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		d.add(field, "malformed string: "+err.Error())
		return "", false
	}
	return s, true
}

func (d *decoder) integer(field string, v json.RawMessage) (int64, bool) {
	if c := v[0]; c != '-' && (c < '0' || c > '9') {
		d.add(field, "must be an integer, got "+jsonKind(v))
		return 0, false
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			d.add(field, "is out of range")
		} else {
			d.add(field, fmt.Sprintf("must be an integer (no fraction or exponent), got %s", truncate(string(v), 32)))
		}
		return 0, false
	}
	return n, true
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// jsonKind names the JSON type of a valid JSON value.
func jsonKind(v json.RawMessage) string {
	if len(v) == 0 {
		return "nothing"
	}
	switch v[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

// syntaxMessage describes a JSON decoding error with its byte offset.
func syntaxMessage(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%s (at offset %d)", strings.TrimPrefix(se.Error(), "json: "), se.Offset)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return "unexpected end of input"
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
