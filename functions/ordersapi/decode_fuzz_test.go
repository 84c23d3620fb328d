package ordersapi

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"example.com/platform/shared/domain"
)

// FuzzDecodeCreate feeds arbitrary bodies to the POST /v1/orders decoder.
// Properties: it never panics; a rejected body gets at least one error and
// every error names a field of the request ("body", "customer_id",
// "currency", "items...", or the path of an unknown or duplicate member)
// and says what is wrong; an accepted body obeys
// every limit, becomes an order.created event that validates (the API must
// not accept an order its own event encoder refuses), and encoding the
// request again and decoding it gives the same request and hash.
func FuzzDecodeCreate(f *testing.F) {
	for _, s := range []string{
		`{"customer_id":"cust-1","currency":"EUR","items":[{"sku":"SKU-1","quantity":2,"unit_price":1250}]}`,
		`{"customer_id":"c","currency":"JPY","items":[{"sku":"a/b.c_d-e","quantity":10000,"unit_price":1000000000000}]}`,
		`{"customer_id":" ","currency":"eur","items":[]}`,
		`{"customer_id":"c","currency":"EUR","items":[{"sku":"S","quantity":1.5,"unit_price":1e3}]}`,
		`{"customer_id":"c","customer_id":"d","extra":1}`,
		`{"customer_id":"\u0000","currency":"EUR","items":[{"sku":"S","quantity":1,"unit_price":0}]}`,
		`{"customer_id":"\ud800","currency":"EUR","items":[{"sku":"S","quantity":1,"unit_price":0}]}`,
		`{"customer_id":"c","currency":"EUR","items":[null,1,"x",[],{"sku":1}]}`,
		`[]`, `null`, ``, `{`, `{} {}`, "\xff", `{"items":{"sku":"S"}}`,
		`{"customer_id":"c","currency":"EUR","items":[{"sku":"S","quantity":99999999999999999999,"unit_price":-1}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, errs := decodeCreate(body)
		if len(errs) > 0 {
			for _, e := range errs {
				unknown := e.Message == "unknown field" || e.Message == "duplicate field" // named by the member's own path
				if (!knownField(e.Field) && !unknown) || strings.TrimSpace(e.Message) == "" {
					t.Fatalf("error %+v does not name a field and a problem (body %q)", e, body)
				}
			}
			return
		}
		if len(req.Items) < 1 || len(req.Items) > MaxLineItems || strings.TrimSpace(req.CustomerID) == "" || !domain.IsCurrency(req.Currency) {
			t.Fatalf("accepted %+v from %q", req, body)
		}
		var total int64
		for _, it := range req.Items {
			if it.Quantity < 1 || it.Quantity > MaxQuantity || it.UnitPrice < 0 || it.UnitPrice > MaxUnitPrice {
				t.Fatalf("accepted item %+v from %q", it, body)
			}
			total += it.Quantity * it.UnitPrice
		}
		ev := domain.OrderCreated{
			OrderID: "7f1d2c3b-4a5e-4f60-8b7c-9d0e1f2a3b4c", CustomerID: req.CustomerID, Items: req.Items,
			Currency: req.Currency, Total: total, CreatedAt: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC),
		}
		if err := ev.Validate(); err != nil {
			t.Fatalf("the API accepted %q but its order.created does not validate: %v", body, err)
		}
		again, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		req2, errs := decodeCreate(again)
		if len(errs) > 0 || !reflect.DeepEqual(req2, req) || string(req2.Hash()) != string(req.Hash()) {
			t.Fatalf("re-encoded %s decodes to %+v, %v; want %+v", again, req2, errs, req)
		}
	})
}

// knownField reports whether f names a part of the request.
func knownField(f string) bool {
	switch f {
	case "body", "customer_id", "currency", "items", "Idempotency-Key", "Content-Type":
		return true
	}
	if rest, ok := strings.CutPrefix(f, "items["); ok {
		i := strings.IndexByte(rest, ']')
		return i > 0 && strings.Trim(rest[:i], "0123456789") == ""
	}
	return false
}

// FuzzDecodeCancel feeds arbitrary bodies to the POST
// /v1/orders/{id}:cancel decoder. Properties: it never panics; a rejected
// body gets at least one error, each naming "body", "reason" or the path
// of an unknown or duplicate member, and saying what is wrong; an accepted
// reason is trimmed, at most MaxReasonBytes, makes an order.cancelled that
// validates, and encoding the request again decodes to the same request.
func FuzzDecodeCancel(f *testing.F) {
	for _, s := range []string{
		``, ` `, `{}`, `{"reason":"changed my mind"}`, `{"reason":"  padded\n"}`, `{"reason":null}`,
		`{"reason":42}`, `{"reason":"a","reason":"b"}`, `{"other":1}`, `[]`, `"x"`, `{`, `{} {}`, "\xff",
		`{"reason":"\u0000"}`, `{"reason":"\ud800"}`, `{"reason":"tab\tand\r\nbreaks"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, errs := decodeCancel(body)
		if len(errs) > 0 {
			for _, e := range errs {
				unknown := e.Message == "unknown field" || e.Message == "duplicate field"
				if (e.Field != "body" && e.Field != "reason" && !unknown) || strings.TrimSpace(e.Message) == "" {
					t.Fatalf("error %+v does not name a field and a problem (body %q)", e, body)
				}
			}
			return
		}
		if len(req.Reason) > MaxReasonBytes || req.Reason != strings.TrimSpace(req.Reason) {
			t.Fatalf("accepted reason %q from %q", req.Reason, body)
		}
		ev := domain.OrderCancelled{
			OrderID: "7f1d2c3b-4a5e-4f60-8b7c-9d0e1f2a3b4c", Reason: req.Reason, PreviousStatus: "pending",
			CancelledAt: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC),
		}
		if err := ev.Validate(); err != nil {
			t.Fatalf("the API accepted %q but its order.cancelled does not validate: %v", body, err)
		}
		again, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		if req2, errs := decodeCancel(again); len(errs) > 0 || req2 != req {
			t.Fatalf("re-encoded %s decodes to %+v, %v; want %+v", again, req2, errs, req)
		}
	})
}
