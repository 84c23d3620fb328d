// Package domain is the reference domain's event contract: the payloads of
// the orders, payments and shipments events and their registration with the
// kernel's CloudEvents codec (package events). Importing it registers every
// type below; the kernel packages never import it.
//
// A fork that replaces the reference services deletes this folder (with
// functions/ordersapi, payment and shipment) and writes its own package
// like it: payload structs implementing events.Payload, and one
// events.Register call per type and version in init. See "Adding an event
// type" in the README.
package domain

import (
	"embed"

	"example.com/platform/shared/events"
)

// Event types. The suffix is the payload's schema version: a breaking
// change to a payload is a new type (…v2) published alongside the old one
// until every consumer has moved.
const (
	TypeOrderCreated       = "com.example.orders.order.created.v1"
	TypeOrderCancelled     = "com.example.orders.order.cancelled.v1"
	TypePaymentProcessed   = "com.example.payments.payment.processed.v1"
	TypePaymentFailed      = "com.example.payments.payment.failed.v1"
	TypePaymentRefunded    = "com.example.payments.payment.refunded.v1"
	TypeShipmentDispatched = "com.example.shipping.shipment.dispatched.v1"
)

// Topics of the reference domain (keys of topics.yaml). TopicOrderCreated
// carries every event of an order's lifecycle (order.created and
// order.cancelled), keyed by the order id, so that a consumer with message
// ordering sees them in the order they happened; its id predates the
// cancellation and stays, because subscriptions and Terraform name it.
const (
	TopicOrderCreated       = "order.created"
	TopicPaymentProcessed   = "payment.processed"
	TopicPaymentFailed      = "payment.failed"
	TopicPaymentRefunded    = "payment.refunded"
	TopicShipmentDispatched = "shipment.dispatched"
)

// Folders of the package, relative to the repository root. ContractsDir
// holds the domain's contracts: one JSON Schema per event type and version
// (<type>.json, generated from the payload types, whose doc comments
// become the descriptions) and asyncapi.yaml. `make contracts` regenerates
// them; a test fails when they are stale or when a published version
// changed in a way that breaks its consumers.
//
//go:generate go run ../../tools/cmd/contracts -root ../..
const (
	Dir          = "shared/domain"
	ContractsDir = Dir + "/contracts"
)

// Contracts holds the committed contracts (contracts/<type>.json and
// contracts/asyncapi.yaml).
//
//go:embed contracts
var Contracts embed.FS

func init() {
	events.Register[OrderCreated](TypeOrderCreated, TopicOrderCreated)
	events.Register[OrderCancelled](TypeOrderCancelled, TopicOrderCreated)
	events.Register[PaymentProcessed](TypePaymentProcessed, TopicPaymentProcessed)
	events.Register[PaymentFailed](TypePaymentFailed, TopicPaymentFailed)
	events.Register[PaymentRefunded](TypePaymentRefunded, TopicPaymentRefunded)
	events.Register[ShipmentDispatched](TypeShipmentDispatched, TopicShipmentDispatched)
	// Every consumer validates incoming data against the committed schema
	// of its version before decoding it. A type whose schema is not
	// committed yet is decoded without one (TestContractsAreCurrent fails
	// until `make contracts` writes it).
	if err := events.RegisterSchemas(Contracts, "contracts"); err != nil {
		panic(err)
	}
}
