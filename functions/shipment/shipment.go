// Package shipment is the shipment function: it consumes payment.processed,
// creates the order's shipment (carrier and tracking number derived from the
// event, see Derived values), moves the order to shipped and emits
// shipment.dispatched through the outbox, all in the one transaction that
// also records the event as processed (transactional-mode idempotency).
//
// Outcomes, as the push contract sees them:
//
//	order paid                 shipment created, order shipped, event emitted; ack
//	order already shipped      (a late or duplicate payment.processed under a new
//	                           event id) nothing changes; ack
//	order cancelled            (the orders API cancelled the paid order before
//	                           it shipped) nothing is shipped or emitted; ack,
//	                           logged at INFO
//	duplicate delivery         the idempotency layer acks without running Ship
//	order pending              permanent (ErrNotPaid): dead-lettered, see below
//	order payment_failed       permanent (orders.ErrIllegalAdvance): dead-lettered
//	order missing              permanent (orders.ErrNotFound): dead-lettered
//	database errors            transient: retried in process, then by Pub/Sub
//
// Why a payment.processed for a pending order is permanent and not retried:
// the payment function moves the order pending -> paid in the same
// transaction that writes payment.processed to its outbox, and the outbox
// publishes committed rows only, from the same primary database this function
// reads. So a genuine payment.processed can never be observed before its
// order is paid; finding the order pending means the event is forged,
// replayed from elsewhere, or the database was restored to an older point.
// None of these heals by waiting, and retrying would be harmful: if the
// order later became paid through a real payment, a retried forged event
// would be what ships it. The event goes to shipment.dlq at once, with the
// reason, for an operator to inspect (and replay if it was genuine).
//
// Why a payment.processed for a cancelled order is acknowledged: the event
// is genuine (the order was paid), the customer cancelled before it
// shipped, and the payment function refunds the charge. Nothing is wrong,
// so nothing is dead-lettered. orders.Advance locks the order's row, so a
// cancellation and this shipment serialise: either the order ships first
// and the API answers the cancellation 409, or it is cancelled first and
// Advance fails with orders.ErrCancelled, which Ship turns into the
// OrderCancelled outcome.
//
// # Derived values
//
// The identifiers of a shipment are derived from the payment.processed event
// that created it, so a redelivery that runs again after a rolled-back
// attempt produces the same shipment id, carrier, tracking number and
// outgoing event id:
//
//	shipment id      UUIDv5(Namespace, "shipment/v1\x00" + ce-source + "\x00" + ce-id)
//	dispatched id    UUIDv5(Namespace, "shipment.dispatched/v1\x00" + shipment id)
//	                 (the ce-id of the shipment.dispatched event)
//	carrier          carriers[FNV-1a-64(lower-case order id) mod len(carriers)]
//	tracking number  CARRIER "-" BODY CHECK where
//	                   CARRIER is the carrier code in upper case,
//	                   BODY is the first 80 bits of
//	                     SHA-256("shipment.tracking/v1\x00" + ce-source + "\x00" + ce-id)
//	                     in Crockford base32 (16 symbols, no I L O U),
//	                   CHECK is the Crockford check symbol of BODY (its value
//	                     mod 37), so a mistyped number is caught by
//	                     ValidTrackingNumber without a lookup.
//
// The (source, id) pair is what CloudEvents makes unique, and it is the
// idempotency key of the function too. The "/v1" tags version each scheme:
// changing one means a new tag, never a silent change of existing numbers.
// The carrier depends on the order id only, so every attempt for an order
// picks the same carrier as long as the configured list is unchanged; once
// a shipment exists its carrier is stored and never recomputed.
// DispatchedAt is the clock (Service.Now) at the attempt that commits: the
// only value not derived from the event.
package shipment

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"example.com/platform/shared/domain"
	"example.com/platform/shared/domain/orders"
	"example.com/platform/shared/events"
	"example.com/platform/shared/handler"
	"example.com/platform/shared/postgres"
	"example.com/platform/shared/retry"
)

// Source is the CloudEvents source of the events this function emits.
const Source = "//example.com/shipment"

// DefaultCarriers is the carrier list used when SHIPMENT_CARRIERS is unset.
const DefaultCarriers = "dhl,ups,fedex"

// Errors of Handle and Ship, matched with errors.Is. All are permanent.
var (
	// ErrNotPaid: payment.processed arrived for an order that is still
	// pending (see the package documentation).
	ErrNotPaid = errors.New("order is not paid")
	// ErrShipmentExists: the order was paid, not shipped, yet already has a
	// shipment. The database is inconsistent; nothing is written.
	ErrShipmentExists = errors.New("order already has a shipment")
	// ErrWrongEvent: the function received an event other than
	// payment.processed (a subscription wired to the wrong topic); the
	// kernel's typed consumer rejects it before Handle runs.
	ErrWrongEvent = handler.ErrUnexpectedType
)

// Shipment is one row of the shipments table.
type Shipment struct {
	ID             string
	OrderID        string
	PaymentID      string
	Carrier        string
	TrackingNumber string
	EventSource    string
	EventID        string
	DispatchedAt   time.Time
}

// Orders moves an order along the status machine inside q. orders.Advance,
// through AdvanceFunc, is the production implementation.
type Orders interface {
	Advance(ctx context.Context, q postgres.Querier, orderID string, to orders.Status, eventID string) (orders.Result, error)
}

// AdvanceFunc adapts a function such as orders.Advance to Orders.
type AdvanceFunc func(ctx context.Context, q postgres.Querier, orderID string, to orders.Status, eventID string) (orders.Result, error)

// Advance calls f.
func (f AdvanceFunc) Advance(ctx context.Context, q postgres.Querier, orderID string, to orders.Status, eventID string) (orders.Result, error) {
	return f(ctx, q, orderID, to, eventID)
}

// Shipments stores shipments inside q. Table (the shipments table of this
// package's migrations) is the production implementation.
type Shipments interface {
	// Create inserts s and reports false, without error, when a shipment
	// with its id, order id or tracking number exists.
	Create(ctx context.Context, q postgres.Querier, s Shipment) (bool, error)
}

// Service ships paid orders. Its zero value is ready to use with the
// defaults of each field. It holds no state between calls and is safe for
// concurrent use as long as its dependencies are.
type Service struct {
	// Carriers the carrier is chosen from. Default: DefaultCarriers.
	Carriers []string
	// Source is the CloudEvents source of emitted events. Default: Source.
	Source string
	// Orders moves orders. Default: orders.Advance.
	Orders Orders
	// Shipments stores shipments. Default: Table.
	Shipments Shipments
	// Now is the clock of DispatchedAt. Default: time.Now.
	Now func() time.Time
	// Logger receives the skips worth knowing about. Default:
	// slog.Default().
	Logger *slog.Logger
}

// Outcome says what Ship did.
type Outcome int

// Outcomes of Ship.
const (
	// Dispatched: the shipment was created, the order moved to shipped and
	// shipment.dispatched is to be published.
	Dispatched Outcome = iota + 1
	// AlreadyShipped: the order was shipped before; nothing was written.
	AlreadyShipped
	// OrderCancelled: the order was cancelled before it shipped; nothing
	// was written and nothing ships.
	OrderCancelled
)

func (o Outcome) String() string {
	switch o {
	case Dispatched:
		return "dispatched"
	case AlreadyShipped:
		return "already_shipped"
	case OrderCancelled:
		return "order_cancelled"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Result is what Ship did.
type Result struct {
	Outcome Outcome
	// Shipment is the created shipment (zero unless Dispatched).
	Shipment Shipment
	// Event is shipment.dispatched (zero unless Dispatched).
	Event handler.Out
}

// Handle is the function's transactional consumer: every write happens in
// tx, which also records the event as processed, and shipment.dispatched is
// returned to be written to the outbox in tx and published after the
// commit.
func (s *Service) Handle(ctx context.Context, tx pgx.Tx, ev handler.Event[domain.PaymentProcessed]) ([]handler.Out, error) {
	res, err := s.Ship(ctx, tx, ev.Event.Source(), ev.Event.ID(), ev.Data)
	if err != nil {
		return nil, err
	}
	switch res.Outcome {
	case Dispatched:
		return []handler.Out{res.Event}, nil
	case OrderCancelled:
		s.logger().InfoContext(ctx, "order cancelled before it shipped; payment.processed acknowledged, nothing shipped",
			"order_id", ev.Data.OrderID, "payment_id", ev.Data.PaymentID, "outcome", res.Outcome.String())
	}
	return nil, nil
}

// Ship handles the payment.processed event (source, id) with payload p
// inside q, which should be a transaction: on error the caller rolls it back
// and nothing of the attempt remains. It first advances the order to shipped
// (locking the order row, so concurrent events for one order, and a
// cancellation by the orders API, serialise); when the order moved it
// creates the shipment and returns shipment.dispatched (ordering key: the
// order id; trace: a child of ctx's) for the outbox. An order that was
// already shipped is AlreadyShipped, one that was cancelled
// OrderCancelled; neither is an error. Errors are classified (see the
// package documentation).
func (s *Service) Ship(ctx context.Context, q postgres.Querier, source, id string, p domain.PaymentProcessed) (Result, error) {
	adv, err := s.orders().Advance(ctx, q, p.OrderID, orders.Shipped, id)
	if errors.Is(err, orders.ErrCancelled) {
		return Result{Outcome: OrderCancelled}, nil
	}
	if err != nil {
		if errors.Is(err, orders.ErrIllegalAdvance) && adv.From == orders.Pending {
			return Result{}, retry.Permanent(fmt.Errorf("%w: payment.processed %s for order %s that is still pending: out of order or forged: %w", ErrNotPaid, id, p.OrderID, err))
		}
		return Result{}, fmt.Errorf("ship order %s: %w", p.OrderID, err)
	}
	if !adv.Moved {
		return Result{Outcome: AlreadyShipped}, nil
	}
	carriers := s.Carriers
	if len(carriers) == 0 {
		carriers, _ = ParseCarriers(DefaultCarriers)
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	carrier := ChooseCarrier(carriers, p.OrderID)
	sh := Shipment{
		ID:             ShipmentID(source, id),
		OrderID:        p.OrderID,
		PaymentID:      p.PaymentID,
		Carrier:        carrier,
		TrackingNumber: TrackingNumber(carrier, source, id),
		EventSource:    source,
		EventID:        id,
		DispatchedAt:   now().UTC().Truncate(time.Microsecond), // PostgreSQL's precision
	}
	created, err := s.shipments().Create(ctx, q, sh)
	if err != nil {
		return Result{}, fmt.Errorf("create shipment for order %s: %w", p.OrderID, err)
	}
	if !created {
		return Result{}, retry.Permanent(fmt.Errorf("%w: order %s was %s, shipment %s conflicts with an existing one", ErrShipmentExists, p.OrderID, adv.From, sh.ID))
	}
	src := s.Source
	if src == "" {
		src = Source
	}
	out, err := handler.Emit(ctx, src, domain.ShipmentDispatched{
		OrderID:        sh.OrderID,
		ShipmentID:     sh.ID,
		Carrier:        sh.Carrier,
		TrackingNumber: sh.TrackingNumber,
		DispatchedAt:   sh.DispatchedAt,
	}, events.WithID(DispatchedEventID(sh.ID)))
	if err != nil {
		return Result{}, err
	}
	return Result{Outcome: Dispatched, Shipment: sh, Event: out}, nil
}

func (s *Service) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

func (s *Service) orders() Orders {
	if s.Orders != nil {
		return s.Orders
	}
	return AdvanceFunc(orders.Advance)
}

func (s *Service) shipments() Shipments {
	if s.Shipments != nil {
		return s.Shipments
	}
	return Table{}
}

// Table is the PostgreSQL Shipments: the shipments table.
type Table struct{}

// Create implements Shipments.
func (Table) Create(ctx context.Context, q postgres.Querier, s Shipment) (bool, error) {
	tag, err := q.Exec(ctx, `
INSERT INTO shipments (id, order_id, payment_id, carrier, tracking_number, event_source, event_id, dispatched_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT DO NOTHING`,
		s.ID, s.OrderID, s.PaymentID, s.Carrier, s.TrackingNumber, s.EventSource, s.EventID, s.DispatchedAt)
	if err != nil {
		return false, fmt.Errorf("insert shipment: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// Get returns the shipment of order orderID, or false when it has none.
func (Table) Get(ctx context.Context, q postgres.Querier, orderID string) (Shipment, bool, error) {
	var s Shipment
	err := q.QueryRow(ctx, `
SELECT id::text, order_id::text, payment_id::text, carrier, tracking_number, event_source, event_id, dispatched_at
FROM shipments WHERE order_id = $1`, orderID).Scan(
		&s.ID, &s.OrderID, &s.PaymentID, &s.Carrier, &s.TrackingNumber, &s.EventSource, &s.EventID, &s.DispatchedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Shipment{}, false, nil
	}
	if err != nil {
		return Shipment{}, false, fmt.Errorf("get shipment of order %s: %w", orderID, err)
	}
	return s, true, nil
}
