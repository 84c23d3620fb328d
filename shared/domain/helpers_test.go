package domain

import (
	"time"

	"example.com/platform/shared/events"
)

const (
	orderID    = "7f1d2c3b-4a5e-4f60-8b7c-9d0e1f2a3b4c"
	paymentID  = "0a1b2c3d-4e5f-4061-8273-8495a6b7c8d9"
	shipmentID = "1b2c3d4e-5f60-4172-8384-95a6b7c8d9e0"
	testSource = "//example.com/tests"
)

var t0 = time.Date(2026, 5, 1, 12, 30, 45, 123456789, time.UTC)

func validOrderCreated() OrderCreated {
	return OrderCreated{
		OrderID:    orderID,
		CustomerID: "cust-42",
		Items: []LineItem{
			{SKU: "SKU-1", Quantity: 2, UnitPrice: 1250},
			{SKU: "SKU-2", Quantity: 1, UnitPrice: 999},
		},
		Currency:  "EUR",
		Total:     3499,
		CreatedAt: t0,
	}
}

// validPayloads returns one valid payload of every domain type, in the
// order OrderCreated, PaymentProcessed, PaymentFailed, ShipmentDispatched,
// OrderCancelled, PaymentRefunded, all about orderID at t0.
func validPayloads() []events.Payload {
	return []events.Payload{
		validOrderCreated(),
		PaymentProcessed{OrderID: orderID, PaymentID: paymentID, Amount: 3499, Currency: "EUR", GatewayReference: "gw_123", ProcessedAt: t0},
		PaymentFailed{OrderID: orderID, Reason: "card_declined", DeclineCode: "insufficient_funds", Amount: 3499, Currency: "EUR", FailedAt: t0},
		ShipmentDispatched{OrderID: orderID, ShipmentID: shipmentID, Carrier: "DHL", TrackingNumber: "JD0123456789", DispatchedAt: t0},
		OrderCancelled{OrderID: orderID, Reason: "changed my mind", PreviousStatus: "paid", CancelledAt: t0},
		PaymentRefunded{OrderID: orderID, PaymentID: paymentID, RefundReference: "rf_123", Amount: 3499, Currency: "EUR", RefundedAt: t0},
	}
}
