package ordersapi

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"example.com/platform/shared/domain"
	"example.com/platform/shared/domain/orders"
	"example.com/platform/shared/events"
	"example.com/platform/shared/outbox"
	"example.com/platform/shared/postgres"
)

// EventSource is the CloudEvents source of the events the API emits.
const EventSource = "//example.com/orders-api"

// DefaultPublishTimeout bounds the publish after commit of an order's event.
const DefaultPublishTimeout = 5 * time.Second

// ErrAlreadyShipped: a shipped order cannot be cancelled.
var ErrAlreadyShipped = errors.New("order already shipped")

// CreateRequest is a validated order request (the body of POST /v1/orders).
// Its JSON encoding, with the fields in this order, is the canonical form
// hashed for idempotency keys.
type CreateRequest struct {
	CustomerID string            `json:"customer_id"`
	Currency   string            `json:"currency"`
	Items      []domain.LineItem `json:"items"`
}

// Hash is the SHA-256 of the canonical JSON of r: two requests that decode
// to the same values (whatever their spacing or key order) hash the same.
func (r CreateRequest) Hash() []byte {
	b, _ := json.Marshal(r) // strings and integers only: cannot fail
	h := sha256.Sum256(b)
	return h[:]
}

// Total is the sum of quantity x unit price. Validated requests cannot
// overflow it (MaxLineItems x MaxQuantity x MaxUnitPrice < 2^63).
func (r CreateRequest) Total() int64 {
	var t int64
	for _, it := range r.Items {
		t += it.Quantity * it.UnitPrice
	}
	return t
}

// DB is the database the service writes to: *pgxpool.Pool.
type DB interface {
	postgres.Querier
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Outbox publishes outbox rows: *outbox.Relay.
type Outbox interface {
	PublishAfterCommit(ctx context.Context, ids ...int64) (outbox.Stats, error)
}

// Service is the orders domain behind the HTTP API. It is safe for
// concurrent use.
type Service struct {
	DB     DB     // required
	Outbox Outbox // required
	Logger *slog.Logger
	// PublishTimeout bounds the publish after commit; zero means
	// DefaultPublishTimeout.
	PublishTimeout time.Duration
	// Now and NewID are for tests; nil means time.Now and uuid.NewString.
	Now   func() time.Time
	NewID func() string
}

// Created is the outcome of Create.
type Created struct {
	Order orders.Order
	// Replayed is true when the idempotency key had already created Order.
	Replayed bool
}

// Create stores a new pending order for req and its order.created event in
// the outbox, in one transaction, then publishes the event. A publish
// failure is logged and not returned: the order is committed and the outbox
// row waits for the outbox relay (functions/relay).
//
// With an idempotency key (may be empty), a request already made with the
// same key returns that order with Replayed set, writing and publishing
// nothing; a different request with the same key is an error wrapping
// orders.ErrIdempotencyKeyReused. Concurrent requests with one key create
// one order.
func (s *Service) Create(ctx context.Context, req CreateRequest, idempotencyKey string) (Created, error) {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	newID := uuid.NewString
	if s.NewID != nil {
		newID = s.NewID
	}
	payload := domain.OrderCreated{
		OrderID:    newID(),
		CustomerID: req.CustomerID,
		Items:      req.Items,
		Currency:   req.Currency,
		Total:      req.Total(),
		CreatedAt:  now().UTC().Truncate(time.Microsecond), // as stored
	}
	eventID := uuid.NewString()
	topic, msg, err := events.NewMessage(ctx, EventSource, payload, events.WithID(eventID))
	if err != nil {
		return Created{}, fmt.Errorf("build order.created: %w", err)
	}
	var hash []byte
	if idempotencyKey != "" {
		hash = req.Hash()
	}

	tx, err := s.DB.Begin(ctx)
	if err != nil {
		return Created{}, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after Commit
	o, created, err := orders.Create(ctx, tx, orders.NewOrder{
		ID: payload.OrderID, CustomerID: payload.CustomerID, Currency: payload.Currency,
		Items: payload.Items, Total: payload.Total, CreatedAt: payload.CreatedAt, EventID: eventID,
		IdempotencyKey: idempotencyKey, RequestHash: hash,
	})
	if err != nil {
		return Created{}, err
	}
	if !created {
		return Created{Order: o, Replayed: true}, nil
	}
	outboxID, err := outbox.Write(ctx, tx, topic, msg)
	if err != nil {
		return Created{}, fmt.Errorf("write order.created: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return Created{}, fmt.Errorf("commit order %s: %w", o.ID, err)
	}
	s.publish(ctx, "order.created", o.ID, outboxID)
	return Created{Order: o}, nil
}

// publish publishes the outbox row outboxID, just committed, before the
// response: Cloud Run may throttle the CPU of an instance once the
// response is sent. The request's cancellation must not stop it half way;
// the timeout bounds the client's wait. A failure is logged: the outbox
// relay publishes the row later.
func (s *Service) publish(ctx context.Context, what, orderID string, outboxID int64) {
	timeout := s.PublishTimeout
	if timeout <= 0 {
		timeout = DefaultPublishTimeout
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	st, err := s.Outbox.PublishAfterCommit(pctx, outboxID)
	if err != nil || st.Published != 1 {
		s.logger().WarnContext(ctx, what+" not published after commit; the outbox relay will publish it",
			slog.String("order_id", orderID), slog.Int64("outbox_id", outboxID), slog.Any("error", err),
			slog.Int("failed", st.Failed), slog.Int("skipped", st.Skipped))
	}
}

// CancelRequest is a validated cancellation (the optional body of POST
// /v1/orders/{id}:cancel).
type CancelRequest struct {
	// Reason is free text, trimmed; empty when none was given.
	Reason string `json:"reason,omitempty"`
}

// Cancelled is the outcome of Cancel.
type Cancelled struct {
	// Order is the order as it is after the call (cancelled).
	Order orders.Order
	// Changed is false when the order was already cancelled: nothing was
	// written or published.
	Changed bool
}

// cancelNamespace scopes CancelEventID's name-based UUIDs.
var cancelNamespace = uuid.MustParse("5d2b7e0a-9c41-4f3e-8a6d-0b1c2e3f4a5b")

// CancelEventID is the ce-id of the order.cancelled event of order id (a
// canonical, lower-case UUID): a name-based UUID, so that however often a
// client retries the cancellation, at most one event with this id exists.
func CancelEventID(orderID string) string {
	return uuid.NewSHA1(cancelNamespace, []byte(orderID+"\x00cancel")).String()
}

// Cancel cancels order id (a canonical, lower-case UUID) in one
// transaction: it locks the order's row, moves it to cancelled (from
// pending, paid or payment_failed), records the change with
// CancelEventID(id) and writes the order.cancelled event (PreviousStatus
// the status it left, CancelledAt the time of the change) to the outbox;
// then it publishes the event. Concurrent cancellations and a concurrent
// shipment of the order serialise on the row lock.
//
// An order that is already cancelled is returned with Changed false and
// nothing written or published. An unknown order is orders.ErrNotFound, a
// shipped one ErrAlreadyShipped. A publish failure is logged, not
// returned, as in Create.
func (s *Service) Cancel(ctx context.Context, id string, req CancelRequest) (Cancelled, error) {
	if u, err := uuid.Parse(id); err != nil || u.String() != id {
		return Cancelled{}, fmt.Errorf("%w: %q", orders.ErrNotFound, id)
	}
	eventID := CancelEventID(id)
	tx, err := s.DB.Begin(ctx)
	if err != nil {
		return Cancelled{}, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after Commit
	adv, err := orders.Advance(ctx, tx, id, orders.Cancelled, eventID)
	if errors.Is(err, orders.ErrIllegalAdvance) && adv.From == orders.Shipped {
		return Cancelled{}, fmt.Errorf("cancel order %s: %w", id, ErrAlreadyShipped)
	}
	if err != nil {
		return Cancelled{}, fmt.Errorf("cancel order %s: %w", id, err)
	}
	o, err := orders.Load(ctx, tx, id)
	if err != nil {
		return Cancelled{}, err
	}
	if !adv.Moved {
		return Cancelled{Order: o}, nil // already cancelled
	}
	outboxID, err := s.writeCancelled(ctx, tx, o, adv.From, req.Reason, eventID)
	if err != nil {
		return Cancelled{}, err
	}
	if err := tx.Commit(ctx); err != nil {
		return Cancelled{}, fmt.Errorf("commit cancellation of order %s: %w", id, err)
	}
	s.publish(ctx, "order.cancelled", id, outboxID)
	return Cancelled{Order: o, Changed: true}, nil
}

// writeCancelled writes the order.cancelled event of o, just moved from
// status from, to the outbox in tx.
func (s *Service) writeCancelled(ctx context.Context, tx pgx.Tx, o orders.Order, from orders.Status, reason, eventID string) (int64, error) {
	payload := domain.OrderCancelled{
		OrderID: o.ID, Reason: reason, PreviousStatus: string(from),
		CancelledAt: o.History[len(o.History)-1].At, // the change just recorded
	}
	topic, msg, err := events.NewMessage(ctx, EventSource, payload, events.WithID(eventID))
	if err != nil {
		return 0, fmt.Errorf("build order.cancelled: %w", err)
	}
	id, err := outbox.Write(ctx, tx, topic, msg)
	if err != nil {
		return 0, fmt.Errorf("write order.cancelled: %w", err)
	}
	return id, nil
}

// Get returns order id with its status history; orders.ErrNotFound when
// there is none.
func (s *Service) Get(ctx context.Context, id string) (orders.Order, error) {
	return orders.Load(ctx, s.DB, id)
}

func (s *Service) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.Default()
	}
	return s.Logger
}

// isNotFound reports an unknown order.
func isNotFound(err error) bool { return errors.Is(err, orders.ErrNotFound) }
