package domain

import (
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"example.com/platform/shared/events"
)

// Limits enforced by the payloads' Validate methods.
const (
	MaxLineItems   = 100
	MaxQuantity    = 10_000
	MaxTextLength  = 256
	MaxReasonBytes = 1024
)

type checker struct {
	payload  string
	problems []string
}

func (c *checker) addf(field, format string, args ...any) {
	c.problems = append(c.problems, field+": "+fmt.Sprintf(format, args...))
}

func (c *checker) err() error {
	if len(c.problems) == 0 {
		return nil
	}
	return &events.ValidationError{Payload: c.payload, Problems: c.problems}
}

func (c *checker) uuid(field, v string) {
	if v == "" {
		c.addf(field, "is required")
		return
	}
	if u, err := uuid.Parse(v); err != nil || len(v) != 36 || u == uuid.Nil {
		c.addf(field, "must be a non-nil UUID in canonical form, got %q", v)
	}
}

func (c *checker) text(field, v string, max int) {
	switch {
	case strings.TrimSpace(v) == "":
		c.addf(field, "is required")
	case len(v) > max:
		c.addf(field, "must be at most %d bytes, got %d", max, len(v))
	case !utf8.ValidString(v):
		// JSON would replace each invalid byte with U+FFFD: the event
		// would not arrive as it was built.
		c.addf(field, "must be valid UTF-8")
	}
}

// optionalText checks v like text when it is set.
func (c *checker) optionalText(field, v string, max int) {
	switch {
	case v == "":
	case len(v) > max:
		c.addf(field, "must be at most %d bytes, got %d", max, len(v))
	case !utf8.ValidString(v):
		c.addf(field, "must be valid UTF-8")
	}
}

func (c *checker) money(field string, amount int64, currency string) {
	if amount < 0 {
		c.addf(field, "must be >= 0 minor units, got %d", amount)
	}
	c.currency(currency)
}

func (c *checker) currency(v string) {
	switch {
	case v == "":
		c.addf("currency", "is required (ISO 4217 code such as EUR)")
	case !IsCurrency(v):
		c.addf("currency", "unknown ISO 4217 currency code %q", v)
	}
}

func (c *checker) time(field string, t time.Time) {
	if t.IsZero() {
		c.addf(field, "is required")
	}
}

// LineItem is one product line of an order.
type LineItem struct {
	SKU      string `json:"sku"`
	Quantity int64  `json:"quantity"`
	// UnitPrice is the price of one unit in the order currency's minor unit.
	UnitPrice int64 `json:"unit_price"`
}

// OrderCreated: the orders API accepted an order. Type
// com.example.orders.order.created.v1 on topic order.created.
type OrderCreated struct {
	OrderID    string     `json:"order_id"`
	CustomerID string     `json:"customer_id"`
	Items      []LineItem `json:"items"`
	// Currency is the ISO 4217 code of every amount in the order.
	Currency string `json:"currency"`
	// Total is the sum of quantity x unit price, in minor units.
	Total     int64     `json:"total"`
	CreatedAt time.Time `json:"created_at"`
}

// EventType implements Payload.
func (OrderCreated) EventType() string { return TypeOrderCreated }

// AggregateID implements Payload: the order id.
func (p OrderCreated) AggregateID() string { return p.OrderID }

// OccurredAt implements Payload.
func (p OrderCreated) OccurredAt() time.Time { return p.CreatedAt }

// Validate checks ids, line items, money and the total.
func (p OrderCreated) Validate() error {
	c := checker{payload: "OrderCreated"}
	c.uuid("order_id", p.OrderID)
	c.text("customer_id", p.CustomerID, MaxTextLength)
	c.currency(p.Currency)
	switch {
	case len(p.Items) == 0:
		c.addf("items", "must contain at least one line item")
	case len(p.Items) > MaxLineItems:
		c.addf("items", "must contain at most %d line items, got %d", MaxLineItems, len(p.Items))
	}
	var sum int64
	overflow := false
	for i, it := range p.Items {
		f := fmt.Sprintf("items[%d]", i)
		c.text(f+".sku", it.SKU, MaxTextLength)
		if it.Quantity < 1 || it.Quantity > MaxQuantity {
			c.addf(f+".quantity", "must be between 1 and %d, got %d", MaxQuantity, it.Quantity)
		}
		if it.UnitPrice < 0 {
			c.addf(f+".unit_price", "must be >= 0 minor units, got %d", it.UnitPrice)
		}
		if it.Quantity > 0 && it.UnitPrice > 0 {
			if it.UnitPrice > math.MaxInt64/it.Quantity || sum > math.MaxInt64-it.Quantity*it.UnitPrice {
				overflow = true
			} else {
				sum += it.Quantity * it.UnitPrice
			}
		}
	}
	switch {
	case p.Total < 0:
		c.addf("total", "must be >= 0 minor units, got %d", p.Total)
	case overflow:
		c.addf("total", "line items overflow int64 minor units")
	case len(c.problems) == 0 && p.Total != sum:
		c.addf("total", "must equal the sum of quantity x unit_price (%d), got %d", sum, p.Total)
	}
	c.time("created_at", p.CreatedAt)
	return c.err()
}

// OrderCancelled: the orders API cancelled an order (at the customer's or
// an operator's request) before it shipped. Type
// com.example.orders.order.cancelled.v1 on topic order.created, with the
// order's other lifecycle events and the same ordering key, so that it is
// never delivered before the order.created of its order. A consumer that
// acted on the order undoes what it can: the payment function refunds an
// approved charge.
type OrderCancelled struct {
	OrderID string `json:"order_id"`
	// Reason is the free text given with the cancellation, if any (at
	// most 1024 bytes of UTF-8, MaxReasonBytes).
	Reason string `json:"reason,omitempty"`
	// PreviousStatus is the status the order was in when it was
	// cancelled: pending, paid or payment_failed.
	PreviousStatus string    `json:"previous_status"`
	CancelledAt    time.Time `json:"cancelled_at"`
}

// EventType implements Payload.
func (OrderCancelled) EventType() string { return TypeOrderCancelled }

// AggregateID implements Payload: the order id.
func (p OrderCancelled) AggregateID() string { return p.OrderID }

// OccurredAt implements Payload.
func (p OrderCancelled) OccurredAt() time.Time { return p.CancelledAt }

// Validate checks the id, the optional reason, the previous status and the
// timestamp.
func (p OrderCancelled) Validate() error {
	c := checker{payload: "OrderCancelled"}
	c.uuid("order_id", p.OrderID)
	c.optionalText("reason", p.Reason, MaxReasonBytes)
	c.text("previous_status", p.PreviousStatus, MaxTextLength)
	c.time("cancelled_at", p.CancelledAt)
	return c.err()
}

// PaymentProcessed: a payment for an order was captured. Type
// com.example.payments.payment.processed.v1 on topic payment.processed.
type PaymentProcessed struct {
	OrderID   string `json:"order_id"`
	PaymentID string `json:"payment_id"`
	// Amount captured, in minor units of Currency.
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
	// GatewayReference is the payment gateway's id for the capture.
	GatewayReference string    `json:"gateway_reference"`
	ProcessedAt      time.Time `json:"processed_at"`
}

// EventType implements Payload.
func (PaymentProcessed) EventType() string { return TypePaymentProcessed }

// AggregateID implements Payload: the order id.
func (p PaymentProcessed) AggregateID() string { return p.OrderID }

// OccurredAt implements Payload.
func (p PaymentProcessed) OccurredAt() time.Time { return p.ProcessedAt }

// Validate checks ids, money and the timestamp.
func (p PaymentProcessed) Validate() error {
	c := checker{payload: "PaymentProcessed"}
	c.uuid("order_id", p.OrderID)
	c.uuid("payment_id", p.PaymentID)
	c.money("amount", p.Amount, p.Currency)
	c.text("gateway_reference", p.GatewayReference, MaxTextLength)
	c.time("processed_at", p.ProcessedAt)
	return c.err()
}

// PaymentFailed: the gateway declined the payment for an order. A decline
// is a business outcome, published as an event, not a handler error. Type
// com.example.payments.payment.failed.v1 on topic payment.failed.
type PaymentFailed struct {
	OrderID string `json:"order_id"`
	// Reason is a short machine-readable reason, e.g. "card_declined".
	Reason string `json:"reason"`
	// DeclineCode is the gateway's decline code, when it gave one.
	DeclineCode string    `json:"decline_code,omitempty"`
	Amount      int64     `json:"amount"`
	Currency    string    `json:"currency"`
	FailedAt    time.Time `json:"failed_at"`
}

// EventType implements Payload.
func (PaymentFailed) EventType() string { return TypePaymentFailed }

// AggregateID implements Payload: the order id.
func (p PaymentFailed) AggregateID() string { return p.OrderID }

// OccurredAt implements Payload.
func (p PaymentFailed) OccurredAt() time.Time { return p.FailedAt }

// Validate checks ids, reason, money and the timestamp.
func (p PaymentFailed) Validate() error {
	c := checker{payload: "PaymentFailed"}
	c.uuid("order_id", p.OrderID)
	c.text("reason", p.Reason, MaxReasonBytes)
	if len(p.DeclineCode) > MaxTextLength {
		c.addf("decline_code", "must be at most %d bytes, got %d", MaxTextLength, len(p.DeclineCode))
	}
	c.money("amount", p.Amount, p.Currency)
	c.time("failed_at", p.FailedAt)
	return c.err()
}

// PaymentRefunded: the payment of a cancelled order was refunded through
// the payment gateway. Type com.example.payments.payment.refunded.v1 on
// topic payment.refunded.
type PaymentRefunded struct {
	OrderID string `json:"order_id"`
	// PaymentID is the refunded payment (PaymentProcessed.PaymentID).
	PaymentID string `json:"payment_id"`
	// RefundReference is the payment gateway's id for the refund.
	RefundReference string `json:"refund_reference"`
	// Amount refunded, in minor units of Currency.
	Amount     int64     `json:"amount"`
	Currency   string    `json:"currency"`
	RefundedAt time.Time `json:"refunded_at"`
}

// EventType implements Payload.
func (PaymentRefunded) EventType() string { return TypePaymentRefunded }

// AggregateID implements Payload: the order id.
func (p PaymentRefunded) AggregateID() string { return p.OrderID }

// OccurredAt implements Payload.
func (p PaymentRefunded) OccurredAt() time.Time { return p.RefundedAt }

// Validate checks ids, the refund reference, money and the timestamp.
func (p PaymentRefunded) Validate() error {
	c := checker{payload: "PaymentRefunded"}
	c.uuid("order_id", p.OrderID)
	c.uuid("payment_id", p.PaymentID)
	c.text("refund_reference", p.RefundReference, MaxTextLength)
	c.money("amount", p.Amount, p.Currency)
	c.time("refunded_at", p.RefundedAt)
	return c.err()
}

// ShipmentDispatched: an order left the warehouse. Type
// com.example.shipping.shipment.dispatched.v1 on topic shipment.dispatched.
type ShipmentDispatched struct {
	OrderID        string    `json:"order_id"`
	ShipmentID     string    `json:"shipment_id"`
	Carrier        string    `json:"carrier"`
	TrackingNumber string    `json:"tracking_number"`
	DispatchedAt   time.Time `json:"dispatched_at"`
}

// EventType implements Payload.
func (ShipmentDispatched) EventType() string { return TypeShipmentDispatched }

// AggregateID implements Payload: the order id.
func (p ShipmentDispatched) AggregateID() string { return p.OrderID }

// OccurredAt implements Payload.
func (p ShipmentDispatched) OccurredAt() time.Time { return p.DispatchedAt }

// Validate checks ids, carrier, tracking number and the timestamp.
func (p ShipmentDispatched) Validate() error {
	c := checker{payload: "ShipmentDispatched"}
	c.uuid("order_id", p.OrderID)
	c.uuid("shipment_id", p.ShipmentID)
	c.text("carrier", p.Carrier, MaxTextLength)
	c.text("tracking_number", p.TrackingNumber, MaxTextLength)
	c.time("dispatched_at", p.DispatchedAt)
	return c.err()
}
