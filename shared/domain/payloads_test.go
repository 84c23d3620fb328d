package domain

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"example.com/platform/shared/events"
)

func TestPayloadsValid(t *testing.T) {
	for _, p := range validPayloads() {
		if err := p.Validate(); err != nil {
			t.Errorf("%T: %v", p, err)
		}
		if p.AggregateID() != orderID || !p.OccurredAt().Equal(t0) {
			t.Errorf("%T: aggregate %q, occurred %v", p, p.AggregateID(), p.OccurredAt())
		}
	}
}

func TestPayloadValidation(t *testing.T) {
	oc := func(f func(*OrderCreated)) events.Payload { p := validOrderCreated(); f(&p); return p }
	pp := func(f func(*PaymentProcessed)) events.Payload {
		p := validPayloads()[1].(PaymentProcessed)
		f(&p)
		return p
	}
	pf := func(f func(*PaymentFailed)) events.Payload { p := validPayloads()[2].(PaymentFailed); f(&p); return p }
	sd := func(f func(*ShipmentDispatched)) events.Payload {
		p := validPayloads()[3].(ShipmentDispatched)
		f(&p)
		return p
	}
	oc2 := func(f func(*OrderCancelled)) events.Payload {
		p := validPayloads()[4].(OrderCancelled)
		f(&p)
		return p
	}
	pr := func(f func(*PaymentRefunded)) events.Payload {
		p := validPayloads()[5].(PaymentRefunded)
		f(&p)
		return p
	}
	tests := []struct {
		name string
		p    events.Payload
		want string
	}{
		{"order id not a UUID", oc(func(p *OrderCreated) { p.OrderID = "order-1" }),
			`invalid OrderCreated: order_id: must be a non-nil UUID in canonical form, got "order-1"`},
		{"order id nil UUID", oc(func(p *OrderCreated) { p.OrderID = "00000000-0000-0000-0000-000000000000" }),
			"order_id: must be a non-nil UUID"},
		{"order id braces", oc(func(p *OrderCreated) { p.OrderID = "{" + orderID + "}" }),
			"order_id: must be a non-nil UUID in canonical form"},
		{"missing customer", oc(func(p *OrderCreated) { p.CustomerID = "  " }), "customer_id: is required"},
		{"customer not UTF-8", oc(func(p *OrderCreated) { p.CustomerID = "cust\xff" }), "customer_id: must be valid UTF-8"},
		{"no items", oc(func(p *OrderCreated) { p.Items = nil }), "items: must contain at least one line item"},
		{"too many items", oc(func(p *OrderCreated) {
			p.Items = make([]LineItem, MaxLineItems+1)
			for i := range p.Items {
				p.Items[i] = LineItem{SKU: "S", Quantity: 1, UnitPrice: 1}
			}
			p.Total = MaxLineItems + 1
		}), "items: must contain at most 100 line items, got 101"},
		{"zero quantity", oc(func(p *OrderCreated) { p.Items[1].Quantity = 0 }),
			"items[1].quantity: must be between 1 and 10000, got 0"},
		{"huge quantity", oc(func(p *OrderCreated) { p.Items[0].Quantity = MaxQuantity + 1 }),
			"items[0].quantity: must be between 1 and 10000, got 10001"},
		{"missing sku", oc(func(p *OrderCreated) { p.Items[0].SKU = "" }), "items[0].sku: is required"},
		{"long sku", oc(func(p *OrderCreated) { p.Items[0].SKU = strings.Repeat("s", 257) }),
			"items[0].sku: must be at most 256 bytes, got 257"},
		{"negative price", oc(func(p *OrderCreated) { p.Items[0].UnitPrice = -1 }),
			"items[0].unit_price: must be >= 0 minor units, got -1"},
		{"wrong total", oc(func(p *OrderCreated) { p.Total = 3500 }),
			"total: must equal the sum of quantity x unit_price (3499), got 3500"},
		{"negative total", oc(func(p *OrderCreated) { p.Total = -5 }), "total: must be >= 0 minor units, got -5"},
		{"overflow", oc(func(p *OrderCreated) {
			p.Items = []LineItem{{SKU: "a", Quantity: 2, UnitPrice: math.MaxInt64 / 2}, {SKU: "b", Quantity: 1, UnitPrice: 2}}
		}), "total: line items overflow int64 minor units"},
		{"missing currency", oc(func(p *OrderCreated) { p.Currency = "" }),
			"currency: is required (ISO 4217 code such as EUR)"},
		{"lower-case currency", oc(func(p *OrderCreated) { p.Currency = "usd" }),
			`currency: unknown ISO 4217 currency code "usd"`},
		{"zero created_at", oc(func(p *OrderCreated) { p.CreatedAt = time.Time{} }), "created_at: is required"},
		{"several problems at once", oc(func(p *OrderCreated) { p.OrderID = ""; p.CreatedAt = time.Time{} }),
			"invalid OrderCreated: order_id: is required; created_at: is required"},

		{"payment id missing", pp(func(p *PaymentProcessed) { p.PaymentID = "" }), "invalid PaymentProcessed: payment_id: is required"},
		{"negative amount", pp(func(p *PaymentProcessed) { p.Amount = -100 }), "amount: must be >= 0 minor units, got -100"},
		{"unknown currency", pp(func(p *PaymentProcessed) { p.Currency = "ABC" }), `currency: unknown ISO 4217 currency code "ABC"`},
		{"missing gateway reference", pp(func(p *PaymentProcessed) { p.GatewayReference = "" }), "gateway_reference: is required"},
		{"zero processed_at", pp(func(p *PaymentProcessed) { p.ProcessedAt = time.Time{} }), "processed_at: is required"},

		{"missing reason", pf(func(p *PaymentFailed) { p.Reason = "" }), "invalid PaymentFailed: reason: is required"},
		{"long decline code", pf(func(p *PaymentFailed) { p.DeclineCode = strings.Repeat("d", 300) }),
			"decline_code: must be at most 256 bytes, got 300"},
		{"failed amount negative", pf(func(p *PaymentFailed) { p.Amount = -1 }), "amount: must be >= 0 minor units, got -1"},
		{"zero failed_at", pf(func(p *PaymentFailed) { p.FailedAt = time.Time{} }), "failed_at: is required"},

		{"shipment id not UUID", sd(func(p *ShipmentDispatched) { p.ShipmentID = "ship-1" }),
			`invalid ShipmentDispatched: shipment_id: must be a non-nil UUID in canonical form, got "ship-1"`},
		{"missing carrier", sd(func(p *ShipmentDispatched) { p.Carrier = "" }), "carrier: is required"},
		{"missing tracking", sd(func(p *ShipmentDispatched) { p.TrackingNumber = "" }), "tracking_number: is required"},
		{"zero dispatched_at", sd(func(p *ShipmentDispatched) { p.DispatchedAt = time.Time{} }), "dispatched_at: is required"},

		{"cancelled order id missing", oc2(func(p *OrderCancelled) { p.OrderID = "" }), "invalid OrderCancelled: order_id: is required"},
		{"long cancel reason", oc2(func(p *OrderCancelled) { p.Reason = strings.Repeat("r", MaxReasonBytes+1) }),
			"reason: must be at most 1024 bytes, got 1025"},
		{"cancel reason not UTF-8", oc2(func(p *OrderCancelled) { p.Reason = "no\xff" }), "reason: must be valid UTF-8"},
		{"missing previous status", oc2(func(p *OrderCancelled) { p.PreviousStatus = "" }), "previous_status: is required"},
		{"zero cancelled_at", oc2(func(p *OrderCancelled) { p.CancelledAt = time.Time{} }), "cancelled_at: is required"},

		{"refund payment id not UUID", pr(func(p *PaymentRefunded) { p.PaymentID = "pay-1" }),
			`invalid PaymentRefunded: payment_id: must be a non-nil UUID in canonical form, got "pay-1"`},
		{"missing refund reference", pr(func(p *PaymentRefunded) { p.RefundReference = " " }), "refund_reference: is required"},
		{"negative refund", pr(func(p *PaymentRefunded) { p.Amount = -1 }), "amount: must be >= 0 minor units, got -1"},
		{"refund currency", pr(func(p *PaymentRefunded) { p.Currency = "" }), "currency: is required"},
		{"zero refunded_at", pr(func(p *PaymentRefunded) { p.RefundedAt = time.Time{} }), "refunded_at: is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			if err == nil || !errors.Is(err, events.ErrInvalidPayload) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want error containing %q", err, tt.want)
			}
		})
	}
}

func TestDeclineIsValidWithZeroAmountAndNoCode(t *testing.T) {
	p := PaymentFailed{OrderID: orderID, Reason: "card_declined", Currency: "JPY", FailedAt: t0}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestCancellationWithoutReasonIsValid(t *testing.T) {
	p := OrderCancelled{OrderID: orderID, PreviousStatus: "pending", CancelledAt: t0}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestIsCurrency(t *testing.T) {
	for _, c := range []string{"EUR", "USD", "JPY", "GBP", "CHF", "SEK", "BHD", "ZWG"} {
		if !IsCurrency(c) {
			t.Errorf("IsCurrency(%q) = false", c)
		}
	}
	for _, c := range []string{"", "eur", "EU", "EURO", "XXX", "XAU", "BTC"} {
		if IsCurrency(c) {
			t.Errorf("IsCurrency(%q) = true", c)
		}
	}
	if n := len(currencies); n < 150 {
		t.Errorf("only %d currencies", n)
	}
}
